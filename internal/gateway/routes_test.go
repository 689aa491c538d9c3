package gateway

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestCompilePattern(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		ok      bool
	}{
		{"/", true},
		{"/v1/notes", true},
		{"/v1/notes/", true},
		{"/v1/notes/{id}", true},
		{"/v1/{a}/x/{b}", true},
		{"", false},               // no leading slash
		{"v1/notes", false},       // no leading slash
		{"/v1/{}", false},         // empty parameter name
		{"/v1/{id", false},        // half a parameter
		{"/v1/id}", false},        // half a parameter
		{"/v1/x{id}", false},      // parameter inside a segment
		{"/v1/{id}.json", false},  // parameter inside a segment
		{"/v1/{a}{b}", false},     // two parameters in one segment
		{"/v1/{{id}}", false},     // braces inside the name
		{"/v1/{i}d}/x", false},    // stray brace
		{"/{id}/x/{id}y", false},  // later segment malformed
		{"/\x00/{id}", true},      // bytes are config's problem; matching stays literal
		{"/v1/{id}/{id}", true},   // duplicates are rejected by config validation, not here
		{"/v1/notes//{id}", true}, // empty segments likewise
		{"/v1/" + strings.Repeat("a/", 500) + "{id}", true},
	} {
		_, err := compilePattern(tc.pattern)
		if (err == nil) != tc.ok {
			t.Errorf("compilePattern(%q): err %v, want ok=%v", tc.pattern, err, tc.ok)
		}
	}
}

func TestPatternMatch(t *testing.T) {
	type params = map[string]string
	for _, tc := range []struct {
		pattern, path string
		want          params // nil with ok: no parameters
		ok            bool
	}{
		{"/", "/", nil, true},
		{"/", "/x", nil, false},
		{"/", "", nil, false},
		{"/v1/notes", "/v1/notes", nil, true},
		// A pattern without a trailing slash also takes one trailing slash
		// (the same resource); never two.
		{"/v1/notes", "/v1/notes/", nil, true},
		{"/v1/notes", "/v1/notes//", nil, false},
		// A pattern with a trailing slash needs it.
		{"/v1/notes/", "/v1/notes/", nil, true},
		{"/v1/notes/", "/v1/notes", nil, false},
		{"/v1/notes/", "/v1/notes/x", nil, false},
		{"/v1/notes", "/v1/notes/x", nil, false},
		{"/v1/notes", "/v1/note", nil, false},
		{"/v1/notes", "/v1/notesx", nil, false},
		{"/v1/notes", "/V1/notes", nil, false}, // case-sensitive
		{"/v1/notes", "v1/notes", nil, false},  // no leading slash
		{"/v1/notes", "", nil, false},
		{"/v1/notes", "/v1", nil, false},
		{"/v1/notes", "/v1/", nil, false},
		// Empty segments never match a literal or a parameter.
		{"/v1/notes", "//v1/notes", nil, false},
		{"/v1/notes", "/v1//notes", nil, false},
		{"/v1/notes/{id}", "/v1/notes/", nil, false},
		{"/v1/notes/{id}", "/v1/notes//", nil, false},
		{"/v1/notes/{id}", "/v1/notes//7", nil, false},
		// Parameters take exactly one non-empty segment.
		{"/v1/notes/{id}", "/v1/notes/7", params{"id": "7"}, true},
		{"/v1/notes/{id}", "/v1/notes/7/", params{"id": "7"}, true},
		{"/v1/notes/{id}", "/v1/notes/7/x", nil, false},
		{"/v1/notes/{id}", "/v1/notes", nil, false},
		{"/v1/notes/{id}", "/v1/notes/a%2Fb", params{"id": "a%2Fb"}, true}, // chain.go refuses encoded slashes first
		{"/v1/notes/{id}", "/v1/notes/..", params{"id": ".."}, true},       // the server cleans paths before this
		{"/v1/{a}/x/{b}", "/v1/1/x/2", params{"a": "1", "b": "2"}, true},
		{"/v1/{a}/x/{b}", "/v1/1/y/2", nil, false},
		{"/v1/{a}/x/{b}", "/v1/1/x", nil, false},
		{"/{a}", "/ü", params{"a": "ü"}, true},
		{"/{a}/{b}", "/x/y/", params{"a": "x", "b": "y"}, true},
	} {
		p, err := compilePattern(tc.pattern)
		if err != nil {
			t.Fatalf("compilePattern(%q): %v", tc.pattern, err)
		}
		got, ok := p.match(tc.path)
		if ok != tc.ok || !maps.Equal(got, tc.want) {
			t.Errorf("%q.match(%q) = %v, %v; want %v, %v", tc.pattern, tc.path, got, ok, tc.want, tc.ok)
		}
	}
}

func TestTableLookup(t *testing.T) {
	mk := func(name, path string, methods ...string) *route {
		p, err := compilePattern(path)
		if err != nil {
			t.Fatal(err)
		}
		return &route{name: name, pattern: p, methods: methods}
	}
	tbl := table{routes: []*route{
		mk("search", "/v1/notes/search", "GET"),
		mk("note", "/v1/notes/{id}", "GET", "DELETE"),
		mk("note-put", "/v1/notes/{id}", "PUT"),
		mk("notes", "/v1/notes", "GET", "POST"),
		mk("any", "/v1/any"), // no methods: every method
		mk("shadowed", "/v1/notes/search", "GET"),
		mk("post-only", "/v1/post", "POST"),
	}}
	for _, tc := range []struct {
		method, path string
		route        string // "" for no route
		params       map[string]string
		allow        []string
	}{
		// First match wins: the literal route listed first takes "search".
		{"GET", "/v1/notes/search", "search", nil, nil},
		{"GET", "/v1/notes/7", "note", map[string]string{"id": "7"}, nil},
		{"DELETE", "/v1/notes/7", "note", map[string]string{"id": "7"}, nil},
		// Later routes with the same shape are consulted for other methods.
		{"PUT", "/v1/notes/7", "note-put", map[string]string{"id": "7"}, nil},
		// "search" is only GET; DELETE falls through to the {id} route.
		{"DELETE", "/v1/notes/search", "note", map[string]string{"id": "search"}, nil},
		{"POST", "/v1/notes", "notes", nil, nil},
		{"POST", "/v1/notes/", "notes", nil, nil},
		// HEAD is served by a GET route.
		{"HEAD", "/v1/notes", "notes", nil, nil},
		{"HEAD", "/v1/notes/7", "note", map[string]string{"id": "7"}, nil},
		// HEAD is not served by a POST-only route.
		{"HEAD", "/v1/post", "", nil, []string{"POST"}},
		// Methods are exact (upper case, as the server delivers them).
		{"get", "/v1/notes", "", nil, []string{"GET", "HEAD", "POST"}},
		{"PATCH", "/v1/notes/7", "", nil, []string{"GET", "HEAD", "DELETE", "PUT"}},
		// Allow names each method once, however many routes list it.
		{"POST", "/v1/notes/search", "", nil, []string{"GET", "HEAD", "DELETE", "PUT"}},
		{"OPTIONS", "/v1/any", "any", nil, nil},
		{"BREW", "/v1/any", "any", nil, nil},
		{"GET", "/v1/nothing", "", nil, nil},
		{"GET", "/", "", nil, nil},
	} {
		rt, params, allow := tbl.lookup(tc.method, tc.path)
		name := ""
		if rt != nil {
			name = rt.name
		}
		if name != tc.route || !maps.Equal(params, tc.params) || !slices.Equal(allow, tc.allow) {
			t.Errorf("lookup(%s %s) = %q %v allow %v; want %q %v allow %v", tc.method, tc.path, name, params, allow, tc.route, tc.params, tc.allow)
		}
	}
}

// FuzzMatch: compiling and matching never panic, and a match's parameters put
// back into the pattern reproduce the path (up to the one trailing slash a
// pattern without one tolerates).
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"/v1/notes/{id}", "/v1/notes/7"},
		{"/v1/notes/{id}", "/v1/notes/7/"},
		{"/v1/notes", "/v1/notes/"},
		{"/v1/notes/", "/v1/notes"},
		{"/", "/"},
		{"/{a}/x/{b}", "/1/x/2"},
		{"/{a}/{b}", "//"},
		{"/v1/{id}", "/v1/a%2Fb"},
		{"/v1/{id}", "/v1/\x00"},
		{"/{a}", ""},
		{"/{}", "/x"},
		{"x", "x"},
		{"/a//b", "/a//b"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, path string) {
		p, err := compilePattern(pat)
		if err != nil {
			return
		}
		params, ok := p.match(path)
		if !ok {
			if params != nil {
				t.Fatalf("no match but params %v", params)
			}
			return
		}
		// Config validation refuses a parameter named twice; with one, the
		// later value wins and the path cannot be rebuilt.
		seen := map[string]bool{}
		for _, s := range p.segs {
			if s.param != "" {
				if seen[s.param] {
					return
				}
				seen[s.param] = true
			}
		}
		var b strings.Builder
		for _, s := range p.segs {
			b.WriteByte('/')
			if s.param == "" {
				b.WriteString(s.lit)
				continue
			}
			v, ok := params[s.param]
			if !ok || v == "" || strings.Contains(v, "/") {
				t.Fatalf("param %q = %q (present %v) for %q on %q", s.param, v, ok, path, pat)
			}
			b.WriteString(v)
		}
		if got := b.String(); got != path && got+"/" != path {
			t.Fatalf("%q matched %q with %v, which rebuilds %q", pat, path, params, got)
		}
		if len(params) != len(seen) {
			t.Fatalf("%d params for %d parameters", len(params), len(seen))
		}
	})
}

func TestMatchDoesNotAllocateWithoutParams(t *testing.T) {
	p, err := compilePattern("/v1/admin/stats")
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { p.match("/v1/admin/stats") }); n != 0 {
		t.Fatalf("%v allocations per literal match", n)
	}
}
