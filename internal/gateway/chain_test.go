package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
)

// accessRoutes has one route per access mode, all on the recording upstream.
func accessRoutes() []config.Route {
	return []config.Route{
		{Name: "public", Methods: []string{"GET"}, Path: "/pub", Upstream: "rec", Access: "public"},
		{Name: "authn", Methods: []string{"GET"}, Path: "/authn", Upstream: "rec"},
		{Name: "admin", Methods: []string{"GET"}, Path: "/admin", Upstream: "rec", Roles: []string{"admin", "ops"}},
		{Name: "scoped", Methods: []string{"GET"}, Path: "/write", Upstream: "rec", Scopes: []string{"api", "notes:write"}},
		{Name: "mfa", Methods: []string{"GET"}, Path: "/mfa", Upstream: "rec", MFA: "required"},
		{Name: "user", Methods: []string{"GET"}, Path: "/users/{id}", Upstream: "rec", Allow: `request.path.id == token.sub || "admin" in token.roles`},
		{Name: "owned", Methods: []string{"GET"}, Path: "/owned/{id}", Upstream: "rec", ResponseAllow: `response.body.path == "/owned/" + token.sub`},
		{Name: "header-rule", Methods: []string{"GET"}, Path: "/hdr", Upstream: "rec", Access: "public", Allow: `request.headers["x-app"] == "mobile"`},
	}
}

func TestChainAccessModes(t *testing.T) {
	h := newHarness(t, harnessOptions{routes: accessRoutes()})
	const (
		none    = ""
		invalid = "tok-forged"
	)
	for _, tc := range []struct {
		path, tok string
		hdr       []string
		want      int
	}{
		{"/pub", none, nil, 200},
		{"/pub", "tok-alice", nil, 200},
		{"/pub", invalid, nil, 200}, // a bad token on a public route is no token
		{"/authn", none, nil, 401},
		{"/authn", invalid, nil, 401},
		{"/authn", "tok-alice", nil, 200},
		{"/admin", none, nil, 401},
		{"/admin", "tok-alice", nil, 403},
		{"/admin", "tok-bob", nil, 403}, // editor is not admin or ops
		{"/admin", "tok-admin", nil, 200},
		{"/write", none, nil, 401},
		{"/write", "tok-alice", nil, 403}, // has api, lacks notes:write
		{"/write", "tok-bob", nil, 200},
		// Password sign-ins (amr ["pwd"]) are one factor.
		{"/mfa", none, nil, 401},
		{"/mfa", "tok-alice", nil, 403},
		{"/mfa", "tok-admin", nil, 403},
		{"/mfa", "tok-carol", nil, 200},
		{"/users/alice", "tok-alice", nil, 200},
		{"/users/bob", "tok-alice", nil, 403},
		{"/users/alice", "tok-bob", nil, 403},
		{"/users/alice", "tok-admin", nil, 200},
		{"/users/alice", none, nil, 401},
		// The response rule: the upstream echoes the path, which names the owner.
		{"/owned/alice", "tok-alice", nil, 200},
		{"/owned/alice", "tok-bob", nil, 404},
		{"/owned/bob", "tok-alice", nil, 404},
		{"/owned/alice", none, nil, 401},
		{"/hdr", none, []string{"X-App", "mobile"}, 200},
		{"/hdr", none, []string{"X-App", "web"}, 403},
		{"/hdr", none, nil, 403},
	} {
		t.Run(fmt.Sprintf("%s %s", tc.path, tc.tok), func(t *testing.T) {
			before := h.up.count()
			w := h.do(t, "GET", tc.path, tc.tok, "", tc.hdr...)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			reached := h.up.count() > before
			switch tc.want {
			case 200:
				if !reached {
					t.Fatal("allowed but the upstream saw nothing")
				}
			case 404:
				// A response-rule denial: the upstream answered, nothing of it reaches the client.
				if !reached || strings.Contains(w.Body.String(), "/owned/") {
					t.Fatalf("response denial leaked (reached %v): %s", reached, w.Body)
				}
				if problemType(t, w) != "not-found" {
					t.Fatal("not a not-found problem")
				}
			default:
				if reached {
					t.Fatal("denied request reached the upstream")
				}
				typ := problemType(t, w)
				if tc.want == 401 && (typ != "unauthorized" && typ != "invalid-token" || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer")) {
					t.Fatalf("401 as %q with WWW-Authenticate %q", typ, w.Header().Get("WWW-Authenticate"))
				}
				if tc.want == 403 && typ != "forbidden" {
					t.Fatalf("403 as %q", typ)
				}
			}
		})
	}
	if n := h.observer.decision("owned", "response_denied"); n != 2 {
		t.Errorf("response_denied counted %d times, want 2", n)
	}
	if n := h.observer.decision("mfa", "mfa_required"); n != 2 {
		t.Errorf("mfa_required counted %d times, want 2", n)
	}
}

func TestChainBadAuthorization(t *testing.T) {
	h := newHarness(t, harnessOptions{routes: accessRoutes()})
	for _, hdr := range [][]string{
		{"Authorization", "Basic dG9rLWFsaWNlOg=="},
		{"Authorization", "Bearer"},
		{"Authorization", "Bearer "},
		{"Authorization", "tok-alice"},
		{"Authorization", "Bearertok-alice"},
		{"Authorization", "Bearer tok-alice", "Authorization", "Bearer tok-alice"}, // two headers
		{"Authorization", "Bearer tok-alice\x00"},
	} {
		w := h.do(t, "GET", "/authn", "", "", hdr...)
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_token") {
			t.Errorf("%q: %d %q", hdr, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	// Scheme and surrounding space are lenient where the spec is (RFC 9110 §11.1).
	for _, v := range []string{"bearer tok-alice", "BEARER tok-alice", "Bearer  tok-alice"} {
		if w := h.do(t, "GET", "/authn", "", "", "Authorization", v); w.Code != http.StatusOK {
			t.Errorf("%q: %d", v, w.Code)
		}
	}
}

func TestChainRevokedSession(t *testing.T) {
	h := newHarness(t, harnessOptions{routes: accessRoutes()})
	if w := h.do(t, "GET", "/authn", "tok-alice", ""); w.Code != http.StatusOK {
		t.Fatalf("before revocation: %d", w.Code)
	}
	h.revoked.revoke("sid-alice")
	w := h.do(t, "GET", "/authn", "tok-alice", "")
	if w.Code != http.StatusUnauthorized || problemType(t, w) != "invalid-token" {
		t.Fatalf("after revocation: %d %s", w.Code, w.Body)
	}
	// On a public route a revoked token is no token: served, anonymously.
	w = h.do(t, "GET", "/pub", "tok-alice", "")
	if w.Code != http.StatusOK || h.up.lastRequest().Header.Get("Gatehouse-User-Id") != "" {
		t.Fatalf("public route with a revoked token: %d, user %q", w.Code, h.up.lastRequest().Header.Get("Gatehouse-User-Id"))
	}
	if w := h.do(t, "GET", "/authn", "tok-bob", ""); w.Code != http.StatusOK {
		t.Fatalf("another session: %d", w.Code)
	}
	if n := h.observer.decision("authn", "revoked_session"); n != 1 {
		t.Errorf("revoked_session counted %d", n)
	}
}

func TestChainIdentityHeaders(t *testing.T) {
	h := newHarness(t, harnessOptions{routes: []config.Route{
		{Name: "plain", Path: "/plain", Upstream: "rec"},
		{Name: "fwd", Path: "/fwd", Upstream: "rec", ForwardAuthorization: true},
	}})
	w := h.do(t, "GET", "/plain", "tok-carol", "",
		"Gatehouse-User-Id", "alice", "gatehouse-roles", "admin", "GATEHOUSE-PLAN", "enterprise",
		"X-Forwarded-For", "10.9.9.9", "Forwarded", "for=10.9.9.9", "X-Forwarded-Prefix", "/x")
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	got := h.up.lastRequest().Header
	for k, want := range map[string]string{
		"Gatehouse-User-Id": "carol", "Gatehouse-Roles": "", "Gatehouse-Plan": "premium",
		"Gatehouse-Auth-Methods": "pwd,otp", "Gatehouse-Session-Id": "sid-carol",
		"X-Forwarded-For": "203.0.113.7", "Forwarded": `for="203.0.113.7";host="example.com";proto=https`,
		"X-Request-Id": "req-test", "Authorization": "", "X-Forwarded-Prefix": "",
	} {
		if vs := got.Values(k); strings.Join(vs, "|") != want {
			t.Errorf("%s = %q, want %q", k, vs, want)
		}
	}
	h.do(t, "GET", "/fwd", "tok-carol", "")
	if a := h.up.lastRequest().Header.Get("Authorization"); a != "Bearer tok-carol" {
		t.Errorf("forward_authorization: %q", a)
	}
}

func TestChainRouting(t *testing.T) {
	h := newHarness(t, harnessOptions{routes: []config.Route{
		{Name: "notes", Methods: []string{"GET", "POST"}, Path: "/v1/notes", Upstream: "rec"},
		{Name: "note", Methods: []string{"GET"}, Path: "/v1/notes/{id}", Upstream: "rec"},
		{Name: "note-del", Methods: []string{"DELETE"}, Path: "/v1/notes/{id}", Upstream: "rec", Roles: []string{"admin"}},
	}})
	for _, tc := range []struct {
		method, target string
		want           int
		problem, allow string
	}{
		{"GET", "/v1/nothing", 404, "not-found", ""},
		{"GET", "/", 404, "not-found", ""},
		{"GET", "/v1/notes/1/extra", 404, "not-found", ""},
		{"PUT", "/v1/notes", 405, "method-not-allowed", "GET, HEAD, POST"},
		{"PATCH", "/v1/notes/1", 405, "method-not-allowed", "GET, HEAD, DELETE"},
		{"GET", "/v1/notes/a%2Fb", 400, "bad-path", ""},
		{"GET", "/v1/notes/a%2fb", 400, "bad-path", ""},
		{"GET", "/v1/notes%2F1", 400, "bad-path", ""},
		{"GET", "/v1/notes/a%5Cb", 400, "bad-path", ""}, // an encoded backslash
		{"GET", "/v1/notes/a%00b", 400, "bad-path", ""},
		{"HEAD", "/v1/notes", 200, "", ""},
		{"GET", "/v1/notes/", 200, "", ""},
		{"DELETE", "/v1/notes/1", 403, "forbidden", ""},
	} {
		w := h.do(t, tc.method, tc.target, "tok-alice", "")
		if w.Code != tc.want {
			t.Errorf("%s %s: %d, want %d: %s", tc.method, tc.target, w.Code, tc.want, w.Body)
			continue
		}
		if tc.problem != "" && tc.method != "HEAD" {
			if p := problemType(t, w); p != tc.problem {
				t.Errorf("%s %s: problem %q, want %q", tc.method, tc.target, p, tc.problem)
			}
		}
		if a := w.Header().Get("Allow"); a != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.target, a, tc.allow)
		}
	}
	// The encoded slash never reached the upstream.
	if r := h.up.lastRequest(); r != nil && strings.Contains(r.Raw, "%2") {
		t.Errorf("upstream saw %q", r.Raw)
	}
}

func TestChainUpstreamFailures(t *testing.T) {
	// A port that was free a moment ago: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	h := newHarness(t, harnessOptions{
		routes: []config.Route{
			{Name: "down", Path: "/down", Upstream: "down"},
			{Name: "slow", Path: "/slow", Upstream: "slow"},
			{Name: "fingerprint", Path: "/fingerprint", Upstream: "rec"},
			{Name: "text", Path: "/text", Upstream: "rec", ResponseAllow: "true"},
			{Name: "small", Path: "/small", Upstream: "rec", MaxBodyBytes: 16},
		},
		upstreams: map[string]config.Upstream{
			"down": {URL: down, Timeout: config.Duration(2 * time.Second)},
			"slow": {Timeout: config.Duration(150 * time.Millisecond)},
		},
	})
	w := h.do(t, "GET", "/down", "tok-alice", "")
	if w.Code != http.StatusBadGateway || problemType(t, w) != "upstream-error" || strings.Contains(w.Body.String(), "refused") {
		t.Errorf("down: %d %s", w.Code, w.Body)
	}
	w = h.do(t, "GET", "/slow", "tok-alice", "")
	if w.Code != http.StatusGatewayTimeout || problemType(t, w) != "upstream-timeout" {
		t.Errorf("slow: %d %s", w.Code, w.Body)
	}
	w = h.do(t, "GET", "/fingerprint", "tok-alice", "")
	if w.Code != 200 || w.Header().Get("Server") != "" || w.Header().Get("X-Powered-By") != "" {
		t.Errorf("fingerprint: %d %v", w.Code, w.Header())
	}
	// A response rule cannot judge text: fail closed, and no byte of it leaks.
	w = h.do(t, "GET", "/text", "tok-alice", "")
	if w.Code != http.StatusNotFound || strings.Contains(w.Body.String(), "plain words") {
		t.Errorf("text under a response rule: %d %s", w.Code, w.Body)
	}
	// Bodies over the route's limit: declared, and discovered while streaming.
	before := h.up.count()
	w = h.do(t, "POST", "/small", "tok-alice", strings.Repeat("x", 17))
	if w.Code != http.StatusRequestEntityTooLarge || problemType(t, w) != "too-large" || h.up.count() != before {
		t.Errorf("declared large body: %d %s (upstream reached: %v)", w.Code, w.Body, h.up.count() != before)
	}
	if w = h.do(t, "POST", "/small", "tok-alice", strings.Repeat("x", 16)); w.Code != 200 {
		t.Errorf("body at the limit: %d %s", w.Code, w.Body)
	}
	r := httptest.NewRequest("POST", "/small", io.MultiReader(strings.NewReader(strings.Repeat("y", 64))))
	r.ContentLength = -1
	r.Header.Set("Authorization", "Bearer tok-alice")
	rw := httptest.NewRecorder()
	h.h.ServeHTTP(rw, r)
	if rw.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked large body: %d %s", rw.Code, rw.Body)
	}
	if got := h.up.lastRequest(); got != nil && strings.Contains(got.Body, strings.Repeat("y", 17)) {
		t.Errorf("upstream received %d bytes of an over-limit body", len(got.Body))
	}
}

func TestChainQuota(t *testing.T) {
	// 10:30:00 UTC: the hourly window ends in exactly 1800 s.
	now := time.Date(2026, 1, 1, 10, 30, 0, 0, time.UTC)
	lim, err := ratelimit.New(ratelimit.NewMemory(ratelimit.MemoryOptions{Now: func() time.Time { return now }}), ratelimit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{limiter: lim, routes: []config.Route{
		{Name: "q", Path: "/q", Upstream: "rec", Quota: true},
		{Name: "q2", Path: "/q2", Upstream: "rec", Quota: true},
		{Name: "noq", Path: "/noq", Upstream: "rec"},
		{Name: "pub", Path: "/pub", Upstream: "rec", Access: "public", Quota: true},
	}})
	for i := 1; i <= 100; i++ {
		path := "/q"
		if i%2 == 0 {
			path = "/q2" // the quota is the caller's, across routes
		}
		w := h.do(t, "GET", path, "tok-alice", "")
		if w.Code != 200 {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
		if p := w.Header().Get("RateLimit-Policy"); p != `"plan_free";q=100;w=3600` {
			t.Fatalf("request %d: RateLimit-Policy %q", i, p)
		}
		if rl, want := w.Header().Get("RateLimit"), fmt.Sprintf(`"plan_free";r=%d;t=1800`, 100-i); rl != want {
			t.Fatalf("request %d: RateLimit %q, want %q", i, rl, want)
		}
	}
	for range 3 {
		w := h.do(t, "GET", "/q", "tok-alice", "")
		if w.Code != http.StatusTooManyRequests || problemType(t, w) != "rate-limited" {
			t.Fatalf("101st: %d %s", w.Code, w.Body)
		}
		if ra := w.Header().Get("Retry-After"); ra != "1800" {
			t.Errorf("Retry-After %q, want 1800", ra)
		}
		if rl := w.Header().Get("RateLimit"); rl != `"plan_free";r=0;t=1800` {
			t.Errorf("RateLimit %q", rl)
		}
		if p := w.Header().Get("RateLimit-Policy"); p != `"plan_free";q=100;w=3600` {
			t.Errorf("RateLimit-Policy %q", p)
		}
	}
	if w := h.do(t, "GET", "/noq", "tok-alice", ""); w.Code != 200 || w.Header().Get("RateLimit") != "" {
		t.Errorf("route without quota: %d %q", w.Code, w.Header().Get("RateLimit"))
	}
	// Another user, another plan; anonymous callers have no quota.
	if w := h.do(t, "GET", "/q", "tok-carol", ""); w.Code != 200 || w.Header().Get("RateLimit-Policy") != `"plan_premium";q=1000;w=3600` {
		t.Errorf("premium: %d %q", w.Code, w.Header().Get("RateLimit-Policy"))
	}
	// A token without a plan claim gets the default plan.
	if w := h.do(t, "GET", "/q", "tok-admin", ""); w.Code != 200 || w.Header().Get("RateLimit-Policy") != `"plan_free";q=100;w=3600` {
		t.Errorf("default plan: %d %q", w.Code, w.Header().Get("RateLimit-Policy"))
	}
	if w := h.do(t, "GET", "/pub", "", ""); w.Code != 200 || w.Header().Get("RateLimit") != "" {
		t.Errorf("anonymous: %d %q", w.Code, w.Header().Get("RateLimit"))
	}
	// An hour later the window has reset.
	now = now.Add(time.Hour)
	if w := h.do(t, "GET", "/q", "tok-alice", ""); w.Code != 200 {
		t.Errorf("next window: %d", w.Code)
	}
}

func TestChainRouteLimits(t *testing.T) {
	h := newHarness(t, harnessOptions{routes: []config.Route{
		{Name: "per-user", Path: "/u", Upstream: "rec", Access: "public", RateLimits: []string{"3/h per user"}},
		{Name: "per-ip", Path: "/ip", Upstream: "rec", Access: "public", RateLimits: []string{"2/h per ip"}},
		{Name: "per-route", Path: "/r", Upstream: "rec", Access: "public", RateLimits: []string{"2/h"}},
		{Name: "both", Path: "/both", Upstream: "rec", Quota: true, RateLimits: []string{"1/h per user"}},
	}})
	admitted := func(path, tok string, n int) int {
		ok := 0
		for range n {
			w := h.do(t, "GET", path, tok, "")
			switch w.Code {
			case 200:
				ok++
			case 429:
				if w.Header().Get("Retry-After") == "" || problemType(t, w) != "rate-limited" {
					t.Fatalf("%s: 429 without Retry-After: %v", path, w.Header())
				}
			default:
				t.Fatalf("%s: %d %s", path, w.Code, w.Body)
			}
		}
		return ok
	}
	if n := admitted("/u", "tok-alice", 5); n != 3 {
		t.Errorf("per user: alice admitted %d of 5, want 3", n)
	}
	if n := admitted("/u", "tok-bob", 5); n != 3 {
		t.Errorf("per user: bob admitted %d of 5, want 3 (his own budget)", n)
	}
	if n := admitted("/u", "", 5); n != 5 {
		t.Errorf("per user: anonymous admitted %d of 5, want all (no user budget)", n)
	}
	if n := admitted("/ip", "tok-alice", 2) + admitted("/ip", "tok-bob", 2); n != 2 {
		t.Errorf("per ip: %d admitted, want 2 across users", n)
	}
	if n := admitted("/r", "", 2) + admitted("/r", "tok-carol", 2); n != 2 {
		t.Errorf("per route: %d admitted, want 2", n)
	}
	// A route limit that denies does not spend the plan quota.
	if n := admitted("/both", "tok-bob", 4); n != 1 {
		t.Fatalf("both: %d admitted", n)
	}
	w := h.do(t, "GET", "/both", "tok-bob", "")
	if pol := w.Header().Get("RateLimit-Policy"); strings.Contains(pol, "plan_free") {
		t.Errorf("quota consulted after the route limit denied: %q", pol)
	}
}

func TestEdgeLimits(t *testing.T) {
	h := newHarness(t, harnessOptions{
		routes: []config.Route{{Name: "pub", Path: "/pub", Upstream: "rec", Access: "public"}},
		limits: config.Limits{PerIP: "3/h", Auth: config.AuthLimits{Token: "2/h", Signup: "1/h"}},
	})
	var codes []int
	for range 4 {
		codes = append(codes, h.do(t, "GET", "/pub", "", "").Code)
	}
	if fmt.Sprint(codes) != "[200 200 200 429]" {
		t.Errorf("per IP: %v", codes)
	}
	// Another client IP has its own budget.
	r := httptest.NewRequest("GET", "/pub", nil)
	r.RemoteAddr = "[2001:db8::9]:1234"
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("other IP: %d", w.Code)
	}

	// Identity endpoint budgets: the edge answers before the fallback would.
	h2 := newHarness(t, harnessOptions{limits: config.Limits{Auth: config.AuthLimits{Token: "2/h"}}})
	codes = codes[:0]
	for range 3 {
		w := h2.do(t, "POST", "/auth/v1/token", "", "grant_type=password")
		codes = append(codes, w.Code)
		if w.Header().Get("RateLimit-Policy") != `"auth_token";q=2;w=3600` {
			t.Errorf("auth RateLimit-Policy %q", w.Header().Get("RateLimit-Policy"))
		}
	}
	// 404 from the gateway (no routes) shows the edge let the request through.
	if fmt.Sprint(codes) != "[404 404 429]" {
		t.Errorf("token endpoint: %v", codes)
	}
	if w := h2.do(t, "GET", "/auth/v1/token", "", ""); w.Code != 404 {
		t.Errorf("GET is not a sign-in: %d", w.Code)
	}
}

func TestAuthClass(t *testing.T) {
	for _, tc := range []struct {
		method, path, want string
	}{
		{"POST", "/auth/v1/signup", "signup"},
		{"POST", "/auth/v1/token", "token"},
		{"POST", "/auth/v1/password/reset", "password_reset"},
		{"POST", "/auth/v1/password/forgot", "email_send"},
		{"POST", "/auth/v1/email/verify/send", "email_send"},
		{"POST", "/auth/v1/email/verify", "password_reset"},
		{"POST", "/auth/v1/email/verify/", ""},
		{"POST", "/auth/v1/mfa/totp/verify", "mfa"},
		{"POST", "/auth/v1/mfa/", "mfa"},
		{"POST", "/auth/v1/webauthn/login/finish", "mfa"},
		{"POST", "/auth/v1/webauthn/register/finish", ""},
		{"GET", "/auth/v1/token", ""},
		{"PUT", "/auth/v1/signup", ""},
		{"post", "/auth/v1/token", ""}, // the server delivers methods as sent; only POST is a sign-in
		{"POST", "/auth/v1/token/", ""},
		{"POST", "/auth/v1/Token", ""},
		{"POST", "/auth/v1/mfa", ""},
		{"POST", "/auth/v2/token", ""},
		{"POST", "/v1/notes", ""},
		{"POST", "", ""},
		{"GET", "/auth/v1/oidc/google/authorize", "token"},
		{"GET", "/auth/v1/oidc/google/callback", ""},
		{"POST", "/auth/v1/oidc/google/authorize", ""},
	} {
		if got := authClass(tc.method, tc.path); got != tc.want {
			t.Errorf("authClass(%s %q) = %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}

// TestChainConcurrentQuota: concurrent requests of one user never admit more
// than the quota (the limiter decides atomically under the chain).
func TestChainConcurrentQuota(t *testing.T) {
	h := newHarness(t, harnessOptions{plans: map[string]string{"free": "25/h"}, routes: []config.Route{
		{Name: "q", Path: "/q", Upstream: "rec", Quota: true},
	}})
	var mu sync.Mutex
	ok := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				if w := h.do(t, "GET", "/q", "tok-alice", ""); w.Code == 200 {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if ok != 25 {
		t.Fatalf("%d admitted of 40, want 25", ok)
	}
	var body map[string]any
	w := h.do(t, "GET", "/q", "tok-bob", "")
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 200 {
		t.Fatalf("bob: %d %v", w.Code, err)
	}
}
