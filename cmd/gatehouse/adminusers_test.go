package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// adminUsersEnv starts a server with the admin listener on and returns it with
// the admin base URL.
func adminUsersEnv(t *testing.T, requireMFA bool) (*server, string) {
	t.Helper()
	e, admin := atRestEnv(t, "", "plans: {free: 100/h, premium: 1000/h}\n")
	if !requireMFA {
		setConfig(t, e, "admin:\n  listen: "+admin, "admin:\n  listen: "+admin+"\n  require_mfa: false")
	}
	s := startServer(t, e, atRestGetenv)
	return s, "https://" + admin + "/admin/v1/users/"
}

// setConfig replaces old with new in e's config file.
func setConfig(t *testing.T, e *testEnv, old, new string) {
	t.Helper()
	b, err := os.ReadFile(e.cfg)
	if err != nil || !strings.Contains(string(b), old) {
		t.Fatalf("config has no %q (%v)", old, err)
	}
	if err := os.WriteFile(e.cfg, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAdminUsersAPI drives /admin/v1/users/* over the admin listener's HTTPS
// with an admin account's access token: lock signs the user out everywhere at
// once, unlock lets them back in, plan and roles reach the next token.
func TestAdminUsersAPI(t *testing.T) {
	s, base := adminUsersEnv(t, false)
	const pw = "correct horse battery staple"
	wantStatus(t, s.signup(t, "boss@example.com", pw), 201)
	uid := s.signup(t, "user@example.com", pw).str(t, "user_id")
	if out, errOut, code := runCLI(t, "", "users", "grant", "--email", "boss@example.com", "--roles", "admin", "--config", s.cfg); code != 0 {
		t.Fatalf("grant admin: %d %s %s", code, out, errOut)
	}
	boss := "Bearer " + s.login(t, "boss@example.com", pw).str(t, "access_token")
	user := s.login(t, "user@example.com", pw)
	userAT, userRT := user.str(t, "access_token"), user.str(t, "refresh_token")

	r := do(t, s.c, "GET", base+uid, "", "", "Authorization", boss)
	wantStatus(t, r, 200)
	if r.str(t, "email") != "user@example.com" || r.json(t)["locked"] != false {
		t.Fatalf("user: %s", r.body)
	}
	// A non-admin token, a forged one and none are all refused alike.
	for _, auth := range []string{"Bearer " + userAT, "Bearer forged", ""} {
		wantStatus(t, do(t, s.c, "GET", base+uid, "", "", "Authorization", auth), 401)
	}

	wantStatus(t, do(t, s.c, "POST", base+uid+"/lock", "", "", "Authorization", boss), 200)
	wantStatus(t, s.refresh(t, userRT), 400)
	wantStatus(t, s.get(t, "/auth/v1/user", userAT), 401)
	if r := s.login(t, "user@example.com", pw); r.status != 400 || !strings.Contains(string(r.body), "locked") {
		t.Fatalf("login while locked: %d %s", r.status, r.body)
	}
	wantStatus(t, do(t, s.c, "POST", base+uid+"/unlock", "", "", "Authorization", boss), 200)
	wantStatus(t, s.login(t, "user@example.com", pw), 200)

	r = do(t, s.c, "PUT", base+uid+"/plan", jsonType, `{"plan":"premium"}`, "Authorization", boss)
	wantStatus(t, r, 200)
	r = do(t, s.c, "PUT", base+uid+"/roles", jsonType, `{"roles":["support"]}`, "Authorization", boss)
	wantStatus(t, r, 200)
	claims := accessClaims(t, s.login(t, "user@example.com", pw).str(t, "access_token"))
	if claims["plan"] != "premium" || !strings.Contains(strings.Join(toStrings(claims["roles"]), ","), "support") {
		t.Fatalf("claims after plan/roles: %v", claims)
	}
	for _, tc := range []struct{ method, path, body string }{
		{"PUT", "/plan", `{"plan":"gold"}`},
		{"PUT", "/roles", `{"roles":["no spaces"]}`},
		{"PUT", "/plan", `{"plan":1}`},
	} {
		wantStatus(t, do(t, s.c, tc.method, base+uid+tc.path, jsonType, tc.body, "Authorization", boss), 400)
	}
	wantStatus(t, do(t, s.c, "POST", base+"no-such-user/lock", "", "", "Authorization", boss), 404)
	r = do(t, s.c, "GET", base+uid, "", "", "Authorization", boss)
	if r.str(t, "plan") != "premium" || r.json(t)["locked"] != false {
		t.Fatalf("bad requests changed the user: %s", r.body)
	}
}

// TestAdminRequiresMFA: with admin.require_mfa (the default) a password-only
// admin token is refused by the admin API.
func TestAdminRequiresMFA(t *testing.T) {
	s, base := adminUsersEnv(t, true)
	const pw = "correct horse battery staple"
	uid := s.signup(t, "boss@example.com", pw).str(t, "user_id")
	if _, errOut, code := runCLI(t, "", "users", "grant", "--email", "boss@example.com", "--roles", "admin", "--config", s.cfg); code != 0 {
		t.Fatalf("grant admin: %d %s", code, errOut)
	}
	boss := "Bearer " + s.login(t, "boss@example.com", pw).str(t, "access_token")
	wantStatus(t, do(t, s.c, "GET", base+uid, "", "", "Authorization", boss), 401)
}

// accessClaims decodes an access token's payload (the signature is checked by
// the server; here only the claims matter).
func accessClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	var m map[string]any
	if err := json.Unmarshal(mustB64(t, parts[1]), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
