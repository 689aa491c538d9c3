package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestDashboardMFA: with admin.require_mfa (the default) an administrator
// without a second factor cannot sign in to the dashboard; once TOTP is on,
// sign-in asks for the code, refuses a wrong one and admits the right one;
// an admin access token passes the admin API only after the MFA step.
func TestDashboardMFA(t *testing.T) {
	s, base := adminUsersEnv(t, true)
	adminOrigin := strings.TrimSuffix(base, "/admin/v1/users/")
	wantStatus(t, s.signup(t, "boss@example.com", pw), http.StatusCreated)
	if _, errOut, code := runCLI(t, "", "users", "grant", "--email", "boss@example.com", "--roles", "admin", "--config", s.cfg); code != 0 {
		t.Fatalf("grant admin: %d %s", code, errOut)
	}
	noFollow := *s.c
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	signIn := func(code string) *http.Response {
		t.Helper()
		resp, err := noFollow.PostForm(adminOrigin+"/dashboard/login", url.Values{"email": {"boss@example.com"}, "password": {pw}, "code": {code}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	wantRedirect := func(resp *http.Response, loc string, cookie bool) {
		t.Helper()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != loc || (len(resp.Cookies()) > 0) != cookie {
			t.Fatalf("sign-in: %d → %q, cookies %v; want → %q, cookie %v", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies(), loc, cookie)
		}
	}

	// No second factor yet: refused, and told why.
	wantRedirect(signIn(""), "/dashboard/login?failed=setup", false)

	// Enrol TOTP through the identity API.
	access := s.login(t, "boss@example.com", pw).str(t, "access_token")
	r := do(t, s.c, "POST", s.issuer+"/auth/v1/mfa/totp", "", "", "Authorization", "Bearer "+access)
	wantStatus(t, r, http.StatusOK)
	secret := r.str(t, "secret")
	freshStep()
	now := time.Now()
	r = do(t, s.c, "POST", s.issuer+"/auth/v1/mfa/totp/confirm", jsonType, jsonBody("code", totpCode(t, secret, now)), "Authorization", "Bearer "+access)
	wantStatus(t, r, http.StatusOK)
	recovery := toStrings(r.json(t)["recovery_codes"])

	wantRedirect(signIn(""), "/dashboard/login?code=1", false)
	wantRedirect(signIn(wrongCode(totpCode(t, secret, now), totpCode(t, secret, now.Add(30*time.Second)), totpCode(t, secret, now.Add(-30*time.Second)))), "/dashboard/login?failed=1", false)
	// The confirming code's step is spent; the next step's code (within the
	// ±1 step skew) signs in.
	wantRedirect(signIn(totpCode(t, secret, now.Add(30*time.Second))), "/dashboard/", true)

	// The admin API: a password-only admin token is refused; after the MFA
	// step (here with a recovery code) it is admitted.
	users := do(t, s.c, "GET", base[:len(base)-1], "", "", "Authorization", "Bearer "+access)
	wantStatus(t, users, http.StatusUnauthorized)
	tok := mfaToken(t, s, "boss@example.com")
	r = mfaGrant(t, s, "mfa_token", tok, "recovery_code", recovery[0])
	wantStatus(t, r, http.StatusOK)
	wantStatus(t, do(t, s.c, "GET", base[:len(base)-1], "", "", "Authorization", "Bearer "+r.str(t, "access_token")), http.StatusOK)
}
