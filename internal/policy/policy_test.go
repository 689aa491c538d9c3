package policy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// now is the fixed "current time" of these tests.
var now = time.Unix(1_800_000_000, 0)

func newEnv(t testing.TB) *Env {
	t.Helper()
	env, err := NewEnv(Options{})
	if err != nil {
		t.Fatalf("NewEnv: %v", err)
	}
	return env
}

// claims returns a valid token for user "u1", changed by each mod.
func claims(mods ...func(*token.Claims)) *token.Claims {
	c := &token.Claims{
		Issuer:    "https://api.example.com",
		Subject:   "u1",
		Audience:  token.Audience{"gatehouse"},
		Expiry:    now.Add(10 * time.Minute).Unix(),
		IssuedAt:  now.Add(-5 * time.Minute).Unix(),
		ID:        "jti-1",
		SessionID: "s1",
		Scope:     "api notes:read",
		Roles:     []string{"user"},
		Plan:      "free",
		AMR:       []string{"pwd"},
		AuthTime:  now.Add(-5 * time.Minute).Unix(),
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

func withRoles(r ...string) func(*token.Claims) { return func(c *token.Claims) { c.Roles = r } }
func withScope(s string) func(*token.Claims)    { return func(c *token.Claims) { c.Scope = s } }
func withAMR(a ...string) func(*token.Claims)   { return func(c *token.Claims) { c.AMR = a } }
func withPlan(p string) func(*token.Claims)     { return func(c *token.Claims) { c.Plan = p } }
func withAuthTime(t time.Time) func(*token.Claims) {
	return func(c *token.Claims) {
		c.AuthTime = 0
		if !t.IsZero() {
			c.AuthTime = t.Unix()
		}
	}
}

func mustRequest(t testing.TB, env *Env, expr string) *Program {
	t.Helper()
	p, err := env.CompileRequest(expr)
	if err != nil {
		t.Fatalf("CompileRequest(%q): %v", expr, err)
	}
	return p
}

func mustResponse(t testing.TB, env *Env, expr string) *Program {
	t.Helper()
	p, err := env.CompileResponse(expr)
	if err != nil {
		t.Fatalf("CompileResponse(%q): %v", expr, err)
	}
	return p
}

func checkDecision(t *testing.T, got Decision, allow bool, status int, reason string) {
	t.Helper()
	if got.Allow != allow || got.Status != status || got.Reason != reason {
		t.Errorf("decision = %+v, want {Allow:%v Status:%d Reason:%q}", got, allow, status, reason)
	}
}

func TestDecideAccess(t *testing.T) {
	mfa := &Rule{Access: Authenticated, MFA: true}
	mfaFresh := &Rule{Access: Authenticated, MFA: true, MFAMaxAge: 15 * time.Minute}
	tests := []struct {
		name   string
		rule   *Rule
		claims *token.Claims
		now    time.Time
		allow  bool
		status int
		reason string
	}{
		// Deny by default.
		{"nil rule", nil, claims(), now, false, 403, ReasonNoPolicy},
		{"zero rule no token", &Rule{}, nil, now, false, 403, ReasonNoPolicy},
		{"zero rule valid token", &Rule{}, claims(withRoles("admin")), now, false, 403, ReasonNoPolicy},
		{"unknown access", &Rule{Access: "everyone"}, claims(), now, false, 403, ReasonNoPolicy},
		{"access case matters", &Rule{Access: "Public"}, nil, now, false, 403, ReasonNoPolicy},

		{"public no token", &Rule{Access: Public}, nil, now, true, 0, ""},
		{"public valid token", &Rule{Access: Public}, claims(), now, true, 0, ""},
		// Config rejects these combinations; a Rule built in code fails closed.
		{"public with roles no token", &Rule{Access: Public, Roles: []string{"admin"}}, nil, now, false, 401, ReasonNoToken},
		{"public with roles wrong role", &Rule{Access: Public, Roles: []string{"admin"}}, claims(), now, false, 403, ReasonMissingRole},
		{"public with scopes no token", &Rule{Access: Public, Scopes: []string{"api"}}, nil, now, false, 401, ReasonNoToken},
		{"public with mfa no token", &Rule{Access: Public, MFA: true}, nil, now, false, 401, ReasonNoToken},

		{"authenticated no token", &Rule{Access: Authenticated}, nil, now, false, 401, ReasonNoToken},
		{"authenticated valid token", &Rule{Access: Authenticated}, claims(), now, true, 0, ""},

		{"roles no token", &Rule{Access: Authenticated, Roles: []string{"admin"}}, nil, now, false, 401, ReasonNoToken},
		{"roles missing", &Rule{Access: Authenticated, Roles: []string{"admin", "support"}}, claims(), now, false, 403, ReasonMissingRole},
		{"roles nil claim", &Rule{Access: Authenticated, Roles: []string{"admin"}}, claims(withRoles()), now, false, 403, ReasonMissingRole},
		{"roles one of", &Rule{Access: Authenticated, Roles: []string{"admin", "support"}}, claims(withRoles("user", "support")), now, true, 0, ""},
		{"roles case sensitive", &Rule{Access: Authenticated, Roles: []string{"admin"}}, claims(withRoles("Admin")), now, false, 403, ReasonMissingRole},
		{"roles no substring", &Rule{Access: Authenticated, Roles: []string{"admin"}}, claims(withRoles("administrator")), now, false, 403, ReasonMissingRole},

		{"scopes no token", &Rule{Access: Authenticated, Scopes: []string{"api"}}, nil, now, false, 401, ReasonNoToken},
		{"scopes all present", &Rule{Access: Authenticated, Scopes: []string{"notes:read", "api"}}, claims(), now, true, 0, ""},
		{"scopes one missing", &Rule{Access: Authenticated, Scopes: []string{"api", "notes:write"}}, claims(), now, false, 403, ReasonMissingScope},
		{"scopes empty claim", &Rule{Access: Authenticated, Scopes: []string{"api"}}, claims(withScope("")), now, false, 403, ReasonMissingScope},
		{"scopes no prefix match", &Rule{Access: Authenticated, Scopes: []string{"notes"}}, claims(withScope("notes:read")), now, false, 403, ReasonMissingScope},
		{"scopes extra spaces", &Rule{Access: Authenticated, Scopes: []string{"b"}}, claims(withScope("  a   b ")), now, true, 0, ""},
		{"scopes no comma split", &Rule{Access: Authenticated, Scopes: []string{"b"}}, claims(withScope("a,b")), now, false, 403, ReasonMissingScope},

		{"roles and scopes both hold", &Rule{Access: Authenticated, Roles: []string{"user"}, Scopes: []string{"api"}}, claims(), now, true, 0, ""},
		{"roles hold scopes not", &Rule{Access: Authenticated, Roles: []string{"user"}, Scopes: []string{"admin"}}, claims(), now, false, 403, ReasonMissingScope},
		{"scopes hold roles not", &Rule{Access: Authenticated, Roles: []string{"admin"}, Scopes: []string{"api"}}, claims(), now, false, 403, ReasonMissingRole},

		{"mfa no token", mfa, nil, now, false, 401, ReasonNoToken},
		{"mfa pwd only", mfa, claims(), now, false, 403, ReasonMFARequired},
		{"mfa no amr", mfa, claims(withAMR()), now, false, 403, ReasonMFARequired},
		{"mfa pwd twice", mfa, claims(withAMR("pwd", "pwd")), now, false, 403, ReasonMFARequired},
		{"mfa knowledge only", mfa, claims(withAMR("pwd", "kba", "pin")), now, false, 403, ReasonMFARequired},
		{"mfa otp", mfa, claims(withAMR("pwd", "otp")), now, true, 0, ""},
		{"mfa otp alone is one factor", mfa, claims(withAMR("otp")), now, false, 403, ReasonMFARequired},
		{"mfa passkey without verification is one factor", mfa, claims(withAMR("hwk")), now, false, 403, ReasonMFARequired},
		{"mfa passkey with verification", mfa, claims(withAMR("hwk", "user", "mfa")), now, true, 0, ""},
		{"mfa pwd and hwk", mfa, claims(withAMR("pwd", "hwk")), now, true, 0, ""},
		{"mfa swk and fingerprint", mfa, claims(withAMR("swk", "fpt")), now, true, 0, ""},
		{"mfa webauthn alone", mfa, claims(withAMR("webauthn")), now, false, 403, ReasonMFARequired},
		{"mfa two possession factors", mfa, claims(withAMR("otp", "hwk")), now, false, 403, ReasonMFARequired},
		{"mfa generic", mfa, claims(withAMR("pwd", "mfa")), now, true, 0, ""},
		{"mfa sms", mfa, claims(withAMR("pwd", "sms")), now, true, 0, ""},
		{"mfa case sensitive", mfa, claims(withAMR("pwd", "OTP")), now, false, 403, ReasonMFARequired},
		{"mfa without max age ignores auth_time", mfa, claims(withAMR("pwd", "otp"), withAuthTime(now.Add(-48*time.Hour))), now, true, 0, ""},

		{"mfa fresh", mfaFresh, claims(withAMR("pwd", "otp")), now, true, 0, ""},
		{"mfa exactly max age", mfaFresh, claims(withAMR("pwd", "otp"), withAuthTime(now.Add(-15*time.Minute))), now, true, 0, ""},
		{"mfa stale", mfaFresh, claims(withAMR("pwd", "otp"), withAuthTime(now.Add(-16*time.Minute))), now, false, 403, ReasonMFAStale},
		{"mfa no auth_time", mfaFresh, claims(withAMR("pwd", "otp"), withAuthTime(time.Time{})), now, false, 403, ReasonMFAStale},
		{"mfa zero now", mfaFresh, claims(withAMR("pwd", "otp")), time.Time{}, false, 403, ReasonMFAStale},
		{"mfa stale but no second factor", mfaFresh, claims(withAuthTime(now.Add(-time.Hour))), now, false, 403, ReasonMFARequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.rule.Decide(context.Background(), &Input{Method: "GET", Claims: tt.claims, Now: tt.now})
			checkDecision(t, got, tt.allow, tt.status, tt.reason)
		})
	}
}

func TestDecideNilInput(t *testing.T) {
	checkDecision(t, (&Rule{Access: Authenticated}).Decide(context.Background(), nil), false, 401, ReasonNoToken)
	var noCtx context.Context // documented as allowed
	checkDecision(t, (&Rule{Access: Public}).Decide(noCtx, nil), true, 0, "")
}

func TestZeroDecisionDenies(t *testing.T) {
	var d Decision
	if d.Allow {
		t.Fatal("the zero Decision allows")
	}
}

func TestRequestRules(t *testing.T) {
	env := newEnv(t)
	const (
		owner   = `request.path.id == token.sub || "admin" in token.roles`
		premium = `request.method == "GET" || token.plan == "premium"`
		limit   = `has(request.query.limit) && int(request.query.limit) <= 100`
	)
	q := func(s string) url.Values {
		v, err := url.ParseQuery(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name   string
		rule   string
		in     Input
		allow  bool
		reason string
	}{
		{"owner matches", owner, Input{PathParams: map[string]string{"id": "u1"}, Claims: claims()}, true, ""},
		{"owner other user", owner, Input{PathParams: map[string]string{"id": "u2"}, Claims: claims()}, false, ReasonRuleDenied},
		{"owner admin", owner, Input{PathParams: map[string]string{"id": "u2"}, Claims: claims(withRoles("user", "admin"))}, true, ""},
		{"owner no roles claim", owner, Input{PathParams: map[string]string{"id": "u2"}, Claims: claims(withRoles())}, false, ReasonRuleDenied},
		{"owner no path param", owner, Input{Claims: claims()}, false, ReasonRuleError},
		{"owner admin without path param", owner, Input{Claims: claims(withRoles("admin"))}, true, ""},
		{"owner no token", owner, Input{PathParams: map[string]string{"id": "u1"}}, false, ReasonRuleError},
		{"owner empty sub is not a wildcard", owner, Input{PathParams: map[string]string{"id": ""}, Claims: claims(func(c *token.Claims) { c.Subject = "" })}, true, ""},

		{"premium GET", premium, Input{Method: "GET", Claims: claims()}, true, ""},
		{"premium POST free", premium, Input{Method: "POST", Claims: claims()}, false, ReasonRuleDenied},
		{"premium POST premium", premium, Input{Method: "POST", Claims: claims(withPlan("premium"))}, true, ""},
		{"premium POST no plan claim", premium, Input{Method: "POST", Claims: claims(withPlan(""))}, false, ReasonRuleError},
		{"premium GET no token", premium, Input{Method: "GET"}, true, ""},
		{"premium method case", premium, Input{Method: "get", Claims: claims()}, false, ReasonRuleDenied},

		{"limit ok", limit, Input{Query: q("limit=50")}, true, ""},
		{"limit boundary", limit, Input{Query: q("limit=100")}, true, ""},
		{"limit too big", limit, Input{Query: q("limit=101")}, false, ReasonRuleDenied},
		{"limit absent", limit, Input{Query: q("page=2")}, false, ReasonRuleDenied},
		{"limit nil query", limit, Input{}, false, ReasonRuleDenied},
		{"limit first value counts", limit, Input{Query: q("limit=5&limit=500")}, true, ""},
		{"limit not a number", limit, Input{Query: q("limit=ten")}, false, ReasonRuleError},
		{"limit overflow", limit, Input{Query: q("limit=99999999999999999999")}, false, ReasonRuleError},
		{"limit empty value", limit, Input{Query: q("limit=")}, false, ReasonRuleError},
		{"limit empty list", limit, Input{Query: url.Values{"limit": {}}}, false, ReasonRuleDenied},

		// Runtime errors deny with rule_error.
		{"missing claim", `token.client_id == "app"`, Input{Claims: claims()}, false, ReasonRuleError},
		{"missing header", `request.headers["x-tenant"] == "a"`, Input{Claims: claims()}, false, ReasonRuleError},
		{"wrong type dyn", `token.sub > 5`, Input{Claims: claims()}, false, ReasonRuleError},
		{"int of non-number claim", `int(token.sub) > 5`, Input{Claims: claims()}, false, ReasonRuleError},
		{"dyn non-bool result", `token.sub`, Input{Claims: claims()}, false, ReasonRuleError},
		{"division by zero", `1 / (size(request.method) - 3) == 1`, Input{Method: "GET"}, false, ReasonRuleError},
		{"error or true is true", `token.nope == "x" || true`, Input{Claims: claims()}, true, ""},
		{"error and false is false", `token.nope == "x" && false`, Input{Claims: claims()}, false, ReasonRuleDenied},

		// Token presence and whole-map use.
		{"no token has sub", `!has(token.sub)`, Input{}, true, ""},
		{"no token empty", `size(token) == 0 && token == {}`, Input{}, true, ""},
		{"token has sub", `has(token.sub) && has(token.roles)`, Input{Claims: claims()}, true, ""},
		{"optional claims present only when set", `has(token.plan) && !has(token.client_id) && !has(token.nbf)`, Input{Claims: claims()}, true, ""},
		{"list claims always present", `size(token.amr) == 0 && size(token.roles) == 0`, Input{Claims: claims(withAMR(), withRoles())}, true, ""},
		{"scopes split", `"notes:read" in token.scopes && size(token.scopes) == 2 && token.scope == "api notes:read"`, Input{Claims: claims()}, true, ""},
		{"aud list", `token.aud == ["gatehouse"]`, Input{Claims: claims()}, true, ""},
		{"int claims", `token.exp > token.iat && token.auth_time == 1799999700`, Input{Claims: claims()}, true, ""},
		{"claim keys", `"sub" in token && !("password" in token) && token.all(k, k != "cnf")`, Input{Claims: claims()}, true, ""},
		{"token iss", `token.iss.startsWith("https://") && token.sid == "s1" && token.jti == "jti-1"`, Input{Claims: claims()}, true, ""},
		{"token materialized equality", `token == token`, Input{Claims: claims()}, true, ""},

		// Headers: lower-case names, first value, credentials hidden.
		{"header lower-case", `request.headers["x-tenant"] == "a"`, Input{Header: http.Header{"X-Tenant": {"a", "b"}}}, true, ""},
		{"header mixed case name absent", `has(request.headers.X)`, Input{Header: http.Header{"X": {"a"}}}, false, ReasonRuleDenied},
		{"authorization hidden", `!("authorization" in request.headers) && !has(request.headers.cookie)`, Input{Header: http.Header{"Authorization": {"Bearer x"}, "Cookie": {"a=b"}}}, true, ""},
		{"authorization hidden from iteration", `request.headers.all(k, k != "authorization" && k != "proxy-authorization") && size(request.headers) == 1`, Input{Header: http.Header{"Authorization": {"Bearer x"}, "Proxy-Authorization": {"x"}, "Accept": {"*/*"}}}, true, ""},
		{"non-canonical header key", `request.headers["x weird"] == "1"`, Input{Header: http.Header{"x weird": {"1"}}}, true, ""},
		{"headers in", `"accept" in request.headers`, Input{Header: http.Header{"Accept": {"*/*"}}}, true, ""},
		{"query iteration", `request.query.exists(k, k == "b") && size(request.query) == 2`, Input{Query: q("a=1&b=2")}, true, ""},
		{"path map compare", `request.path == {"id": "7"}`, Input{PathParams: map[string]string{"id": "7"}}, true, ""},
		{"string functions", `request.path.id.matches("^[0-9]+$") && request.path.id.size() < 10`, Input{PathParams: map[string]string{"id": "7"}}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if in.Method == "" {
				in.Method = "GET"
			}
			rule := &Rule{Access: Public, Allow: mustRequest(t, env, tt.rule)}
			got := rule.Decide(context.Background(), &in)
			status := 0
			if !tt.allow {
				status = 403
			}
			checkDecision(t, got, tt.allow, status, tt.reason)
		})
	}
}

// TestAccessBeforeRule checks the rule runs only after the access checks pass.
func TestAccessBeforeRule(t *testing.T) {
	env := newEnv(t)
	rule := &Rule{Access: Authenticated, Roles: []string{"admin"}, Allow: mustRequest(t, env, `true`)}
	checkDecision(t, rule.Decide(context.Background(), &Input{}), false, 401, ReasonNoToken)
	checkDecision(t, rule.Decide(context.Background(), &Input{Claims: claims()}), false, 403, ReasonMissingRole)
	checkDecision(t, rule.Decide(context.Background(), &Input{Claims: claims(withRoles("admin"))}), true, 0, "")
	rule.Allow = mustRequest(t, env, `false`)
	checkDecision(t, rule.Decide(context.Background(), &Input{Claims: claims(withRoles("admin"))}), false, 403, ReasonRuleDenied)
}

func TestResponseRules(t *testing.T) {
	env := newEnv(t)
	body := decodeJSON(t, `{
		"id": "n1",
		"owner_id": "u1",
		"num_owner": 42,
		"count": 3,
		"ratio": 0.5,
		"public": false,
		"meta": {"team": {"members": ["u1", "u9"]}},
		"items": [{"owner": "u1", "n": 1}, {"owner": "u1", "n": 2}],
		"nothing": null
	}`)
	tests := []struct {
		name   string
		rule   string
		claims *token.Claims
		status int
		body   any
		allow  bool
		reason string
	}{
		{"owner matches", `response.body.owner_id == token.sub`, claims(), 200, body, true, ""},
		{"owner differs", `response.body.owner_id == token.sub`, claims(func(c *token.Claims) { c.Subject = "u2" }), 200, body, false, ReasonRuleDenied},
		{"owner no token", `response.body.owner_id == token.sub`, nil, 200, body, false, ReasonRuleError},
		{"missing field", `response.body.author == token.sub`, claims(), 200, body, false, ReasonRuleError},
		{"has missing field", `has(response.body.author) && response.body.author == token.sub`, claims(), 200, body, false, ReasonRuleDenied},
		{"nested object", `token.sub in response.body.meta.team.members`, claims(), 200, body, true, ""},
		{"nested missing", `token.sub in response.body.meta.org.members`, claims(), 200, body, false, ReasonRuleError},
		{"array all", `response.body.items.all(i, i.owner == token.sub)`, claims(), 200, body, true, ""},
		{"array exists number", `response.body.items.exists(i, i.n == 2)`, claims(), 200, body, true, ""},
		{"array index", `response.body.items[1].n == 2`, claims(), 200, body, true, ""},
		{"array index out of range", `response.body.items[5].n == 2`, claims(), 200, body, false, ReasonRuleError},
		{"double equals int", `response.body.count == 3 && response.body.count < 4`, claims(), 200, body, true, ""},
		{"double compare", `response.body.ratio < 1 && response.body.ratio > 0.25`, claims(), 200, body, true, ""},
		{"number as string", `string(response.body.num_owner) == "42"`, claims(), 200, body, true, ""},
		{"number vs string claim not equal", `response.body.num_owner == token.sub`, claims(func(c *token.Claims) { c.Subject = "42" }), 200, body, false, ReasonRuleDenied},
		{"bool field", `response.body.public || response.body.owner_id == token.sub`, claims(), 200, body, true, ""},
		{"bool field as rule", `response.body.public`, claims(), 200, body, false, ReasonRuleDenied},
		{"non-bool field as rule", `response.body.count`, claims(), 200, body, false, ReasonRuleError},
		{"null field", `response.body.nothing == null`, claims(), 200, body, true, ""},
		{"status", `response.status == 200 || response.body.owner_id == token.sub`, claims(), 201, body, true, ""},
		{"status only", `response.status >= 400`, claims(), 404, nil, true, ""},
		{"request too", `request.path.id == response.body.id`, claims(), 200, body, true, ""},
		{"array body", `response.body.all(x, x.owner == token.sub)`, claims(), 200, decodeJSON(t, `[{"owner":"u1"},{"owner":"u1"}]`), true, ""},
		{"array body other owner", `response.body.all(x, x.owner == token.sub)`, claims(), 200, decodeJSON(t, `[{"owner":"u1"},{"owner":"u2"}]`), false, ReasonRuleDenied},
		{"scalar body", `response.body == "ok"`, claims(), 200, "ok", true, ""},
		{"nil body", `response.body.owner_id == token.sub`, claims(), 204, nil, false, ReasonRuleError},
		{"nil body null", `response.body == null`, claims(), 204, nil, true, ""},
		{"json.Number int", `response.body.n == 7 && response.body.n + 1 == 8`, claims(), 200, map[string]any{"n": json.Number("7")}, true, ""},
		{"json.Number float", `response.body.n == 7.5`, claims(), 200, map[string]any{"n": json.Number("7.5")}, true, ""},
		{"json.Number nested", `response.body.l.all(x, x > 1)`, claims(), 200, map[string]any{"l": []any{json.Number("2"), json.Number("3.5")}}, true, ""},
		{"json.Number invalid", `response.body.n == 1`, claims(), 200, map[string]any{"n": json.Number("x")}, false, ReasonRuleError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule := &Rule{Access: Authenticated, ResponseAllow: mustResponse(t, env, tt.rule)}
			in := &Input{Method: "GET", PathParams: map[string]string{"id": "n1"}, Claims: tt.claims}
			got := rule.DecideResponse(context.Background(), in, tt.status, tt.body)
			status := 0
			if !tt.allow {
				status = 404
			}
			checkDecision(t, got, tt.allow, status, tt.reason)
		})
	}
}

func TestDecideResponseWithoutRule(t *testing.T) {
	checkDecision(t, (&Rule{Access: Authenticated}).DecideResponse(context.Background(), nil, 200, nil), true, 0, "")
	checkDecision(t, (&Rule{}).DecideResponse(context.Background(), nil, 200, nil), false, 404, ReasonNoPolicy)
	var nilRule *Rule
	checkDecision(t, nilRule.DecideResponse(context.Background(), nil, 200, nil), false, 404, ReasonNoPolicy)
}

// TestResponseVariablesOnlyInResponseRules checks request rules cannot name
// response, which does not exist yet when they run.
func TestResponseVariablesOnlyInResponseRules(t *testing.T) {
	env := newEnv(t)
	if _, err := env.CompileRequest(`response.status == 200`); err == nil {
		t.Fatal("a request rule compiled with response.status")
	}
}

func TestCostLimit(t *testing.T) {
	env := newEnv(t)
	huge := make([]any, 200_000)
	for i := range huge {
		huge[i] = map[string]any{"owner": "u1"}
	}
	rule := &Rule{Access: Authenticated, ResponseAllow: mustResponse(t, env, `response.body.all(x, x.owner == token.sub)`)}
	checkDecision(t, rule.DecideResponse(context.Background(), &Input{Claims: claims()}, 200, huge), false, 404, ReasonRuleError)
	// The same rule over a modest list is well within the limit.
	checkDecision(t, rule.DecideResponse(context.Background(), &Input{Claims: claims()}, 200, huge[:1000]), true, 0, "")

	// A nested comprehension over a request-sized input: 2,000 query
	// parameters squared is 4 million steps.
	qs := url.Values{}
	for i := range 2000 {
		qs.Set("k"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+strconv.Itoa(i), "v")
	}
	req := &Rule{Access: Public, Allow: mustRequest(t, env, `request.query.all(a, request.query.all(b, a != b || a == b))`)}
	checkDecision(t, req.Decide(context.Background(), &Input{Query: qs}), false, 403, ReasonRuleError)

	// A smaller limit in Options applies.
	small, err := NewEnv(Options{CostLimit: 10})
	if err != nil {
		t.Fatal(err)
	}
	rule = &Rule{Access: Authenticated, ResponseAllow: mustResponse(t, small, `response.body.all(x, x.owner == token.sub)`)}
	checkDecision(t, rule.DecideResponse(context.Background(), &Input{Claims: claims()}, 200, huge[:100]), false, 404, ReasonRuleError)
}

func TestContextInterrupts(t *testing.T) {
	env := newEnv(t)
	list := make([]any, 5000)
	for i := range list {
		list[i] = "u1"
	}
	rule := &Rule{Access: Authenticated, ResponseAllow: mustResponse(t, env, `response.body.all(x, x == token.sub)`)}
	in := &Input{Claims: claims()}
	checkDecision(t, rule.DecideResponse(context.Background(), in, 200, list), true, 0, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	checkDecision(t, rule.DecideResponse(ctx, in, 200, list), false, 404, ReasonRuleError)
}

func TestCompileRejects(t *testing.T) {
	env := newEnv(t)
	tests := []struct {
		name     string
		expr     string
		response bool
		want     string // in the error text
	}{
		{"empty", "", false, "is empty"},
		{"blank", " \n\t", false, "is empty"},
		{"too long", "true" + strings.Repeat(" ", MaxRuleBytes), false, "at most 4096"},
		{"invalid utf-8", "request.method == \"\xff\"", false, "UTF-8"},
		{"syntax", `request.method ==`, false, "column"},
		{"unbalanced", `(request.method == "GET"`, false, "column"},
		{"undeclared", `request.body == "x"`, false, "undeclared reference"},
		{"undeclared top level", `user.id == "x"`, false, "undeclared reference"},
		{"request alone", `request == {}`, false, "undeclared reference"},
		{"string result", `request.method`, false, "must be a bool expression (this one is string)"},
		{"int result", `1 + 2`, false, "must be a bool expression (this one is int)"},
		{"list result", `["a"]`, false, "must be a bool expression"},
		{"map result", `request.path`, false, "must be a bool expression"},
		{"null result", `null`, false, "must be a bool expression"},
		{"path param vs int", `request.path.id == 1`, false, "no matching overload"},
		{"method vs int", `request.method > 3`, false, "no matching overload"},
		{"query int compare", `request.query.limit <= 100`, false, "no matching overload"},
		{"unknown function", `request.method.frobnicate()`, false, "undeclared reference"},
		{"map macro", `request.query.map(k, k).size() > 0`, false, "map and filter are not available"},
		{"filter macro", `size(request.query.filter(k, k == "a")) > 0`, false, "map and filter are not available"},
		{"comprehension too deep", `request.query.all(a, request.query.all(b, request.query.all(c, a == b && b == c)))`, false, "nesting"},
		{"bad regex literal", `request.method.matches("(")`, false, "regex"},
		{"response in request rule", `response.status == 200`, false, "undeclared reference"},
		{"response status vs string", `response.status == "200"`, true, "no matching overload"},
		{"response non-bool", `response.status`, true, "must be a bool expression"},
		{"multi-line position", "request.method == \"GET\" &&\n  nope", false, "line 2, column 3"},
		{"deep nesting", strings.Repeat("(", 200) + "true" + strings.Repeat(")", 200), false, "recursion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			compile := env.CompileRequest
			if tt.response {
				compile = env.CompileResponse
			}
			p, err := compile(tt.expr)
			if err == nil {
				t.Fatalf("compiled %q", tt.expr)
			}
			if p != nil {
				t.Errorf("returned a program with the error")
			}
			if !errors.Is(err, ErrInvalidRule) {
				t.Errorf("error %v does not wrap ErrInvalidRule", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error has several lines: %q", err)
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	env := newEnv(t)
	for _, expr := range []string{
		`true`,
		`request.path.id == token.sub || "admin" in token.roles`,
		`request.method == "GET" || token.plan == "premium"`,
		`has(request.query.limit) && int(request.query.limit) <= 100`,
		`token.sub`, // dyn: checked at run time
		`request.query.all(a, request.query.exists(b, a == b))`,
		"request.method == \"GET\" &&\n  has(token.sub)",
		"true" + strings.Repeat(" ", MaxRuleBytes-4),
	} {
		p, err := env.CompileRequest(expr)
		if err != nil {
			t.Errorf("CompileRequest(%q): %v", expr, err)
			continue
		}
		if p.String() != expr {
			t.Errorf("String() = %q, want the source", p.String())
		}
	}
	for _, expr := range []string{
		`response.body.owner_id == token.sub`,
		`response.status == 404 || response.body.items.all(i, i.owner == token.sub)`,
		`request.path.id == response.body.id`,
	} {
		if _, err := env.CompileResponse(expr); err != nil {
			t.Errorf("CompileResponse(%q): %v", expr, err)
		}
	}
}

func TestCompileRoute(t *testing.T) {
	env := newEnv(t)
	r, err := env.CompileRoute(config.Route{
		Path: "/v1/notes/{id}", Upstream: "api",
		Roles: []string{"user"}, Scopes: []string{"api"}, MFA: "required",
		Allow:         `request.path.id == token.sub`,
		ResponseAllow: `response.body.owner_id == token.sub`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Access != Authenticated || !r.MFA || r.MFAMaxAge != 0 || r.Allow == nil || r.ResponseAllow == nil ||
		len(r.Roles) != 1 || len(r.Scopes) != 1 {
		t.Fatalf("rule = %+v", r)
	}
	in := &Input{PathParams: map[string]string{"id": "u1"}, Claims: claims(withAMR("pwd", "otp"))}
	checkDecision(t, r.Decide(context.Background(), in), true, 0, "")
	checkDecision(t, r.DecideResponse(context.Background(), in, 200, map[string]any{"owner_id": "u2"}), false, 404, ReasonRuleDenied)

	stepUp, err := env.CompileRoute(config.Route{Path: "/v1/pay", Upstream: "api", MFA: "required", MFAMaxAge: config.Duration(10 * time.Minute)})
	if err != nil || stepUp.MFAMaxAge != 10*time.Minute {
		t.Fatalf("step-up rule = %+v, %v", stepUp, err)
	}
	now := time.Now()
	fresh := &Input{Now: now, Claims: claims(withAMR("pwd", "otp", "mfa"), withAuthTime(now.Add(-5*time.Minute)))}
	checkDecision(t, stepUp.Decide(context.Background(), fresh), true, 0, "")
	stale := &Input{Now: now, Claims: claims(withAMR("pwd", "otp", "mfa"), withAuthTime(now.Add(-11*time.Minute)))}
	checkDecision(t, stepUp.Decide(context.Background(), stale), false, 403, ReasonMFAStale)

	pub, err := env.CompileRoute(config.Route{Access: config.AccessPublic})
	if err != nil || pub.Access != Public || pub.Allow != nil || pub.ResponseAllow != nil {
		t.Fatalf("public route: %+v, %v", pub, err)
	}
	auth, err := env.CompileRoute(config.Route{Access: config.AccessAuthenticated})
	if err != nil || auth.Access != Authenticated {
		t.Fatalf("authenticated route: %+v, %v", auth, err)
	}

	for _, bad := range []config.Route{
		{Access: "Public"},
		{Access: "anyone"},
		{MFA: "optional"},
		{MFA: "Required"},
		{Allow: `request.path.id == 1`},
		{ResponseAllow: `response.status`},
	} {
		if r, err := env.CompileRoute(bad); err == nil || !errors.Is(err, ErrInvalidRule) || r != nil {
			t.Errorf("CompileRoute(%+v) = %v, %v; want ErrInvalidRule", bad, r, err)
		}
	}
}

func TestHasSecondFactor(t *testing.T) {
	for _, m := range []string{"otp", "hwk", "swk", "webauthn", "passkey", "mfa", "sms"} {
		if !HasSecondFactor([]string{"pwd", m}) {
			t.Errorf("%s is not a second factor", m)
		}
	}
	for _, amr := range [][]string{nil, {}, {"pwd"}, {"pin"}, {"kba"}, {"face"}, {"pwd", ""}, {"OTP"}} {
		if HasSecondFactor(amr) {
			t.Errorf("%q counted as a second factor", amr)
		}
	}
}

// decodeJSON decodes src as encoding/json does for a proxied response body.
func decodeJSON(t testing.TB, src string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(src), &v); err != nil {
		t.Fatal(err)
	}
	return v
}
