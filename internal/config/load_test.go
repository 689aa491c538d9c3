package config

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// minimal is the smallest valid file; tests append to it.
const minimal = `issuer: https://api.example.com
store: sqlite:///tmp/g.db
kek: env://KEK
` + tlsFiles

// tlsFiles is the last part of minimal; withTLS moves it to the end.
const tlsFiles = "server: {tls: {cert_file: c.pem, key_file: k.pem}}\n"

// withTLS returns minimal followed by src, with the TLS files at the end unless
// src has its own server section. The lines of src start at 4.
func withTLS(src string) string {
	head := strings.TrimSuffix(minimal, tlsFiles)
	if strings.Contains(src, "server:") {
		return head + src
	}
	return head + src + tlsFiles
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// parseProblems parses src and returns its problems, failing if there are none.
func parseProblems(t *testing.T, src string, getenv func(string) string) Problems {
	t.Helper()
	c, err := Parse([]byte(src), "g.yaml", getenv)
	if err == nil {
		t.Fatalf("Parse succeeded (%+v); want problems", c)
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error %v (%T) is not Problems", err, err)
	}
	if c != nil {
		t.Error("Parse returned a config together with problems")
	}
	return ps
}

func TestParseMinimal(t *testing.T) {
	c, err := Parse([]byte(minimal), "g.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Issuer, want.Store, want.KEK = "https://api.example.com", "sqlite:///tmp/g.db", "env://KEK"
	want.Server.TLS.CertFile, want.Server.TLS.KeyFile = "c.pem", "k.pem"
	if !reflect.DeepEqual(*c, want) {
		t.Fatalf("minimal file did not load as defaults:\n got %+v\nwant %+v", *c, want)
	}
}

func TestExampleFileLoads(t *testing.T) {
	c, err := Load("../../gatehouse.example.yaml", nil)
	if err != nil {
		t.Fatalf("the example file must load and validate:\n%v", err)
	}
	if c.Tokens.AccessTTL.D() != 15*time.Minute || c.Routes[1].Name != "GET,POST /v1/notes" || c.Upstreams["notes"].URL != "http://127.0.0.1:9000" {
		t.Errorf("unexpected values: %+v", c)
	}
}

// fieldPaths lists every option of the Config tree in documentation form:
// "server.tls.cert_file", "routes[].path", "upstreams.<name>.url".
func fieldPaths(t reflect.Type, prefix string) []string {
	var out []string
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	_, names := yamlFields(t)
	fields, _ := yamlFields(t)
	for _, name := range names {
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		out = append(out, p)
		ft := fields[name]
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct:
			out = append(out, fieldPaths(ft, p)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, fieldPaths(ft.Elem(), p+"[]")...)
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct:
			out = append(out, fieldPaths(ft.Elem(), p+".<name>")...)
		}
	}
	return out
}

// The example file shows every option, set or (for optional file and rule
// values) in a comment.
func TestExampleFileShowsEveryOption(t *testing.T) {
	data, err := os.ReadFile("../../gatehouse.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ix := buildIndex(mustNode(t, data))
	present := map[string]bool{}
	norm := regexp.MustCompile(`\[\d+\]`)
	for _, e := range ix.entries {
		p := norm.ReplaceAllString(e.path, "[]")
		p = strings.Replace(p, "upstreams.notes", "upstreams.<name>", 1)
		p = strings.Replace(p, "plans.free", "plans.<name>", 1)
		present[p] = true
	}
	for _, p := range fieldPaths(reflect.TypeOf(Config{}), "") {
		leaf := p[strings.LastIndex(p, ".")+1:]
		commented := regexp.MustCompile(`#\s+(- )?` + regexp.QuoteMeta(leaf) + `:`)
		if !present[p] && !commented.Match(data) {
			t.Errorf("gatehouse.example.yaml does not show %s", p)
		}
	}
}

// docs/config.md documents every option and every environment override.
func TestDocsCoverEveryOption(t *testing.T) {
	data, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, p := range fieldPaths(reflect.TypeOf(Config{}), "") {
		if !strings.Contains(doc, "`"+p+"`") {
			t.Errorf("docs/config.md does not document `%s`", p)
		}
	}
	for _, o := range envOverrides {
		if !strings.Contains(doc, "`"+o.env+"`") {
			t.Errorf("docs/config.md does not document `%s`", o.env)
		}
	}
}

func TestUnknownKeys(t *testing.T) {
	tests := []struct {
		name, src, path string
		line            int
		msg             string
	}{
		{"top level", "isuer: https://x\n", "isuer", 4, `unknown key (did you mean "issuer"?)`},
		{"top level no suggestion", "frobnicate: 1\n", "frobnicate", 4, "unknown key"},
		{"depth 2", "server:\n  listn: :8443\n", "server.listn", 5, `did you mean "listen"?`},
		{"depth 3", "server:\n  tls:\n    certfile: x\n", "server.tls.certfile", 6, `did you mean "cert_file"?`},
		{"depth 4", "identity:\n  password:\n    argon2:\n      memory: 65536\n", "identity.password.argon2.memory", 7, "unknown key"},
		{"in list item", "routes:\n  - path: /a\n    upstream: api\n  - path: /b\n    upstrem: api\n", "routes[1].upstrem", 8, `did you mean "upstream"?`},
		{"in map value", "upstreams:\n  api:\n    urls: http://h\n", "upstreams.api.urls", 6, `did you mean "url"?`},
		{"in flow mapping", "services: [{id: a, secret: x}]\n", "services[0].secret", 4, "unknown key"},
		{"wrong case", "Issuer: https://x\n", "Issuer", 4, `did you mean "issuer"?`},
		{"quoted odd key", "plans: {}\nserver:\n  \"max body\": 1\n", `server["max body"]`, 6, "unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := parseProblems(t, withTLS(tt.src), nil)
			for _, p := range ps {
				if p.Path == tt.path {
					if p.Line != tt.line || !strings.Contains(p.Message, tt.msg) {
						t.Fatalf("got line %d %q; want line %d ...%q...", p.Line, p.Message, tt.line, tt.msg)
					}
					return
				}
			}
			t.Fatalf("no problem at %s:\n%v", tt.path, ps)
		})
	}
}

func TestWrongTypes(t *testing.T) {
	tests := []struct {
		name, src, path string
		line            int
		msg             string
	}{
		{"string for int", "identity:\n  lockout:\n    ip_failures: many\n", "identity.lockout.ip_failures", 6, `must be a whole number (got string "many")`},
		{"float for int", "identity:\n  lockout:\n    ip_failures: 1.5\n", "identity.lockout.ip_failures", 6, "whole number"},
		{"negative uint", "identity:\n  password:\n    argon2: {iterations: -3}\n", "identity.password.argon2.iterations", 6, "0 to 4294967295"},
		{"uint8 overflow", "identity:\n  password:\n    argon2:\n      parallelism: 256\n", "identity.password.argon2.parallelism", 7, "0 to 255"},
		{"list for string", "log:\n  level: [info]\n", "log.level", 5, "must be a string (got a list)"},
		{"block list for string", "log:\n  level:\n    - info\n", "log.level", 6, "must be a string (got a list)"},
		{"map for list", "tokens:\n  audience: {a: b}\n", "tokens.audience", 5, "must be a list (got a mapping)"},
		{"scalar for struct", "server: 8443\n", "server", 4, "must be a mapping"},
		{"string for bool", "admin:\n  disabled: maybe\n", "admin.disabled", 5, "true or false"},
		{"scalar for routes", "routes: /v1\n", "routes", 4, "must be a list"},
		{"scalar route item", "routes:\n  - /v1\n", "routes[0]", 5, "must be a mapping"},
		{"duration number", "tokens:\n  access_ttl: 900\n", "tokens.access_ttl", 5, `missing unit after 900`},
		{"duration negative", "tokens:\n  access_ttl: -15m\n", "tokens.access_ttl", 5, "sign"},
		{"duration list", "tokens:\n  access_ttl: [15m]\n", "tokens.access_ttl", 5, "must be a duration"},
		{"duration unit", "keys:\n  jwks_cache_ttl: 5 minutes\n", "keys.jwks_cache_ttl", 5, "unknown unit"},
		{"duration in flow map", "tokens: {access_ttl: 15m, reuse_leeway: 10x}\n", "tokens.reuse_leeway", 4, "unknown unit"},
		{"value in flow map", "tokens: {algorithm: ES256, access_ttl: 1m, scope: [a]}\n", "tokens.scope", 4, "must be a string"},
		{"long value truncated", "identity:\n  lockout: {window: 1m, ip_failures: abcdefghijklmnop}\n", "identity.lockout.ip_failures", 5, `got string "abcdefg..."`},
		{"plans not a map", "plans: [free]\n", "plans", 4, "must be a mapping"},
		{"plan value list", "plans:\n  free: [1, h]\n", "plans.free", 5, "must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := parseProblems(t, withTLS(tt.src), nil)
			if len(ps) != 1 {
				t.Fatalf("want exactly one problem, got:\n%v", ps)
			}
			p := ps[0]
			if p.Path != tt.path || p.Line != tt.line || !strings.Contains(p.Message, tt.msg) {
				t.Fatalf("got %s:%d %q; want %s:%d ...%q...", p.Path, p.Line, p.Message, tt.path, tt.line, tt.msg)
			}
		})
	}
}

func TestDuplicateKeys(t *testing.T) {
	ps := parseProblems(t, withTLS("log:\n  level: info\n  level: debug\n"), nil)
	if len(ps) != 1 || ps[0].Path != "log.level" || ps[0].Line != 6 || !strings.Contains(ps[0].Message, "first defined at line 5") {
		t.Fatalf("got %v", ps)
	}
	// A duplicate at the top level: yaml.v3 decodes nothing, so nothing else
	// is reported (every required key would look missing).
	ps = parseProblems(t, minimal+"issuer: https://other.example.com\n", nil)
	if len(ps) != 1 || ps[0].Path != "issuer" || ps[0].Line != 5 || !strings.Contains(ps[0].Message, "duplicate key") {
		t.Fatalf("got %v", ps)
	}
}

func TestManyProblemsGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/problems.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(data, "problems.yaml", nil)
	if err == nil {
		t.Fatal("no problems")
	}
	got := err.Error() + "\n"
	golden := filepath.Join("testdata", "problems.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestManyProblemsGolden -update)", err)
	}
	if got != string(want) {
		t.Errorf("problems differ from %s (rerun with -update if intended):\n--- got\n%s--- want\n%s", golden, got, want)
	}
	if strings.Contains(got, "hunter2") {
		t.Error("output echoes the store password")
	}
}

func TestEnvOverrides(t *testing.T) {
	env := map[string]string{
		EnvIssuer: "https://env.example.com",
		EnvStore:  "postgres://gh:pw@db/gh",
		EnvCache:  "redis://127.0.0.1:6379/0",
		EnvKEK:    "env://KEK_FROM_ENV",
	}
	c, err := Parse([]byte(minimal+"cache: memory\n"), "g.yaml", envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != env[EnvIssuer] || c.Store != env[EnvStore] || c.Cache != env[EnvCache] || c.KEK != env[EnvKEK] {
		t.Fatalf("overrides not applied: %+v", c)
	}

	t.Run("empty variables change nothing", func(t *testing.T) {
		c, err := Parse([]byte(minimal), "g.yaml", envOf(map[string]string{EnvStore: ""}))
		if err != nil || c.Store != "sqlite:///tmp/g.db" {
			t.Fatalf("%v, %v", c, err)
		}
	})

	t.Run("required values only from env", func(t *testing.T) {
		src := tlsFiles
		if _, err := Parse([]byte(src), "g.yaml", envOf(env)); err != nil {
			t.Fatal(err)
		}
		ps := parseProblems(t, src, nil)
		var paths []string
		for _, p := range ps {
			paths = append(paths, p.Path)
		}
		if want := []string{"issuer", "store", "kek"}; !slices.Equal(paths, want) {
			t.Fatalf("paths %v, want %v", paths, want)
		}
		if !strings.Contains(ps[0].Message, EnvIssuer) {
			t.Errorf("issuer problem does not mention %s: %q", EnvIssuer, ps[0].Message)
		}
	})

	t.Run("bad env value names the variable, not a line", func(t *testing.T) {
		ps := parseProblems(t, minimal, envOf(map[string]string{EnvKEK: "plain-secret", EnvCache: "memcached://h"}))
		if len(ps) != 2 {
			t.Fatalf("got %v", ps)
		}
		for _, p := range ps {
			if p.Line != 0 || !strings.Contains(p.Message, "(value from GATEHOUSE_") || strings.Contains(p.Message, "plain-secret") {
				t.Errorf("got %+v", p)
			}
		}
	})

	t.Run("nil getenv reads nothing", func(t *testing.T) {
		t.Setenv(EnvIssuer, "https://process-env.example.com")
		c, err := Parse([]byte(minimal), "g.yaml", nil)
		if err != nil || c.Issuer != "https://api.example.com" {
			t.Fatalf("%v, %v", c, err)
		}
	})
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("ok", func(t *testing.T) {
		if _, err := Load(write("ok.yaml", []byte(minimal)), nil); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("missing file is an I/O error", func(t *testing.T) {
		_, err := Load(filepath.Join(dir, "nope.yaml"), nil)
		var ps Problems
		if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &ps) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("directory", func(t *testing.T) {
		if _, err := Load(dir, nil); err == nil {
			t.Fatal("loading a directory succeeded")
		}
	})

	t.Run("too large", func(t *testing.T) {
		big := append([]byte(minimal), []byte(strings.Repeat("#", MaxFileBytes))...)
		_, err := Load(write("big.yaml", big), nil)
		var ps Problems
		if !errors.As(err, &ps) || len(ps) != 1 || !strings.Contains(ps[0].Message, "1 MiB") || !strings.HasSuffix(ps[0].File, "big.yaml") {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("exactly the limit", func(t *testing.T) {
		pad := MaxFileBytes - len(minimal) - 1
		data := []byte(minimal + "#" + strings.Repeat("x", pad-1) + "\n")
		if len(data) != MaxFileBytes {
			t.Fatalf("test file is %d bytes", len(data))
		}
		if _, err := Load(write("limit.yaml", data), nil); err != nil {
			t.Fatalf("a file of exactly %d bytes: %v", MaxFileBytes, err)
		}
	})

	t.Run("problems name the file", func(t *testing.T) {
		p := write("bad.yaml", []byte(minimal+"tokens:\n  access_ttl: 2h\n"))
		_, err := Load(p, nil)
		if err == nil || err.Error() != p+":6: tokens.access_ttl: must be at most 1h (got 2h)" {
			t.Fatalf("got %v", err)
		}
	})
}

func TestChecksGetLines(t *testing.T) {
	src := minimal + `upstreams:
  api: {url: "http://127.0.0.1:9000"}
routes:
  - path: /a
    upstream: api
  - path: /b
    upstream: api
    allow: "token.sub =="
`
	check := func(c *Config) []Problem {
		var ps []Problem
		for i, r := range c.Routes {
			if strings.HasSuffix(r.Allow, "==") {
				ps = append(ps, Problem{Path: pathIndex("routes", i) + ".allow", Message: "does not compile"})
			}
		}
		return ps
	}
	_, err := ParseWith([]byte(src), "g.yaml", nil, check)
	if err == nil || err.Error() != "g.yaml:12: routes[1].allow: does not compile" {
		t.Fatalf("got %v", err)
	}
	if _, err := ParseWith([]byte(minimal), "g.yaml", nil, check); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "g.yaml")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadWith(p, nil, check); err == nil || !strings.Contains(err.Error(), ":12: routes[1].allow") {
		t.Fatalf("LoadWith: %v", err)
	}
}

func TestMissingKeysReportedAtTheirObject(t *testing.T) {
	src := minimal + `upstreams:
  api:
    timeout: 5s
routes:
  - path: /a
    upstream: api
  - methods: [GET]
`
	ps := parseProblems(t, src, nil)
	got := map[string]int{}
	for _, p := range ps {
		got[p.Path] = p.Line
	}
	want := map[string]int{"upstreams.api.url": 6, "routes[1].path": 11, "routes[1].upstream": 11}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v\n%v", got, want, ps)
	}
}

func TestWholeFileProblems(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		msg       string
	}{
		// yaml.v3 reports the line of a parser error's context, which may be a
		// line before the fault; scanner errors are exact.
		{"syntax", "issuer: https://x\nserver:\n  listen: [a\n", 2, "invalid YAML: did not find expected ',' or ']'"},
		{"tab indentation", "server:\n\tlisten: x\n", 2, "invalid YAML: found character that cannot start any token"},
		{"second document", minimal + "---\nissuer: https://evil.example.com\n", 5, "one YAML document"},
		{"second document broken", minimal + "---\n[\n", 6, "one YAML document"},
		{"root is a list", "- a\n- b\n", 1, "must be a mapping of settings (got a list)"},
		{"root is a scalar", "hello\n", 1, "must be a mapping of settings (got a single value)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := parseProblems(t, tt.src, nil)
			if len(ps) != 1 || ps[0].Line != tt.line || !strings.Contains(ps[0].Message, tt.msg) {
				t.Fatalf("got %v; want line %d ...%q...", ps, tt.line, tt.msg)
			}
		})
	}

	t.Run("empty file reports the required keys", func(t *testing.T) {
		for _, src := range []string{"", "# only a comment\n", "---\n"} {
			ps := parseProblems(t, src, nil)
			if len(ps) != 5 || ps[0].Path != "issuer" {
				t.Fatalf("%q: got %v", src, ps)
			}
		}
	})
}

func TestAliasesAndMerges(t *testing.T) {
	src := minimal + `upstreams:
  api: {url: "http://h"}
routes:
  - &r {name: one, path: /a, upstream: api}
  - <<: *r
    name: two
    path: /b
  - *r
`
	ps := parseProblems(t, src, nil)
	if len(ps) != 2 || ps[0].Path != "routes[2].name" || ps[0].Line != 12 || !strings.Contains(ps[0].Message, "duplicate route name") ||
		ps[1].Path != "routes[2]" || ps[1].Line != 12 || !strings.Contains(ps[1].Message, "unreachable") {
		t.Fatalf("got %v", ps)
	}

	// A billion-laughs document is refused by the decoder, quickly and without
	// the line index expanding it.
	bomb := "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
	for i := 'b'; i <= 'j'; i++ {
		prev := string(i - 1)
		bomb += string(i) + ": &" + string(i) + " [*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + "]\n"
	}
	ps = parseProblems(t, bomb, nil)
	if !strings.Contains(ps.Error(), "alias") && !strings.Contains(ps.Error(), "unknown key") {
		t.Fatalf("got %v", ps)
	}
}

func TestProblemsError(t *testing.T) {
	ps := Problems{
		{File: "g.yaml", Line: 12, Path: "tokens.access_ttl", Message: "must be at most 1h (got 2h)"},
		{File: "g.yaml", Path: "kek", Message: "is required"},
		{File: "g.yaml", Line: 3, Message: "invalid YAML: x"},
		{Line: 4, Path: "a", Message: "m"},
		{Path: "b", Message: "m"},
	}
	want := "g.yaml:12: tokens.access_ttl: must be at most 1h (got 2h)\n" +
		"g.yaml: kek: is required\n" +
		"g.yaml:3: invalid YAML: x\n" +
		"line 4: a: m\n" +
		"b: m"
	if got := ps.Error(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}

	var err error = ps
	var ptr *Problems
	if !errors.As(err, &ptr) || len(*ptr) != 5 {
		t.Fatal("errors.As with *Problems failed")
	}
	var val Problems
	if !errors.As(err, &val) || len(val) != 5 {
		t.Fatal("errors.As with Problems failed")
	}
}

func TestParentPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"routes[2].path", "routes[2]"},
		{"routes[2]", "routes"},
		{"routes", ""},
		{"", ""},
		{"upstreams.api.url", "upstreams.api"},
		{`plans["a.b"]`, "plans"},
		{`upstreams["a.b"].url`, `upstreams["a.b"]`},
		{`upstreams["x[1]"]`, "upstreams"},
		{`upstreams["q\"["]`, "upstreams"},
	}
	for _, tt := range tests {
		if got := parentPath(tt.in); got != tt.want {
			t.Errorf("parentPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func mustNode(t *testing.T, data []byte) *yaml.Node {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		t.Fatal(err)
	}
	return &n
}

// A hostile file with a huge number of problems stays fast and reports a
// bounded list.
func TestManyProblemsAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(minimal + "tokens:\n  audience: [")
	for i := 0; i < 50000; i++ {
		b.WriteString("[],")
	}
	b.WriteString("]\nroutes:\n")
	for i := 0; i < 5000; i++ {
		if i%2 == 0 {
			b.WriteString("  - {path: /a, methods: [GET], upstream: x}\n")
		} else {
			b.WriteString("  - {path: /a, methods: [POST], upstream: x}\n")
		}
	}
	ps := parseProblems(t, b.String(), nil)
	if len(ps) != maxProblems+1 || !strings.Contains(ps[maxProblems].Message, "more problems") {
		t.Fatalf("got %d problems, last %v", len(ps), ps[len(ps)-1])
	}
}

// Files that would make yaml.v3's pairwise duplicate-key check blow up are
// refused by the linear walk before decoding.
func TestHugeMappingsAreRefused(t *testing.T) {
	var wide strings.Builder
	wide.WriteString(minimal + "plans:\n")
	for i := 0; i <= maxMappingKeys; i++ {
		wide.WriteString("  p" + strconv.Itoa(i) + ": 1/h\n")
	}
	ps := parseProblems(t, wide.String(), nil)
	if len(ps) != 1 || ps[0].Path != "plans" || ps[0].Line != 5 || !strings.Contains(ps[0].Message, "has 1001 keys; at most 1000") {
		t.Fatalf("got %v", ps)
	}

	var dups strings.Builder
	dups.WriteString(minimal + "routes:\n")
	for r := 0; r < 3; r++ {
		dups.WriteString("  - path: /a\n")
		for i := 0; i < 5; i++ {
			dups.WriteString("    path: /a\n")
		}
	}
	ps = parseProblems(t, dups.String(), nil)
	if len(ps) != 15 || ps[0].Path != "routes[0].path" || ps[0].Line != 7 || ps[0].Message != "duplicate key (first defined at line 6)" {
		t.Fatalf("got %v", ps)
	}
}
