package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

var errBadToken = errors.New("test: unknown token")

// fakeVerifier maps a token string to its claims; anything else is invalid.
// Signature checking is token's job and has its own tests.
type fakeVerifier map[string]*token.Claims

func (f fakeVerifier) Verify(tok string) (*token.Claims, error) {
	if c, ok := f[tok]; ok {
		return c, nil
	}
	return nil, errBadToken
}

// revokedSet is a Revocations safe for concurrent use.
type revokedSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (r *revokedSet) IsRevoked(sid string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[sid]
}

func (r *revokedSet) revoke(sid string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]bool{}
	}
	r.m[sid] = true
}

// claims are the test callers. alice and bob have password sign-ins (amr pwd),
// carol signed in with a second factor, admin has the admin role.
func testClaims() fakeVerifier {
	exp := time.Now().Add(time.Hour).Unix()
	mk := func(sub, sid, plan string, roles, amr []string, scope string) *token.Claims {
		return &token.Claims{Issuer: "https://gh.test", Subject: sub, Audience: token.Audience{"gh"}, Expiry: exp,
			IssuedAt: time.Now().Unix(), ID: "jti-" + sub, SessionID: sid, Scope: scope, Roles: roles, Plan: plan, AMR: amr}
	}
	return fakeVerifier{
		"tok-alice": mk("alice", "sid-alice", "free", nil, []string{"pwd"}, "api"),
		"tok-bob":   mk("bob", "sid-bob", "free", []string{"editor"}, []string{"pwd"}, "api notes:write"),
		"tok-carol": mk("carol", "sid-carol", "premium", nil, []string{"pwd", "otp"}, "api"),
		"tok-admin": mk("root", "sid-admin", "", []string{"admin"}, []string{"pwd"}, "api"),
	}
}

// recorded is what the recording upstream saw of one request.
type recorded struct {
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Raw    string      `json:"raw"`
	Header http.Header `json:"header"`
	Body   string      `json:"body"`
}

// recordingUpstream answers every request with a JSON echo of what it saw, and
// keeps the last request for inspection. Paths with a special meaning:
//
//	/status/NNN   answers NNN with the echo
//	/fingerprint  adds Server and X-Powered-By
//	/text         answers text/plain
//	/slow         waits for the client to go away (or 5 s)
type recordingUpstream struct {
	mu   sync.Mutex
	last *recorded
	n    int
}

func (u *recordingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec := &recorded{Method: r.Method, Path: r.URL.Path, Raw: r.URL.RawPath, Header: r.Header.Clone(), Body: string(b)}
	u.mu.Lock()
	u.last, u.n = rec, u.n+1
	u.mu.Unlock()
	switch {
	case r.URL.Path == "/slow":
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return
	case r.URL.Path == "/text":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "plain words")
		return
	case r.URL.Path == "/fingerprint":
		w.Header().Set("Server", "nginx/1.2.3")
		w.Header().Set("X-Powered-By", "PHP/5.4")
	}
	status := http.StatusOK
	if s, ok := strings.CutPrefix(r.URL.Path, "/status/"); ok {
		if n, err := parseStatus(s); err == nil {
			status = n
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(rec)
}

func parseStatus(s string) (int, error) {
	var n int
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errors.New("not a status")
		}
		n = n*10 + int(c-'0')
	}
	if n < 100 || n > 599 {
		return 0, errors.New("not a status")
	}
	return n, nil
}

func (u *recordingUpstream) lastRequest() *recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

func (u *recordingUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.n
}

// harness is a gateway in front of a recording upstream, served the way
// httpapi serves it: request scope (id, client IP), then Edge, then the chain.
type harness struct {
	gw       *Gateway
	h        http.Handler
	up       *recordingUpstream
	upURL    string
	revoked  *revokedSet
	observer *countingObserver
}

type harnessOptions struct {
	routes  []config.Route
	plans   map[string]string
	limits  config.Limits
	maxBody int64
	// upstreams beyond "rec" (the recording upstream); url "" means rec's.
	upstreams map[string]config.Upstream
	limiter   Limiter
}

func newHarness(t testing.TB, o harnessOptions) *harness {
	t.Helper()
	up := &recordingUpstream{}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	ups := map[string]config.Upstream{"rec": {URL: srv.URL, Timeout: config.Duration(5 * time.Second)}}
	for n, u := range o.upstreams {
		if u.URL == "" {
			u.URL = srv.URL
		}
		ups[n] = u
	}
	env, err := policy.NewEnv(policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lim := o.limiter
	if lim == nil {
		l, err := ratelimit.New(ratelimit.NewMemory(ratelimit.MemoryOptions{}), ratelimit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		lim = l
	}
	if o.plans == nil {
		o.plans = map[string]string{"free": "100/h", "premium": "1000/h"}
	}
	rev := &revokedSet{}
	obs := &countingObserver{}
	gw, err := New(Options{
		Routes: o.routes, Upstreams: ups, Plans: o.plans, DefaultPlan: "free", Limits: o.limits, MaxBodyBytes: o.maxBody,
		Verifier: testClaims(), Revocations: rev, Limiter: lim, Policy: env, Observer: obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	return &harness{gw: gw, h: withScope(gw.Edge(gw)), up: up, upURL: srv.URL, revoked: rev, observer: obs}
}

// withScope does what httpapi's requestScope does for the real server.
func withScope(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := r.RemoteAddr
		if h, _, err := net.SplitHostPort(ip); err == nil {
			ip = h
		}
		sc := &reqctx.Scope{RequestID: "req-test", ClientIP: ip}
		next.ServeHTTP(w, r.WithContext(reqctx.With(r.Context(), sc)))
	})
}

// do sends one request through the harness; hdr is name, value pairs.
func (h *harness) do(t testing.TB, method, target, tok, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	r.RemoteAddr = "203.0.113.7:4711"
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, r)
	return w
}

// countingObserver records decisions for metric assertions.
type countingObserver struct {
	mu        sync.Mutex
	decisions map[string]int
	limits    map[string]int
}

func (o *countingObserver) Request(route, decision string, status int, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.decisions == nil {
		o.decisions = map[string]int{}
	}
	o.decisions[route+"|"+decision]++
}

func (o *countingObserver) Limit(name string, allowed bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.limits == nil {
		o.limits = map[string]int{}
	}
	k := name + "|denied"
	if allowed {
		k = name + "|allowed"
	}
	o.limits[k]++
}

func (o *countingObserver) decision(route, decision string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.decisions[route+"|"+decision]
}

// problemType decodes a problem+json body and returns its type slug.
func problemType(t testing.TB, w *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json; body %s", ct, w.Body)
	}
	var p struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body: %v: %s", err, w.Body)
	}
	if p.Status != w.Code {
		t.Fatalf("problem status %d, response %d", p.Status, w.Code)
	}
	return strings.TrimPrefix(p.Type, "https://gatehouse.dev/problems/")
}
