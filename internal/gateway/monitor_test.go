package gateway

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// banSet is a Bans over fixed keys.
type banSet map[string]store.Ban // "ip:..", "user:..", "session:.."

func (b banSet) Check(ip, user, session string) (store.Ban, bool) {
	for _, k := range []string{"ip:" + ip, "user:" + user, "session:" + session} {
		if x, ok := b[k]; ok {
			return x, true
		}
	}
	return store.Ban{}, false
}

type decisionLog struct {
	mu sync.Mutex
	ds []Decision
}

func (l *decisionLog) Decide(d Decision) {
	l.mu.Lock()
	l.ds = append(l.ds, d)
	l.mu.Unlock()
}

func (l *decisionLog) last(t *testing.T) Decision {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ds) == 0 {
		t.Fatal("no decision reported")
	}
	return l.ds[len(l.ds)-1]
}

func (l *decisionLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ds)
}

type expiredVerifier struct{ fakeVerifier }

func (v expiredVerifier) Verify(tok string) (*token.Claims, error) {
	if tok == "tok-expired" {
		return nil, token.ErrExpired
	}
	return v.fakeVerifier.Verify(tok)
}

func newMonitored(t *testing.T, bans Bans, ds Decisions, limits config.Limits) (http.Handler, *recordingUpstream) {
	t.Helper()
	up := &recordingUpstream{}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	env, err := policy.NewEnv(policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lim, err := ratelimit.New(ratelimit.NewMemory(ratelimit.MemoryOptions{}), ratelimit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := New(Options{
		Routes:    accessRoutes(),
		Upstreams: map[string]config.Upstream{"rec": {URL: srv.URL, Timeout: config.Duration(5 * time.Second)}},
		Limits:    limits, Verifier: expiredVerifier{testClaims()}, Revocations: &revokedSet{}, Limiter: lim, Policy: env,
		Bans: bans, Decisions: ds,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	return withScope(gw.Edge(gw)), up
}

func send(h http.Handler, method, target, tok string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = "203.0.113.7:4711"
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestBansAtTheFront: a banned IP is refused at the edge before routing or
// authentication, a banned user or session right after authentication; none
// reaches the upstream, and each refusal is a 403 problem reported as "banned".
func TestBansAtTheFront(t *testing.T) {
	cases := []struct {
		name, path, tok string
		bans            banSet
		want            int
		wantRoute       string
	}{
		{"ip banned, public route", "/pub", "", banSet{"ip:203.0.113.7": {Kind: store.BanIP}}, 403, ""},
		{"ip banned, unknown path", "/nowhere", "", banSet{"ip:203.0.113.7": {Kind: store.BanIP}}, 403, ""},
		{"ip banned, valid token", "/authn", "tok-alice", banSet{"ip:203.0.113.7": {Kind: store.BanIP}}, 403, ""},
		{"user banned", "/authn", "tok-alice", banSet{"user:alice": {Kind: store.BanUser}}, 403, "authn"},
		{"session banned", "/authn", "tok-alice", banSet{"session:sid-alice": {Kind: store.BanSession}}, 403, "authn"},
		{"other user banned", "/authn", "tok-bob", banSet{"user:alice": {Kind: store.BanUser}}, 200, "authn"},
		{"anonymous caller of a banned user's route", "/pub", "", banSet{"user:alice": {Kind: store.BanUser}}, 200, "public"},
		{"nothing banned", "/pub", "", banSet{}, 200, "public"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log := &decisionLog{}
			h, up := newMonitored(t, tc.bans, log, config.Limits{})
			w := send(h, "GET", tc.path, tc.tok)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			d := log.last(t)
			if tc.want == 403 {
				if problemType(t, w) != "banned" || up.count() != 0 || d.Reason != "banned" {
					t.Fatalf("ban not enforced at the front: upstream saw %d, decision %+v", up.count(), d)
				}
			}
			if d.Route != tc.wantRoute || d.ClientIP != "203.0.113.7" || d.RequestID != "req-test" || log.len() != 1 {
				t.Fatalf("decision %+v (of %d)", d, log.len())
			}
		})
	}
}

// TestDecisionsCarryWhoAndWhat: the detectors get the caller, the route's
// object ids, and expiry told apart from a bad token.
func TestDecisionsCarryWhoAndWhat(t *testing.T) {
	log := &decisionLog{}
	h, _ := newMonitored(t, nil, log, config.Limits{PerIP: "1/h"})
	cases := []struct {
		path, tok string
		want      Decision
	}{
		{"/users/bob", "tok-alice", Decision{Route: "user", Reason: "rule_denied", Status: 403, UserID: "alice", SessionID: "sid-alice", Params: map[string]string{"id": "bob"}}},
		{"/authn", "tok-forged", Decision{Route: "authn", Reason: "invalid_token", Status: 401}},
		{"/authn", "tok-expired", Decision{Route: "authn", Reason: "expired_token", Status: 401}},
	}
	for _, tc := range cases {
		h2, _ := newMonitored(t, nil, log, config.Limits{})
		send(h2, "GET", tc.path, tc.tok)
		d := log.last(t)
		if d.Route != tc.want.Route || d.Status != tc.want.Status || d.UserID != tc.want.UserID || d.SessionID != tc.want.SessionID || d.Params["id"] != tc.want.Params["id"] || d.Method != "GET" {
			t.Errorf("%s: decision %+v, want %+v", tc.path, d, tc.want)
		}
		if tc.want.Reason != "rule_denied" && d.Reason != tc.want.Reason {
			t.Errorf("%s: reason %q, want %q", tc.path, d.Reason, tc.want.Reason)
		}
	}
	// Edge rate limiting is reported too.
	send(h, "GET", "/pub", "")
	if w := send(h, "GET", "/pub", ""); w.Code != 429 {
		t.Fatalf("per-IP limit: %d", w.Code)
	}
	if d := log.last(t); d.Reason != "rate_limited_per_ip" || d.Status != 429 || d.ClientIP != "203.0.113.7" {
		t.Fatalf("rate-limited decision %+v", d)
	}
}
