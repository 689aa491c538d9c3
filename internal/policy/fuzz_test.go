package policy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// FuzzCompile compiles arbitrary text as both kinds of rule. Compiling must
// never panic, and whatever compiles must evaluate against arbitrary inputs
// without panicking and with a consistent decision.
func FuzzCompile(f *testing.F) {
	seeds := []struct {
		expr, id, query, header, sub, role, body string
	}{
		// The documented examples.
		{`request.path.id == token.sub || "admin" in token.roles`, "u1", "", "", "u1", "user", `{}`},
		{`request.method == "GET" || token.plan == "premium"`, "", "", "", "u1", "", `{}`},
		{`has(request.query.limit) && int(request.query.limit) <= 100`, "", "limit=50", "", "", "", `{}`},
		{`response.body.owner_id == token.sub`, "", "", "", "u1", "", `{"owner_id":"u1"}`},
		// Runtime errors: wrong types, missing keys, overflow.
		{`int(request.query.limit) > 0`, "", "limit=9223372036854775808", "", "", "", `null`},
		{`token.exp / 0 == 1`, "", "", "", "u1", "", `[]`},
		{`response.body[0].x.y.z == "a"`, "", "", "", "", "", `[{"x":{"y":1}}]`},
		// Whole-map views, iteration, lazily materialized maps.
		{`request.headers.all(k, k != "authorization") && token == token`, "", "", "x-a", "u1", "", `1`},
		{`response.body.exists(x, x.n == 1.0)`, "", "", "", "", "", `[{"n":1},{"n":"1"}]`},
		{`request.path == {"id": "u1"} && request.query != {}`, "u1", "a=1&a=2", "", "", "", `{}`},
		// Cost: nested comprehension over a body list.
		{`response.body.all(a, response.body.all(b, a == b))`, "", "", "", "", "", `[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]`},
		// Syntax junk and odd literals.
		{`((((`, "", "", "", "", "", ``},
		{`"\xff" == request.method`, "", "", "", "", "", ``},
		{`b"abc" == bytes(request.method) || 1u == uint(token.iat)`, "", "", "", "u1", "", ``},
		{`request.method.matches("^(a+)+$")`, "", "", "", "", "", ``},
		{`duration("1h") > duration("1m") && timestamp("2026-01-01T00:00:00Z") < timestamp(token.iat)`, "", "", "", "u1", "", ``},
	}
	for _, s := range seeds {
		f.Add(s.expr, s.id, s.query, s.header, s.sub, s.role, []byte(s.body))
	}
	env, err := NewEnv(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, expr, id, query, header, sub, role string, body []byte) {
		q, _ := url.ParseQuery(query)
		h := http.Header{}
		if header != "" {
			h[http.CanonicalHeaderKey(header)] = []string{id}
		}
		var c *token.Claims
		if sub != "" {
			c = claims(func(c *token.Claims) { c.Subject, c.Roles, c.Scope = sub, []string{role}, role })
		}
		in := &Input{Method: "GET", PathParams: map[string]string{"id": id}, Query: q, Header: h, Claims: c, Now: now}
		var decoded any
		if json.Valid(body) {
			_ = json.Unmarshal(body, &decoded)
		}
		if p, err := env.CompileRequest(expr); err == nil {
			checkConsistent(t, (&Rule{Access: Public, Allow: p}).Decide(context.Background(), in), 403)
		} else if p != nil {
			t.Fatal("program returned with an error")
		}
		if p, err := env.CompileResponse(expr); err == nil {
			checkConsistent(t, (&Rule{Access: Public, ResponseAllow: p}).DecideResponse(context.Background(), in, 200, decoded), 404)
		} else if p != nil {
			t.Fatal("program returned with an error")
		}
	})
}

func checkConsistent(t *testing.T, d Decision, denyStatus int) {
	t.Helper()
	switch {
	case d.Allow && (d.Status != 0 || d.Reason != ""):
		t.Fatalf("allowed with status or reason: %+v", d)
	case !d.Allow && (d.Status != denyStatus || (d.Reason != ReasonRuleDenied && d.Reason != ReasonRuleError)):
		t.Fatalf("denied inconsistently: %+v", d)
	}
}
