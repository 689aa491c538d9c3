package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/mailer/mailpittest"
)

// emailYAML configures mail through mailpit, verification required, one
// gateway route, and edge limits out of the way (they have their own tests).
func emailYAML(mp *mailpittest.Server, upstream, perIP string) string {
	return fmt.Sprintf(`smtp: {host: %s, port: %d, tls: none, from: "Gatehouse <no-reply@example.com>", timeout: 10s}
identity:
  require_verified_email: true
  email: {verify_url: "https://app.example.com/verify", reset_url: "https://app.example.com/reset?from=mail", send_per_address: 3/h, send_per_ip: %s}
upstreams:
  api: {url: %s, timeout: 10s}
routes:
  - {name: me, methods: [GET], path: /v1/me, upstream: api}
limits:
  per_ip: 100000/s
  auth: {signup: 100000/h, token: 100000/m, email_send: 100000/h, password_reset: 100000/h}
`, mp.SMTPHost, mp.SMTPPort, perIP, upstream)
}

var mailCodeRe = regexp.MustCompile(`(?m)^\s+(\d{8})\s*$`)

// tokenAndCode reads the link's token and the code from a mail.
func tokenAndCode(t *testing.T, m mailpittest.Message, base string) (string, string) {
	t.Helper()
	i := strings.Index(m.Text, base)
	c := mailCodeRe.FindStringSubmatch(m.Text)
	if i < 0 || c == nil {
		t.Fatalf("no %s link or code in the mail: %q", base, m.Text)
	}
	u, err := url.Parse(strings.Fields(m.Text[i:])[0])
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token"), c[1]
}

func postJSON(t *testing.T, s *server, path string, v any, hdr ...string) *response {
	t.Helper()
	b, _ := json.Marshal(v)
	return do(t, s.c, "POST", s.issuer+path, jsonType, string(b), hdr...)
}

func wantFieldProblem(t *testing.T, r *response, status int, field string) {
	t.Helper()
	wantStatus(t, r, status)
	if field == "" {
		return
	}
	var p struct {
		Errors []struct{ Field string } `json:"errors"`
	}
	_ = json.Unmarshal(r.body, &p)
	if len(p.Errors) == 0 || p.Errors[0].Field != field {
		t.Fatalf("problem does not name %q: %s", field, r.body)
	}
}

// sentinel sends one mail through the server and waits for it, so mail that
// a request before it should not have sent would have had its chance too.
func sentinel(t *testing.T, s *server, mp *mailpittest.Server, n *int) {
	t.Helper()
	*n++
	addr := fmt.Sprintf("sentinel%d@example.com", *n)
	wantStatus(t, s.signup(t, addr, "lantern passphrase 1"), http.StatusCreated)
	mp.WaitFor(t, addr, 1)
}

func TestEmailVerificationAndPasswordResetEndToEnd(t *testing.T) {
	t.Parallel()
	mp := mailpittest.Start(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(up.Close)
	s := startServer(t, newTestEnv(t, emailYAML(mp, up.URL, "1000/h")), nil)
	sentinels := 0

	// 1. Sign-up with verification required: 201, no tokens, and a mail.
	r := s.signup(t, "ann@example.com", "ann first password")
	wantStatus(t, r, http.StatusCreated)
	body := r.json(t)
	if body["email_verification_required"] != true || body["access_token"] != nil || body["user_id"] == "" {
		t.Fatalf("signup: %s", r.body)
	}
	annID := body["user_id"]
	wantStatus(t, s.login(t, "ann@example.com", "ann first password"), http.StatusBadRequest)
	m := mp.WaitFor(t, "ann@example.com", 1)
	tok, code := tokenAndCode(t, m, "https://app.example.com/verify?")
	// A wrong code changes nothing.
	wantFieldProblem(t, postJSON(t, s, "/auth/v1/email/verify", map[string]string{"email": "ann@example.com", "code": wrongCodeFor(code)}), http.StatusBadRequest, "code")
	wantStatus(t, s.login(t, "ann@example.com", "ann first password"), http.StatusBadRequest)
	// 2. Verify by the link's token; then sign-in works; the token is spent.
	wantStatus(t, postJSON(t, s, "/auth/v1/email/verify", map[string]string{"token": tok}), http.StatusOK)
	wantStatus(t, s.login(t, "ann@example.com", "ann first password"), http.StatusOK)
	wantFieldProblem(t, postJSON(t, s, "/auth/v1/email/verify", map[string]string{"token": tok}), http.StatusBadRequest, "token")
	wantFieldProblem(t, postJSON(t, s, "/auth/v1/email/verify", map[string]string{"email": "ann@example.com", "code": code}), http.StatusBadRequest, "code")

	// 3. Verify by code (Bob asks again while signed out, then types the code).
	wantStatus(t, s.signup(t, "bob@example.com", "bob first password"), http.StatusCreated)
	mp.WaitFor(t, "bob@example.com", 1)
	r = postJSON(t, s, "/auth/v1/email/verify/send", map[string]string{"email": "bob@example.com"})
	wantStatus(t, r, http.StatusAccepted)
	sendBody := string(r.body)
	_, code = tokenAndCode(t, mp.WaitFor(t, "bob@example.com", 2), "https://app.example.com/verify?")
	wantStatus(t, postJSON(t, s, "/auth/v1/email/verify", map[string]string{"email": "Bob@Example.com", "code": code}), http.StatusOK)
	wantStatus(t, s.login(t, "bob@example.com", "bob first password"), http.StatusOK)

	// 4. Sign-up with a taken address looks like a new one; the owner gets a notice.
	r = s.signup(t, "ann@example.com", "someone else's pw")
	wantStatus(t, r, http.StatusCreated)
	if b := r.json(t); b["email_verification_required"] != true || b["user_id"] == annID || b["access_token"] != nil {
		t.Fatalf("taken signup: %s", r.body)
	}
	if n := mp.WaitFor(t, "ann@example.com", 2); !strings.Contains(n.Subject, "sign up") || mailCodeRe.MatchString(n.Text) {
		t.Fatalf("notice: %q %q", n.Subject, n.Text)
	}

	// 5. Unknown address: the same 202 body, and no mail.
	r = postJSON(t, s, "/auth/v1/email/verify/send", map[string]string{"email": "nobody@example.com"})
	wantStatus(t, r, http.StatusAccepted)
	if string(r.body) != sendBody {
		t.Fatalf("bodies differ: %s vs %s", r.body, sendBody)
	}
	r = postJSON(t, s, "/auth/v1/password/forgot", map[string]string{"email": "nobody@example.com"})
	wantStatus(t, r, http.StatusAccepted)
	forgotBody := string(r.body)

	// 6. Forgot → reset by link: every session ends, at the edge too.
	var refresh, access []string
	for range 2 {
		l := s.login(t, "ann@example.com", "ann first password")
		wantStatus(t, l, http.StatusOK)
		refresh, access = append(refresh, l.str(t, "refresh_token")), append(access, l.str(t, "access_token"))
		wantStatus(t, s.get(t, "/v1/me", access[len(access)-1]), http.StatusOK)
	}
	r = postJSON(t, s, "/auth/v1/password/forgot", map[string]string{"email": "ann@example.com"})
	wantStatus(t, r, http.StatusAccepted)
	if string(r.body) != forgotBody {
		t.Fatalf("bodies differ: %s vs %s", r.body, forgotBody)
	}
	tok, code = tokenAndCode(t, mp.WaitFor(t, "ann@example.com", 3), "https://app.example.com/reset?from=mail&")
	// A weak new password: 400 naming the field, nothing changes.
	wantFieldProblem(t, postJSON(t, s, "/auth/v1/password/reset", map[string]string{"token": tok, "password": "password"}), http.StatusBadRequest, "password")
	wantStatus(t, s.refresh(t, refresh[0]), http.StatusOK)
	refresh[0] = "" // rotated; keep the other one to show it dies
	wantStatus(t, postJSON(t, s, "/auth/v1/password/reset", map[string]string{"token": tok, "password": "ann second password"}), http.StatusOK)
	wantStatus(t, s.refresh(t, refresh[1]), http.StatusBadRequest)
	for _, a := range access {
		wantStatus(t, s.get(t, "/v1/me", a), http.StatusUnauthorized)
		wantStatus(t, s.get(t, "/auth/v1/user", a), http.StatusUnauthorized)
	}
	wantStatus(t, s.login(t, "ann@example.com", "ann first password"), http.StatusBadRequest)
	wantStatus(t, s.login(t, "ann@example.com", "ann second password"), http.StatusOK)
	// Replays of the link and of its code.
	wantFieldProblem(t, postJSON(t, s, "/auth/v1/password/reset", map[string]string{"token": tok, "password": "ann third password"}), http.StatusBadRequest, "token")
	wantFieldProblem(t, postJSON(t, s, "/auth/v1/password/reset", map[string]string{"email": "ann@example.com", "code": code, "password": "ann third password"}), http.StatusBadRequest, "code")
	if n := mp.WaitFor(t, "ann@example.com", 4); !strings.Contains(n.Subject, "password was changed") {
		t.Fatalf("no change notice: %q", n.Subject)
	}
	wantStatus(t, s.login(t, "ann@example.com", "ann second password"), http.StatusOK)

	// 7. Expired code: nothing changes.
	signupVerified(t, s, mp, "carl@example.com", "orchid first passphrase")
	wantStatus(t, postJSON(t, s, "/auth/v1/password/forgot", map[string]string{"email": "carl@example.com"}), http.StatusAccepted)
	tok, code = tokenAndCode(t, mp.WaitFor(t, "carl@example.com", 2), "https://app.example.com/reset?")
	expireCodes(t, s.db)
	wantFieldProblem(t, postJSON(t, s, "/auth/v1/password/reset", map[string]string{"email": "carl@example.com", "code": code, "password": "orchid second passphrase"}), http.StatusBadRequest, "code")
	wantFieldProblem(t, postJSON(t, s, "/auth/v1/password/reset", map[string]string{"token": tok, "password": "orchid second passphrase"}), http.StatusBadRequest, "token")
	wantStatus(t, s.login(t, "carl@example.com", "orchid first passphrase"), http.StatusOK)

	// 8. Five wrong codes spend the code and its link.
	signupVerified(t, s, mp, "dave@example.com", "meadow first passphrase")
	wantStatus(t, postJSON(t, s, "/auth/v1/password/forgot", map[string]string{"email": "dave@example.com"}), http.StatusAccepted)
	tok, code = tokenAndCode(t, mp.WaitFor(t, "dave@example.com", 2), "https://app.example.com/reset?")
	for range 5 {
		wantFieldProblem(t, postJSON(t, s, "/auth/v1/password/reset", map[string]string{"email": "dave@example.com", "code": wrongCodeFor(code), "password": "meadow second passphrase"}), http.StatusBadRequest, "code")
	}
	wantFieldProblem(t, postJSON(t, s, "/auth/v1/password/reset", map[string]string{"email": "dave@example.com", "code": code, "password": "meadow second passphrase"}), http.StatusBadRequest, "code")
	wantFieldProblem(t, postJSON(t, s, "/auth/v1/password/reset", map[string]string{"token": tok, "password": "meadow second passphrase"}), http.StatusBadRequest, "token")
	wantStatus(t, s.login(t, "dave@example.com", "meadow first passphrase"), http.StatusOK)

	// 9. Per-address limit (3/h, all kinds): erin has 1 mail from sign-up; two
	// more are sent, the fourth request answers the same and sends nothing.
	wantStatus(t, s.signup(t, "erin@example.com", "harbor first passphrase"), http.StatusCreated)
	mp.WaitFor(t, "erin@example.com", 1)
	for i := range 3 {
		r = postJSON(t, s, "/auth/v1/email/verify/send", map[string]string{"email": "erin@example.com"})
		wantStatus(t, r, http.StatusAccepted)
		if string(r.body) != sendBody {
			t.Fatalf("send %d: body %s", i, r.body)
		}
	}
	mp.WaitFor(t, "erin@example.com", 3)
	sentinel(t, s, mp, &sentinels)
	if n := len(mp.To(t, "erin@example.com")); n != 3 {
		t.Fatalf("erin got %d mails, want 3", n)
	}
	if n := len(mp.To(t, "nobody@example.com")); n != 0 {
		t.Fatalf("an unknown address got %d mails", n)
	}

	// 10. Bad input: exact statuses, no state change.
	for _, tc := range []struct {
		path, body string
		status     int
		field      string
	}{
		{"/auth/v1/email/verify", `{}`, 400, "token"},
		{"/auth/v1/email/verify", `{"token":"x","code":"12345678"}`, 400, "token"},
		{"/auth/v1/email/verify", `{"email":"erin@example.com"}`, 400, "code"},
		{"/auth/v1/email/verify", `{"token":"not-a-real-token"}`, 400, "token"},
		{"/auth/v1/email/verify", `{"email":"not an address","code":"12345678"}`, 400, "email"},
		{"/auth/v1/email/verify", `{"token":"x","roles":["admin"]}`, 400, "roles"},
		{"/auth/v1/password/reset", `{"token":"x"}`, 400, "password"},
		{"/auth/v1/password/forgot", `{}`, 400, "email"},
		{"/auth/v1/password/forgot", `{"email":"a@example.com\r\nBcc: x@example.com"}`, 400, "email"},
		{"/auth/v1/email/verify/send", `{"email":5}`, 400, ""},
	} {
		wantFieldProblem(t, do(t, s.c, "POST", s.issuer+tc.path, jsonType, tc.body), tc.status, tc.field)
	}
	wantStatus(t, do(t, s.c, "POST", s.issuer+"/auth/v1/password/forgot", formType, "email=a@example.com"), http.StatusUnsupportedMediaType)
	wantStatus(t, do(t, s.c, "GET", s.issuer+"/auth/v1/password/forgot", "", ""), http.StatusMethodNotAllowed)
	wantStatus(t, s.login(t, "erin@example.com", "harbor first passphrase"), http.StatusBadRequest)

	// 11. Signed in: verify/send takes no body and answers 202.
	l := s.login(t, "ann@example.com", "ann second password")
	wantStatus(t, l, http.StatusOK)
	wantStatus(t, do(t, s.c, "POST", s.issuer+"/auth/v1/email/verify/send", "", "", "Authorization", "Bearer "+l.str(t, "access_token")), http.StatusAccepted)
	wantStatus(t, do(t, s.c, "POST", s.issuer+"/auth/v1/email/verify/send", jsonType, `{"email":"bob@example.com"}`, "Authorization", "Bearer "+l.str(t, "access_token")), http.StatusBadRequest)
	wantStatus(t, do(t, s.c, "POST", s.issuer+"/auth/v1/email/verify/send", "", "", "Authorization", "Bearer nope"), http.StatusUnauthorized)

	// No address, link token or code reached the log (audit events included).
	logs := s.stderr.String()
	if !strings.Contains(logs, "password_reset_completed") {
		t.Fatal("the audit log lines are missing: the check below would prove nothing")
	}
	for _, secret := range []string{"ann@example.com", "bob@example.com", "dave@example.com", "nobody@example.com", tok, code} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log carries a secret (%d chars)", len(secret))
		}
	}
}

func TestEmailSendLimitPerIPAndNotConfigured(t *testing.T) {
	t.Parallel()
	t.Run("per ip", func(t *testing.T) {
		t.Parallel()
		mp := mailpittest.Start(t)
		s := startServer(t, newTestEnv(t, emailYAML(mp, "http://127.0.0.1:9", "2/h")), nil)
		for range 2 {
			wantStatus(t, postJSON(t, s, "/auth/v1/password/forgot", map[string]string{"email": "someone@example.com"}), http.StatusAccepted)
		}
		r := postJSON(t, s, "/auth/v1/email/verify/send", map[string]string{"email": "someone@example.com"})
		wantStatus(t, r, http.StatusTooManyRequests)
		if r.header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	})
	t.Run("no smtp", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, newTestEnv(t, ""), nil)
		for _, p := range []string{"/auth/v1/email/verify/send", "/auth/v1/email/verify", "/auth/v1/password/forgot", "/auth/v1/password/reset"} {
			r := postJSON(t, s, p, map[string]string{"email": "a@example.com"})
			wantStatus(t, r, http.StatusServiceUnavailable)
			if !strings.Contains(string(r.body), "email not configured") {
				t.Fatalf("%s: %s", p, r.body)
			}
		}
		// Without verification required, a taken address still answers 409.
		wantStatus(t, s.signup(t, "zed@example.com", "zed first password"), http.StatusCreated)
		wantStatus(t, s.signup(t, "zed@example.com", "zed first password"), http.StatusConflict)
	})
}

func signupVerified(t *testing.T, s *server, mp *mailpittest.Server, email, pw string) {
	t.Helper()
	wantStatus(t, s.signup(t, email, pw), http.StatusCreated)
	tok, _ := tokenAndCode(t, mp.WaitFor(t, email, 1), "https://app.example.com/verify?")
	wantStatus(t, postJSON(t, s, "/auth/v1/email/verify", map[string]string{"token": tok}), http.StatusOK)
}

// expireCodes moves every live reset code's expiry into the past, as if its
// 15 minutes had run out.
func expireCodes(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(`UPDATE one_time_codes SET expires_at = created_at + 1 WHERE kind = 'password_reset' AND used_at IS NULL`)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		t.Fatal("no reset code to expire")
	}
}

func wrongCodeFor(code string) string {
	if code == "00000000" {
		return "00000001"
	}
	return "00000000"
}
