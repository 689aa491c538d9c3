package adminapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/ban"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

type fakeUsers struct{}

func (fakeUsers) List(_ context.Context, after string, limit int) ([]store.User, error) {
	return []store.User{{ID: "u1", Roles: []string{"admin"}, Plan: "free", PasswordHash: "$argon2id$secret"}}, nil
}
func (fakeUsers) Email(*store.User) (string, error) { return "a@example.com", nil }
func (fakeUsers) Get(_ context.Context, id string) (*store.User, error) {
	if id != "u1" {
		return nil, ErrNotFound
	}
	return &store.User{ID: "u1", Roles: []string{"admin"}, Plan: "free"}, nil
}
func (fakeUsers) Lock(_ context.Context, id, _ string) error   { return fakeUsers{}.exists(id) }
func (fakeUsers) Unlock(_ context.Context, id, _ string) error { return fakeUsers{}.exists(id) }
func (fakeUsers) Grant(_ context.Context, id string, _ []string, _, _ string) error {
	return fakeUsers{}.exists(id)
}
func (fakeUsers) exists(id string) error {
	if id != "u1" {
		return ErrNotFound
	}
	return nil
}
func (fakeUsers) Sessions(_ context.Context, id string) ([]store.Session, error) {
	if id != "u1" {
		return nil, ErrNotFound
	}
	return []store.Session{{ID: "s1", UserID: "u1", IP: "192.0.2.1"}}, nil
}
func (fakeUsers) RevokeSessions(_ context.Context, id, _, _ string) (int, error) {
	if id != "u1" {
		return 0, ErrNotFound
	}
	return 1, nil
}

// services are real service credentials: ops (admin, secret from the
// environment), intro (introspect only).
func services(t *testing.T) *service.Authenticator {
	t.Helper()
	a, err := service.New([]config.Service{
		{ID: "ops", SecretEnv: "OPS_SECRET", Permissions: []string{"admin"}},
		{ID: "intro", SecretEnv: "INTRO_SECRET", Permissions: []string{"introspect"}},
	}, service.Options{Getenv: func(k string) string {
		return map[string]string{"OPS_SECRET": "ops-secret-0123456789", "INTRO_SECRET": "intro-secret-0123456789"}[k]
	}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type env struct {
	h        http.Handler
	db       *store.DB
	sessions *Sessions
	cookie   *http.Cookie
	csrf     string
	mu       sync.Mutex
	recorded []store.Event
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db, err := store.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "g.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{db: db, sessions: NewSessions(time.Hour, nil)}
	e.h = New(Deps{
		Sessions: e.sessions, Bans: ban.New(ban.Options{Store: db}), Events: db, Users: fakeUsers{},
		Record: func(_ context.Context, ev store.Event) {
			e.mu.Lock()
			e.recorded = append(e.recorded, ev)
			e.mu.Unlock()
		},
		Services: services(t),
	})
	w := httptest.NewRecorder()
	sess := e.sessions.Create(w, "admin1", "admin@example.com")
	e.cookie, e.csrf = w.Result().Cookies()[0], sess.CSRF
	return e
}

// req builds a request; auth is "cookie", "cookie+csrf", "basic:id:secret" or "".
func (e *env) do(t *testing.T, method, target, auth, ct, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body == "" {
		r.ContentLength = 0
	}
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	switch {
	case auth == "cookie":
		r.AddCookie(e.cookie)
	case auth == "cookie+csrf":
		r.AddCookie(e.cookie)
		r.Header.Set(CSRFHeader, e.csrf)
	case strings.HasPrefix(auth, "basic:"):
		parts := strings.SplitN(auth, ":", 3)
		r.SetBasicAuth(parts[1], parts[2])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, auth string
		want       int
	}{
		{"nobody", "", 401},
		{"session", "cookie", 200},
		{"service with env secret", "basic:ops:ops-secret-0123456789", 200},
		{"service without the admin permission", "basic:intro:intro-secret-0123456789", 401},
		{"wrong secret", "basic:ops:nope", 401},
		{"unknown service", "basic:nobody:ops-secret-0123456789", 401},
		{"empty secret", "basic:ops:", 401},
		{"oversized secret", "basic:ops:" + strings.Repeat("x", 2000), 401},
	}
	for _, tc := range cases {
		w := e.do(t, "GET", "/admin/v1/bans", tc.auth, "", "")
		if w.Code != tc.want {
			t.Errorf("%s: %d, want %d: %s", tc.name, w.Code, tc.want, w.Body)
		}
		if tc.want == 401 && !strings.Contains(w.Header().Get("WWW-Authenticate"), "Basic") {
			t.Errorf("%s: no Basic challenge", tc.name)
		}
	}
	// A forged or expired cookie is nobody.
	r := httptest.NewRequest("GET", "/admin/v1/bans", nil)
	r.AddCookie(&http.Cookie{Name: CookieName, Value: strings.Repeat("A", 43)})
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != 401 {
		t.Fatalf("forged cookie: %d", w.Code)
	}
	expired := NewSessions(time.Minute, func() time.Time { return time.Unix(0, 0) })
	rec := httptest.NewRecorder()
	expired.Create(rec, "u", "e")
	r = httptest.NewRequest("GET", "/", nil)
	r.AddCookie(rec.Result().Cookies()[0])
	expired.now = func() time.Time { return time.Unix(61, 0) }
	if _, ok := expired.Lookup(r); ok {
		t.Fatal("expired session accepted")
	}
	c := rec.Result().Cookies()[0]
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Name != "__Host-gatehouse_admin" {
		t.Fatalf("cookie attributes: %+v", c)
	}
}

// TestCSRF: a session may read without a token but must send it to change
// anything; bodies must be JSON whoever sends them.
func TestCSRF(t *testing.T) {
	e := newEnv(t)
	body := `{"kind":"ip","value":"192.0.2.1","duration":"15m","reason":"test"}`
	cases := []struct {
		name, auth, ct string
		want           int
	}{
		{"session without token", "cookie", "application/json", 403},
		{"session with token", "cookie+csrf", "application/json", 201},
		{"form post with token", "cookie+csrf", "application/x-www-form-urlencoded", 415},
		{"text/plain (simple CORS request)", "basic:ops:ops-secret-0123456789", "text/plain", 415},
		{"service, JSON", "basic:ops:ops-secret-0123456789", "application/json; charset=utf-8", 201},
	}
	for _, tc := range cases {
		if w := e.do(t, "POST", "/admin/v1/bans", tc.auth, tc.ct, body); w.Code != tc.want {
			t.Errorf("%s: %d, want %d: %s", tc.name, w.Code, tc.want, w.Body)
		}
	}
	if w := e.do(t, "DELETE", "/admin/v1/bans/whatever", "cookie", "", ""); w.Code != 403 {
		t.Errorf("DELETE without token: %d", w.Code)
	}
}

func TestBansAPI(t *testing.T) {
	e := newEnv(t)
	const auth = "basic:ops:ops-secret-0123456789"
	bad := []struct{ name, body, field string }{
		{"not JSON", `kind=ip`, "body"},
		{"unknown field", `{"kind":"ip","value":"192.0.2.1","duration":"1h","extra":1}`, "body"},
		{"two objects", `{"kind":"ip","value":"192.0.2.1","duration":"1h"}{}`, "body"},
		{"bad kind", `{"kind":"country","value":"NL","duration":"1h"}`, "kind"},
		{"bad ip", `{"kind":"ip","value":"192.0.2.300","duration":"1h"}`, "value"},
		{"empty value", `{"kind":"user","value":"","duration":"1h"}`, "value"},
		{"no duration", `{"kind":"ip","value":"192.0.2.1"}`, "duration"},
		{"negative", `{"kind":"ip","value":"192.0.2.1","duration":"-5m"}`, "duration"},
		{"too long", `{"kind":"ip","value":"192.0.2.1","duration":"31d"}`, "duration"},
		{"too long in hours", `{"kind":"ip","value":"192.0.2.1","duration":"1000h"}`, "duration"},
		{"long reason", `{"kind":"ip","value":"192.0.2.1","duration":"1h","reason":"` + strings.Repeat("r", 501) + `"}`, "reason"},
		{"oversized body", `{"kind":"ip","value":"192.0.2.1","duration":"1h","reason":"` + strings.Repeat("r", 9000) + `"}`, "body"},
	}
	for _, tc := range bad {
		w := e.do(t, "POST", "/admin/v1/bans", auth, "application/json", tc.body)
		var p struct {
			Errors []struct{ Field string } `json:"errors"`
		}
		_ = json.Unmarshal(w.Body.Bytes(), &p)
		if w.Code != 400 || len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
			t.Errorf("%s: %d %s, want 400 on %s", tc.name, w.Code, w.Body, tc.field)
		}
	}
	if got, _ := e.db.ActiveBans(t.Context(), time.Now(), 0); len(got) != 0 {
		t.Fatalf("bad requests wrote bans: %+v", got)
	}
	w := e.do(t, "POST", "/admin/v1/bans", auth, "application/json", `{"kind":"ip","value":"::ffff:192.0.2.1","duration":"1d","reason":"manual"}`)
	if w.Code != 201 {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	var b wireBan
	_ = json.Unmarshal(w.Body.Bytes(), &b)
	if b.Value != "192.0.2.1" || b.Source != "service:ops" || b.ExpiresAt.Sub(b.CreatedAt) != 24*time.Hour || w.Header().Get("Location") != "/admin/v1/bans/"+b.ID {
		t.Fatalf("created %+v", b)
	}
	w = e.do(t, "GET", "/admin/v1/bans", auth, "", "")
	if !strings.Contains(w.Body.String(), b.ID) {
		t.Fatalf("list: %s", w.Body)
	}
	if w := e.do(t, "DELETE", "/admin/v1/bans/"+b.ID, auth, "", ""); w.Code != 200 {
		t.Fatalf("lift: %d %s", w.Code, w.Body)
	}
	if w := e.do(t, "DELETE", "/admin/v1/bans/"+b.ID, auth, "", ""); w.Code != 404 {
		t.Fatalf("lift twice: %d", w.Code)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.recorded) != 2 || e.recorded[0].Type != audit.BanCreated || e.recorded[1].Type != audit.BanLifted || e.recorded[1].Detail["by"] != "service:ops" {
		t.Fatalf("audit events %+v", e.recorded)
	}
}

func TestEventsAPI(t *testing.T) {
	e := newEnv(t)
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, ev := range []store.Event{
		{Type: audit.LoginFailed, IP: "192.0.2.1"},
		{Type: audit.LoginFailed, IP: "192.0.2.2", UserID: "u1"},
		{Type: audit.AlertRaised, Detail: map[string]string{"detector": "brute_force_ip"}},
		{Type: audit.BanCreated, IP: "192.0.2.1"},
	} {
		ev.Time = base.Add(time.Duration(i) * time.Minute)
		if err := e.db.InsertEvent(t.Context(), &ev); err != nil {
			t.Fatal(err)
		}
	}
	count := func(w *httptest.ResponseRecorder, key string) int {
		var m map[string]json.RawMessage
		var l []any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", w.Body, err)
		}
		if err := json.Unmarshal(m[key], &l); err != nil {
			t.Fatalf("%s: %v", w.Body, err)
		}
		return len(l)
	}
	for _, tc := range []struct {
		q    string
		want int
	}{
		{"", 4}, {"?type=login_failed", 2}, {"?ip=192.0.2.1", 2}, {"?user_id=u1", 1},
		{"?since=2030-01-01T00:02:00Z", 2}, {"?before=2030-01-01T00:01:00Z", 1}, {"?limit=1", 1},
		{"?ip=%27%20OR%201%3D1--", 0},
	} {
		w := e.do(t, "GET", "/admin/v1/events"+tc.q, "cookie", "", "")
		if w.Code != 200 || count(w, "events") != tc.want {
			t.Errorf("%s: %d, %s", tc.q, w.Code, w.Body)
		}
	}
	w := e.do(t, "GET", "/admin/v1/events?limit=2", "cookie", "", "")
	var page struct {
		NextBefore string `json:"next_before"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &page)
	if page.NextBefore != "2030-01-01T00:02:00Z" {
		t.Fatalf("next_before %q", page.NextBefore)
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=x", "?since=yesterday", "?color=red", "?type=a&type=b", "?ip=" + strings.Repeat("1", 300)} {
		if w := e.do(t, "GET", "/admin/v1/events"+q, "cookie", "", ""); w.Code != 400 {
			t.Errorf("%s: %d, want 400", q, w.Code)
		}
	}
	w = e.do(t, "GET", "/admin/v1/alerts?type=login_failed", "cookie", "", "")
	if w.Code != 200 || count(w, "alerts") != 1 {
		t.Fatalf("alerts: %s", w.Body)
	}
}

func TestUsersAPI(t *testing.T) {
	e := newEnv(t)
	w := e.do(t, "GET", "/admin/v1/users", "cookie", "", "")
	if w.Code != 200 || strings.Contains(w.Body.String(), "argon2id") || !strings.Contains(w.Body.String(), "a@example.com") {
		t.Fatalf("users: %d %s", w.Code, w.Body)
	}
	if w := e.do(t, "GET", "/admin/v1/users/u1/sessions", "cookie", "", ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"s1"`) {
		t.Fatalf("sessions: %s", w.Body)
	}
	if w := e.do(t, "GET", "/admin/v1/users/nope/sessions", "cookie", "", ""); w.Code != 404 {
		t.Fatalf("unknown user: %d", w.Code)
	}
	if w := e.do(t, "POST", "/admin/v1/users/u1/revoke-sessions", "cookie+csrf", "", ""); w.Code != 200 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if w := e.do(t, "GET", "/admin/v1/nothing", "cookie", "", ""); w.Code != 404 {
		t.Fatalf("unknown endpoint: %d", w.Code)
	}
	if w := e.do(t, "GET", "/admin/v1/nothing", "", "", ""); w.Code != 401 {
		t.Fatalf("unknown endpoint, nobody: %d", w.Code)
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"15m", 15 * time.Minute, true}, {"1h30m", 90 * time.Minute, true}, {"3d", 72 * time.Hour, true},
		{"0d", 0, false}, {"31d", 0, false}, {"d", 0, false}, {"1.5d", 0, false}, {"", 0, false}, {"soon", 0, false},
	} {
		got, err := ParseDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func FuzzEventQuery(f *testing.F) {
	for _, s := range []string{"type=login_failed&limit=5", "since=2030-01-01T00:00:00Z&before=2031-01-01T00:00:00.5Z", "limit=-1", "ip=%00", "x=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, p := eventQuery(v)
		if p != nil {
			return
		}
		if q.Limit < 1 || q.Limit > 1000 || len(q.IP) > 256 || len(q.Type) > 256 {
			t.Fatalf("accepted %+v", q)
		}
	})
}
