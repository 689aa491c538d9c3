package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

func TestCheck(t *testing.T) {
	env := newEnv(t)
	c := &config.Config{Routes: []config.Route{
		{Path: "/a"}, // no rules
		{Path: "/b/{id}", Allow: `request.path.id == token.sub`, ResponseAllow: `response.body.owner == token.sub`},
		{Path: "/c/{id}", Allow: `request.path.id == 1`},
		{Path: "/d", ResponseAllow: `response.status`},
		{Path: "/e", Allow: `nope`, ResponseAllow: `response.body.x ==`},
		{Path: "/f", Allow: `response.status == 200`}, // response is not there yet
		{Path: "/g", Allow: strings.Repeat("true && ", 600) + "true"},
	}}
	got := Check(env)(c)
	type pm struct{ path, msg string }
	want := []pm{
		{"routes[2].allow", "no matching overload"},
		{"routes[3].response_allow", "must be a bool expression"},
		{"routes[4].allow", "undeclared reference to 'nope'"},
		{"routes[4].response_allow", "Syntax error"},
		{"routes[5].allow", "undeclared reference to 'response'"},
		{"routes[6].allow", "at most 4096"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		p := got[i]
		if p.Path != w.path || !strings.Contains(p.Message, w.msg) || !strings.HasPrefix(p.Message, "invalid rule: ") {
			t.Errorf("problem %d = %+v, want path %q and a message with %q", i, p, w.path, w.msg)
		}
		if p.Line != 0 || p.File != "" {
			t.Errorf("problem %d has a position before config attached one: %+v", i, p)
		}
	}
	if ps := Check(env)(&config.Config{}); len(ps) != 0 {
		t.Errorf("empty config: %v", ps)
	}
}

// TestCheckThroughConfig checks the problems come out of config.ParseWith with
// the YAML lines of the offending keys.
func TestCheckThroughConfig(t *testing.T) {
	env := newEnv(t)
	src := `issuer: https://api.example.com
store: sqlite:///tmp/g.db
kek: env://KEK
server: {tls: {cert_file: c.pem, key_file: k.pem}}
upstreams:
  api: {url: "http://127.0.0.1:9000"}
routes:
  - path: /v1/notes/{id}
    upstream: api
    allow: request.path.id == token.sub
  - path: /v1/users/{id}
    upstream: api
    allow: request.path.id == 1
    response_allow: response.body.owner_id
  - path: /v1/things
    upstream: api
    response_allow: response.status
`
	_, err := config.ParseWith([]byte(src), "g.yaml", func(string) string { return "" }, Check(env))
	var ps config.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("ParseWith: %v", err)
	}
	type pl struct {
		path string
		line int
	}
	var got []pl
	for _, p := range ps {
		got = append(got, pl{p.Path, p.Line})
	}
	want := []pl{
		{"routes[2].response_allow", 17},
		{"routes[1].allow", 13},
	}
	// Order is config's business; compare as sets.
	if len(got) != len(want) || !(reflect.DeepEqual(got, want) || reflect.DeepEqual(got, []pl{want[1], want[0]})) {
		t.Fatalf("problems = %v (%v), want %v", got, err, want)
	}

	// The same file with the bad rules fixed loads.
	fixed := strings.NewReplacer(
		"request.path.id == 1", "request.path.id == token.sub",
		"response_allow: response.body.owner_id", "response_allow: response.body.owner_id == token.sub",
		"response_allow: response.status", "response_allow: response.status == 200",
	).Replace(src)
	if _, err := config.ParseWith([]byte(fixed), "g.yaml", func(string) string { return "" }, Check(env)); err != nil {
		t.Fatalf("fixed file: %v", err)
	}
}
