package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
)

type fakeAccounts struct{ calls int }

func (f *fakeAccounts) Login(_ context.Context, email, pw, code, _ string) (Account, error) {
	f.calls++
	switch {
	case email == "mfa@example.com" && pw == "right" && code == "123456":
		return Account{UserID: "u-mfa", Email: email, Roles: []string{"admin"}}, nil
	case email == "mfa@example.com" && pw == "right":
		return Account{}, ErrCodeRequired
	case email == "nomfa@example.com" && pw == "right":
		return Account{}, ErrSetupRequired
	case email == "admin@example.com" && pw == "right":
		return Account{UserID: "u-admin", Email: email, Roles: []string{"admin"}}, nil
	case email == "user@example.com" && pw == "right":
		return Account{UserID: "u-user", Email: email, Roles: []string{"user"}}, nil
	}
	return Account{}, errors.New("invalid credentials")
}

func post(h http.Handler, form url.Values, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "https://admin.test/dashboard/login", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestSignIn(t *testing.T) {
	cases := []struct {
		name     string
		form     url.Values
		hdr      []string
		status   int
		location string
		cookie   bool
	}{
		{"admin", url.Values{"email": {"admin@example.com"}, "password": {"right"}}, []string{"Origin", "https://admin.test"}, 303, "/dashboard/", true},
		{"no origin (not a browser)", url.Values{"email": {"admin@example.com"}, "password": {"right"}}, nil, 303, "/dashboard/", true},
		{"not an admin", url.Values{"email": {"user@example.com"}, "password": {"right"}}, nil, 303, "/dashboard/login?failed=1", false},
		{"wrong password", url.Values{"email": {"admin@example.com"}, "password": {"wrong"}}, nil, 303, "/dashboard/login?failed=1", false},
		{"mfa account without code", url.Values{"email": {"mfa@example.com"}, "password": {"right"}}, nil, 303, "/dashboard/login?code=1", false},
		{"mfa account with wrong code", url.Values{"email": {"mfa@example.com"}, "password": {"right"}, "code": {"000000"}}, nil, 303, "/dashboard/login?failed=1", false},
		{"mfa account with code", url.Values{"email": {"mfa@example.com"}, "password": {"right"}, "code": {"123456"}}, nil, 303, "/dashboard/", true},
		{"admin without a second factor when required", url.Values{"email": {"nomfa@example.com"}, "password": {"right"}}, nil, 303, "/dashboard/login?failed=setup", false},
		{"huge code", url.Values{"email": {"mfa@example.com"}, "password": {"right"}, "code": {strings.Repeat("1", 65)}}, nil, 303, "/dashboard/login?failed=1", false},
		{"empty", url.Values{}, nil, 303, "/dashboard/login?failed=1", false},
		{"huge password", url.Values{"email": {"admin@example.com"}, "password": {strings.Repeat("p", 5000)}}, nil, 303, "/dashboard/login?failed=1", false},
		{"other origin (login CSRF)", url.Values{"email": {"admin@example.com"}, "password": {"right"}}, []string{"Origin", "https://evil.example"}, 403, "", false},
		{"null origin", url.Values{"email": {"admin@example.com"}, "password": {"right"}}, []string{"Origin", "null"}, 403, "", false},
		{"plain-http origin", url.Values{"email": {"admin@example.com"}, "password": {"right"}}, []string{"Origin", "http://admin.test"}, 403, "", false},
		{"cross-site fetch without origin", url.Values{"email": {"admin@example.com"}, "password": {"right"}}, []string{"Sec-Fetch-Site", "cross-site"}, 403, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			acc := &fakeAccounts{}
			h := New(Options{Sessions: adminapi.NewSessions(0, nil), Accounts: acc})
			w := post(h, tc.form, tc.hdr...)
			if w.Code != tc.status || w.Header().Get("Location") != tc.location {
				t.Fatalf("%d → %q, want %d → %q", w.Code, w.Header().Get("Location"), tc.status, tc.location)
			}
			gotCookie := strings.Contains(w.Header().Get("Set-Cookie"), adminapi.CookieName+"=")
			if gotCookie != tc.cookie {
				t.Fatalf("cookie set: %v: %q", gotCookie, w.Header().Get("Set-Cookie"))
			}
			if tc.status == 403 && acc.calls != 0 {
				t.Fatal("refused origin still checked the password")
			}
		})
	}
	// An oversized body is refused before the password is checked.
	acc := &fakeAccounts{}
	h := New(Options{Sessions: adminapi.NewSessions(0, nil), Accounts: acc})
	if w := post(h, url.Values{"email": {"admin@example.com"}, "password": {"right"}, "pad": {strings.Repeat("x", 10000)}}); w.Header().Get("Location") != "/dashboard/login?failed=1" || acc.calls != 0 {
		t.Fatalf("oversized body: %d %q", w.Code, w.Header().Get("Location"))
	}
}

func TestPagesAndHeaders(t *testing.T) {
	sessions := adminapi.NewSessions(0, nil)
	h := New(Options{Sessions: sessions, Accounts: &fakeAccounts{}})
	rec := httptest.NewRecorder()
	sess := sessions.Create(rec, "u-admin", "admin@example.com")
	cookie := rec.Result().Cookies()[0]
	get := func(path string, withCookie bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "https://admin.test"+path, nil)
		if withCookie {
			r.AddCookie(cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := get("/dashboard/", false); w.Code != 303 || w.Header().Get("Location") != "/dashboard/login" {
		t.Fatalf("signed out: %d %q", w.Code, w.Header().Get("Location"))
	}
	for _, tc := range []struct {
		path, want string
		code       int
	}{
		{"/dashboard/", `id="dashboard-page"`, 200},
		{"/dashboard/login", `action="/dashboard/login"`, 200},
		{"/dashboard/assets/app.js", "textContent", 200},
		{"/dashboard/assets/app.css", "--accent", 200},
		{"/dashboard/assets/index.html", "", 404},
		{"/dashboard/assets/..%2fdashboard.go", "", 404},
		{"/dashboard/nothing", "", 404},
	} {
		w := get(tc.path, true)
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s: %d", tc.path, w.Code)
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", tc.path, csp)
		}
	}
	// No page refers to another origin.
	for _, f := range []string{"assets/index.html", "assets/login.html", "assets/app.js", "assets/app.css"} {
		b, _ := assets.ReadFile(f)
		for _, bad := range []string{"http://", "https://", "innerHTML", "eval("} {
			if strings.Contains(string(b), bad) && !(bad == "http://" && strings.Contains(string(b), "http://www.w3.org/2000/svg")) {
				t.Errorf("%s contains %q", f, bad)
			}
		}
	}
	// Logout needs the CSRF token.
	logout := func(token string) int {
		r := httptest.NewRequest("POST", "https://admin.test/dashboard/logout", nil)
		r.AddCookie(cookie)
		if token != "" {
			r.Header.Set(adminapi.CSRFHeader, token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if c := logout(""); c != 403 {
		t.Fatalf("logout without token: %d", c)
	}
	if c := logout(sess.CSRF); c != 204 {
		t.Fatalf("logout: %d", c)
	}
	if w := get("/dashboard/", true); w.Code != 303 {
		t.Fatalf("still signed in after logout: %d", w.Code)
	}
}
