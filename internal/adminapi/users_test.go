package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// memUsers is a stateful Users for the user-administration endpoints.
type memUsers struct {
	mu    sync.Mutex
	users map[string]*store.User
	calls []string
}

func (m *memUsers) get(id string) (*store.User, error) {
	u, ok := m.users[id]
	if !ok {
		return nil, ErrNotFound
	}
	return u, nil
}

func (m *memUsers) List(context.Context, string, int) ([]store.User, error) { return nil, nil }
func (m *memUsers) Email(*store.User) (string, error)                       { return "u@example.com", nil }
func (m *memUsers) Sessions(context.Context, string) ([]store.Session, error) {
	return nil, nil
}
func (m *memUsers) RevokeSessions(context.Context, string, string, string) (int, error) {
	return 0, nil
}
func (m *memUsers) Get(_ context.Context, id string) (*store.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.get(id)
	if err != nil {
		return nil, err
	}
	c := *u
	return &c, nil
}
func (m *memUsers) Lock(_ context.Context, id, by string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.get(id)
	if err == nil {
		t := u.CreatedAt
		u.LockedAt = &t
		m.calls = append(m.calls, "lock "+id+" by "+by)
	}
	return err
}
func (m *memUsers) Unlock(_ context.Context, id, by string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.get(id)
	if err == nil {
		u.LockedAt = nil
		m.calls = append(m.calls, "unlock "+id+" by "+by)
	}
	return err
}
func (m *memUsers) Grant(_ context.Context, id string, roles []string, plan, by string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.get(id)
	if err == nil {
		if roles != nil {
			u.Roles = roles
		}
		if plan != "" {
			u.Plan = plan
		}
		m.calls = append(m.calls, "grant "+id+" by "+by)
	}
	return err
}

// fakeTokens admits the tokens it was given.
type fakeTokens map[string]*token.Claims

func (f fakeTokens) Authenticate(_ context.Context, tok string) (*token.Claims, error) {
	if c, ok := f[tok]; ok {
		return c, nil
	}
	return nil, errors.New("invalid token")
}

func newUsersEnv(t *testing.T, requireMFA bool) (*env, *memUsers) {
	e := newEnv(t)
	users := &memUsers{users: map[string]*store.User{"u1": {ID: "u1", Roles: []string{}, Plan: "free"}}}
	e.h = New(Deps{
		Sessions: e.sessions, Bans: fakeBans{}, Users: users, Services: services(t), RequireMFA: requireMFA,
		Plans: []string{"free", "premium"},
		Tokens: fakeTokens{
			"admin-mfa": {Subject: "a1", Roles: []string{"admin"}, AMR: []string{"pwd", "otp", "mfa"}},
			"admin-pwd": {Subject: "a2", Roles: []string{"admin"}, AMR: []string{"pwd"}},
			"user-mfa":  {Subject: "u9", Roles: []string{"support"}, AMR: []string{"pwd", "otp"}},
		},
	})
	return e, users
}

type fakeBans struct{}

func (fakeBans) Add(context.Context, store.Ban) (store.Ban, error) { return store.Ban{}, nil }
func (fakeBans) Lift(context.Context, string) (store.Ban, error)   { return store.Ban{}, nil }
func (fakeBans) Active() []store.Ban                               { return nil }

func (e *env) bearer(t *testing.T, method, target, tok, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body == "" {
		r.ContentLength = 0
	} else {
		r.Header.Set("Content-Type", "application/json")
	}
	r.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func TestBearerAdmins(t *testing.T) {
	for _, tc := range []struct {
		name       string
		requireMFA bool
		tok        string
		want       int
	}{
		{"admin with mfa", true, "admin-mfa", 200},
		{"admin without mfa when required", true, "admin-pwd", 401},
		{"admin without mfa when not required", false, "admin-pwd", 200},
		{"not an admin", false, "user-mfa", 401},
		{"unknown token", false, "forged", 401},
		{"empty token", false, "", 401},
	} {
		e, _ := newUsersEnv(t, tc.requireMFA)
		if w := e.bearer(t, "GET", "/admin/v1/users/u1", tc.tok, ""); w.Code != tc.want {
			t.Errorf("%s: %d, want %d: %s", tc.name, w.Code, tc.want, w.Body)
		}
	}
	// A Bearer token needs no CSRF header (browsers never send it on their own).
	e, users := newUsersEnv(t, true)
	if w := e.bearer(t, "POST", "/admin/v1/users/u1/lock", "admin-mfa", ""); w.Code != 200 {
		t.Fatalf("lock with bearer: %d %s", w.Code, w.Body)
	}
	if len(users.calls) != 1 || users.calls[0] != "lock u1 by admin:a1" {
		t.Fatalf("calls %v", users.calls)
	}
}

func TestUserAdministration(t *testing.T) {
	e, users := newUsersEnv(t, true)
	type step struct {
		name, method, path, auth, body string
		want                           int
		check                          func(u *store.User) bool
	}
	locked := func(u *store.User) bool { return u.LockedAt != nil }
	unlocked := func(u *store.User) bool { return u.LockedAt == nil }
	for _, s := range []step{
		{"get", "GET", "/admin/v1/users/u1", "cookie", "", 200, unlocked},
		{"get unknown", "GET", "/admin/v1/users/nobody", "cookie", "", 404, nil},
		{"lock without csrf", "POST", "/admin/v1/users/u1/lock", "cookie", "", 403, unlocked},
		{"lock", "POST", "/admin/v1/users/u1/lock", "cookie+csrf", "", 200, locked},
		{"lock unknown", "POST", "/admin/v1/users/nobody/lock", "cookie+csrf", "", 404, locked},
		{"unlock", "POST", "/admin/v1/users/u1/unlock", "cookie+csrf", "", 200, unlocked},
		{"plan", "PUT", "/admin/v1/users/u1/plan", "cookie+csrf", `{"plan":"premium"}`, 200, func(u *store.User) bool { return u.Plan == "premium" }},
		{"plan not configured", "PUT", "/admin/v1/users/u1/plan", "cookie+csrf", `{"plan":"gold"}`, 400, func(u *store.User) bool { return u.Plan == "premium" }},
		{"plan empty", "PUT", "/admin/v1/users/u1/plan", "cookie+csrf", `{"plan":""}`, 400, nil},
		{"plan missing", "PUT", "/admin/v1/users/u1/plan", "cookie+csrf", `{}`, 400, nil},
		{"plan unknown field", "PUT", "/admin/v1/users/u1/plan", "cookie+csrf", `{"plan":"free","x":1}`, 400, nil},
		{"plan two objects", "PUT", "/admin/v1/users/u1/plan", "cookie+csrf", `{"plan":"free"}{}`, 400, nil},
		{"plan not json", "PUT", "/admin/v1/users/u1/plan", "cookie+csrf", `plan=free`, 415, nil},
		{"roles", "PUT", "/admin/v1/users/u1/roles", "cookie+csrf", `{"roles":["support","billing"]}`, 200, func(u *store.User) bool { return strings.Join(u.Roles, ",") == "support,billing" }},
		{"roles bad name", "PUT", "/admin/v1/users/u1/roles", "cookie+csrf", `{"roles":["ok","bad role"]}`, 400, func(u *store.User) bool { return strings.Join(u.Roles, ",") == "support,billing" }},
		{"roles not a list", "PUT", "/admin/v1/users/u1/roles", "cookie+csrf", `{"roles":"admin"}`, 400, nil},
		{"roles missing", "PUT", "/admin/v1/users/u1/roles", "cookie+csrf", `{}`, 400, nil},
		{"roles cleared", "PUT", "/admin/v1/users/u1/roles", "cookie+csrf", `{"roles":[]}`, 200, func(u *store.User) bool { return len(u.Roles) == 0 }},
		{"roles unknown user", "PUT", "/admin/v1/users/nobody/roles", "cookie+csrf", `{"roles":[]}`, 404, nil},
		{"id too long", "GET", "/admin/v1/users/" + strings.Repeat("a", 200), "cookie", "", 400, nil},
	} {
		ct := ""
		if s.body != "" {
			ct = "application/json"
			if s.name == "plan not json" {
				ct = "application/x-www-form-urlencoded"
			}
		}
		w := e.do(t, s.method, s.path, s.auth, ct, s.body)
		if w.Code != s.want {
			t.Errorf("%s: %d, want %d: %s", s.name, w.Code, s.want, w.Body)
			continue
		}
		if w.Code >= 400 && !strings.HasPrefix(w.Header().Get("Content-Type"), "application/problem+json") {
			t.Errorf("%s: content type %q", s.name, w.Header().Get("Content-Type"))
		}
		if w.Code == 400 {
			var p struct{ Errors []struct{ Field string } }
			if json.Unmarshal(w.Body.Bytes(), &p) != nil || len(p.Errors) == 0 || p.Errors[0].Field == "" {
				t.Errorf("%s: 400 names no field: %s", s.name, w.Body)
			}
		}
		if s.check != nil {
			u, _ := users.Get(t.Context(), "u1")
			if !s.check(u) {
				t.Errorf("%s: user afterwards %+v", s.name, u)
			}
		}
	}
}
