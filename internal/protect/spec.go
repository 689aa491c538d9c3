package protect

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// Errors from ParseSpec and New.
var (
	// ErrSpec: the OpenAPI document does not load or validate.
	ErrSpec = errors.New("protect: invalid OpenAPI document")
	// ErrNoOperation: the document has no path or operation for a route.
	ErrNoOperation = errors.New("protect: route not in OpenAPI document")
	// ErrOptions: a route's options are inconsistent.
	ErrOptions = errors.New("protect: invalid route options")
)

// Spec is a loaded, validated OpenAPI 3.0 or 3.1 document. Load it once per
// upstream and share it between that upstream's routes; it is read-only after
// ParseSpec and safe for concurrent use.
type Spec struct {
	doc *openapi3.T
	// flagDoc is doc as seen by openapi3filter's parameter decoder: the same
	// document labelled 3.0. Why: for a 3.1 document openapi3filter rebuilds and
	// recompiles a JSON Schema 2020-12 validator on every call (milliseconds);
	// plain parameter schemas validate the same under the compiled 3.0 visitor.
	flagDoc *openapi3.T
	is31    bool
	// bases are the path prefixes of the document's servers ("/api" of
	// https://x/api), tried when a route path does not match a path key as is.
	bases []string
}

// ParseSpec loads an OpenAPI document (YAML or JSON). External references are
// refused: the document must be self-contained, so start-up never touches the
// network or the file system on the document's say-so.
func ParseSpec(data []byte) (*Spec, error) {
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableSchemaFormatValidation()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	s := &Spec{doc: doc, flagDoc: doc, is31: doc.IsOpenAPI31OrLater()}
	if s.is31 {
		cp := *doc
		cp.OpenAPI = "3.0.3"
		s.flagDoc = &cp
	}
	for _, srv := range doc.Servers {
		u, err := url.Parse(srv.URL)
		if err != nil || strings.Contains(srv.URL, "{") {
			continue
		}
		if p := strings.TrimRight(u.Path, "/"); p != "" {
			s.bases = append(s.bases, p)
		}
	}
	return s, nil
}

// Version is the document's openapi field, e.g. "3.1.0".
func (s *Spec) Version() string { return s.doc.OpenAPI }

// findPath returns the document's path key and item for a route path template,
// matching parameter segments by position whatever their names, and the map
// from the route's parameter names to the document's.
func (s *Spec) findPath(template string) (string, *openapi3.PathItem, map[string]string, bool) {
	candidates := []string{template}
	for _, b := range s.bases {
		if rest, ok := strings.CutPrefix(template, b); ok && strings.HasPrefix(rest, "/") {
			candidates = append(candidates, rest)
		}
	}
	for _, cand := range candidates {
		want := strings.Split(cand, "/")
		for key, item := range s.doc.Paths.Map() {
			have := strings.Split(key, "/")
			if len(have) != len(want) {
				continue
			}
			names := map[string]string{}
			ok := true
			for i := range have {
				hp, wp := isParam(have[i]), isParam(want[i])
				switch {
				case hp && wp:
					names[want[i][1:len(want[i])-1]] = have[i][1 : len(have[i])-1]
				case hp || wp || have[i] != want[i]:
					ok = false
				}
				if !ok {
					break
				}
			}
			if ok {
				return key, item, names, true
			}
		}
	}
	return "", nil, nil, false
}

func isParam(seg string) bool {
	return len(seg) >= 2 && seg[0] == '{' && seg[len(seg)-1] == '}'
}
