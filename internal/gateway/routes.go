package gateway

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// pattern is a compiled route path: literal segments and {name} parameters.
type pattern struct {
	segs []segment
}

type segment struct {
	lit   string
	param string // non-empty for {name}
}

func compilePattern(p string) (pattern, error) {
	if !strings.HasPrefix(p, "/") {
		return pattern{}, fmt.Errorf("path %q must start with /", p)
	}
	var out pattern
	for _, s := range strings.Split(p[1:], "/") {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			name := s[1 : len(s)-1]
			if name == "" {
				return pattern{}, fmt.Errorf("path %q has an empty parameter", p)
			}
			if strings.ContainsAny(name, "{}") {
				return pattern{}, fmt.Errorf("path %q: a parameter must be a whole segment", p)
			}
			out.segs = append(out.segs, segment{param: name})
			continue
		}
		if strings.ContainsAny(s, "{}") {
			return pattern{}, fmt.Errorf("path %q: a parameter must be a whole segment", p)
		}
		out.segs = append(out.segs, segment{lit: s})
	}
	return out, nil
}

// match matches path (already cleaned by the server mux) against the pattern,
// filling params. It allocates only when the pattern has parameters.
func (p *pattern) match(path string) (map[string]string, bool) {
	if len(path) == 0 || path[0] != '/' {
		return nil, false
	}
	rest := path[1:]
	var params map[string]string
	for i, seg := range p.segs {
		var part string
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			part, rest = rest[:j], rest[j+1:]
		} else {
			part, rest = rest, ""
			if i != len(p.segs)-1 {
				return nil, false
			}
		}
		if seg.param != "" {
			if part == "" {
				return nil, false
			}
			if params == nil {
				params = make(map[string]string, 2)
			}
			params[seg.param] = part
		} else if part != seg.lit {
			return nil, false
		}
		if i == len(p.segs)-1 && rest != "" {
			return nil, false
		}
	}
	return params, true
}

// table is the ordered route list; the first match wins.
type table struct {
	routes []*route
}

// lookup returns the first route matching method and path. When the path
// matches some route but none for this method, it returns allowed methods.
func (t *table) lookup(method, path string) (*route, map[string]string, []string) {
	var allow []string
	for _, rt := range t.routes {
		params, ok := rt.pattern.match(path)
		if !ok {
			continue
		}
		if rt.methods == nil || slices.Contains(rt.methods, method) || method == http.MethodHead && slices.Contains(rt.methods, http.MethodGet) {
			return rt, params, nil
		}
		for _, m := range rt.methods {
			if !slices.Contains(allow, m) {
				allow = append(allow, m)
			}
			if m == http.MethodGet && !slices.Contains(allow, http.MethodHead) {
				allow = append(allow, http.MethodHead)
			}
		}
	}
	return nil, nil, allow
}
