package main

import (
	"bytes"
	"encoding/base32"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

const mfaGrantType = "urn:gatehouse:grant-type:mfa"

// mfaLimits lifts the edge limits: these tests send many identity requests
// from one IP, and the edge limits have their own tests.
const mfaLimits = "limits:\n  per_ip: 100000/s\n  auth: {signup: 100000/h, token: 100000/m, mfa: 100000/m}\n"

// totpCode is what an authenticator app shows at t for the base32 secret the
// enrolment returned (computed by pquerna/otp's app-compatible defaults, not
// by the code under test).
func totpCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// freshStep waits, boundedly, until at least 3 s of the current 30 s step
// remain, so a code computed now is still the server's current (or previous)
// step when it arrives. It is not a timed assertion: the skew of ±1 step
// absorbs any delay up to 30 s.
func freshStep() {
	if rem := 30 - time.Now().Unix()%30; rem < 3 {
		time.Sleep(time.Duration(rem)*time.Second + 100*time.Millisecond)
	}
}

func jsonBody(kv ...string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%q:%q", kv[i], kv[i+1])
	}
	b.WriteString("}")
	return b.String()
}

func amrOf(t testing.TB, access string) []string {
	t.Helper()
	_, claims := jwtParts(t, access)
	var out []string
	for _, a := range claims["amr"].([]any) {
		out = append(out, a.(string))
	}
	return out
}

// mfaClient is a signed-in account on a test server.
type mfaClient struct {
	s      *server
	email  string
	access string
}

func (c *mfaClient) call(t testing.TB, method, path, body string) *response {
	t.Helper()
	ct := ""
	if body != "" {
		ct = jsonType
	}
	return do(t, c.s.c, method, c.s.issuer+path, ct, body, "Authorization", "Bearer "+c.access)
}

// enrol runs enrolment and confirmation with a code computed at now.
func (c *mfaClient) enrol(t testing.TB, now time.Time) (secret string, codes []string) {
	t.Helper()
	r := c.call(t, "POST", "/auth/v1/mfa/totp", "")
	wantStatus(t, r, http.StatusOK)
	secret = r.str(t, "secret")
	u, err := url.Parse(r.str(t, "otpauth_uri"))
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != secret ||
		u.Query().Get("issuer") != "Notes Test" || u.Path != "/Notes Test:"+c.email {
		t.Fatalf("otpauth_uri %q", r.str(t, "otpauth_uri"))
	}
	r = c.call(t, "POST", "/auth/v1/mfa/totp/confirm", jsonBody("code", totpCode(t, secret, now)))
	wantStatus(t, r, http.StatusOK)
	for _, x := range r.json(t)["recovery_codes"].([]any) {
		codes = append(codes, x.(string))
	}
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes", len(codes))
	}
	return secret, codes
}

// mfaToken signs in with the password and returns the mfa_token of the
// mfa_required answer.
func mfaToken(t testing.TB, s *server, email string) string {
	t.Helper()
	m := wantMFARequired(t, s.login(t, email, pw))
	tok, _ := m["mfa_token"].(string)
	if len(tok) != 43 {
		t.Fatalf("mfa_token %q", tok)
	}
	return tok
}

// wantMFARequired checks an mfa_required answer. Not checkErrorResponse: its
// scan for leaked internals ("pgx", "sql") would now and then find them in a
// random mfa_token.
func wantMFARequired(t testing.TB, r *response) map[string]any {
	t.Helper()
	wantStatus(t, r, http.StatusBadRequest)
	m := r.json(t)
	if m["error"] != "mfa_required" || r.header.Get("Cache-Control") != "no-store" || r.header.Get("Content-Type") != "application/json" ||
		m["request_id"] != r.header.Get("X-Request-Id") {
		t.Fatalf("not an mfa_required answer: %v %s", r.header, r.body)
	}
	return m
}

func mfaGrant(t testing.TB, s *server, kv ...string) *response {
	t.Helper()
	return do(t, s.c, "POST", s.issuer+"/auth/v1/token", formType, form(append([]string{"grant_type", mfaGrantType}, kv...)...))
}

// TestMFAEndToEnd drives TOTP through the real binary path (run → serve) over
// HTTPS with real time: enrolment, two-step sign-in, the gateway's
// mfa: required, recovery codes and disabling.
func TestMFAEndToEnd(t *testing.T) {
	echo := httptest.NewServer(newGWEcho())
	t.Cleanup(echo.Close)
	e := newTestEnv(t, mfaLimits+`identity:
  mfa: {totp_issuer: Notes Test}
upstreams:
  echo: {url: `+echo.URL+`, timeout: 10s}
routes:
  - {name: step-up, methods: [GET], path: /echo/mfa, upstream: echo, mfa: required}
  - {name: plain, methods: [GET], path: /echo/plain, upstream: echo}
`)
	s := startServer(t, e, nil)
	r := s.signup(t, "alice@example.com", pw)
	wantStatus(t, r, http.StatusCreated)
	alice := &mfaClient{s: s, email: "alice@example.com", access: r.str(t, "access_token")}

	r = alice.call(t, "GET", "/auth/v1/mfa", "")
	wantStatus(t, r, http.StatusOK)
	if st := r.json(t); st["totp"] != false || len(st["methods"].([]any)) != 0 {
		t.Fatalf("status before enrolment: %s", r.body)
	}
	freshStep()
	now := time.Now()
	secret, codes := alice.enrol(t, now)
	r = alice.call(t, "GET", "/auth/v1/mfa", "")
	if st := r.json(t); st["totp"] != true || st["recovery_codes_remaining"] != float64(10) {
		t.Fatalf("status after enrolment: %s", r.body)
	}

	// Sign-in now takes two steps.
	r = s.login(t, alice.email, pw)
	m := wantMFARequired(t, r)
	if m["mfa_token_expires_in"] != float64(300) || fmt.Sprint(m["mfa_methods"]) != "[otp recovery_code]" || m["access_token"] != nil {
		t.Fatalf("mfa_required: %s", r.body)
	}
	// The confirming code's step is spent; the next step's code is within
	// the ±1 skew.
	r = mfaGrant(t, s, "mfa_token", m["mfa_token"].(string), "otp", totpCode(t, secret, now.Add(30*time.Second)))
	wantStatus(t, r, http.StatusOK)
	strong := r.str(t, "access_token")
	if amr := amrOf(t, strong); !slices.Contains(amr, "pwd") || !slices.Contains(amr, "otp") || !slices.Contains(amr, "mfa") {
		t.Fatalf("amr %v", amr)
	}
	if r.str(t, "refresh_token") == "" {
		t.Fatal("no refresh token")
	}

	// mfa: required admits the two-factor token and refuses the password-only one.
	gw := func(path, tok string) int {
		return do(t, s.c, "GET", s.issuer+path, "", "", "Authorization", "Bearer "+tok).status
	}
	if got := gw("/echo/mfa", strong); got != http.StatusOK {
		t.Errorf("mfa route with otp token: %d", got)
	}
	if got := gw("/echo/mfa", alice.access); got != http.StatusForbidden {
		t.Errorf("mfa route with pwd token: %d", got)
	}
	if got := gw("/echo/plain", alice.access); got != http.StatusOK {
		t.Errorf("plain route with pwd token: %d", got)
	}
	// A refreshed token keeps the session's factors.
	r = s.refresh(t, r.str(t, "refresh_token"))
	wantStatus(t, r, http.StatusOK)
	if got := gw("/echo/mfa", r.str(t, "access_token")); got != http.StatusOK {
		t.Errorf("mfa route with a refreshed token: %d", got)
	}

	// A recovery code works once, typed loosely.
	typed := strings.ToUpper(strings.ReplaceAll(codes[0], "-", ""))
	r = mfaGrant(t, s, "mfa_token", mfaToken(t, s, alice.email), "recovery_code", typed)
	wantStatus(t, r, http.StatusOK)
	if amr := amrOf(t, r.str(t, "access_token")); !slices.Contains(amr, "mfa") || slices.Contains(amr, "otp") {
		t.Fatalf("recovery amr %v", amr)
	}
	checkErrorResponse(t, mfaGrant(t, s, "mfa_token", mfaToken(t, s, alice.email), "recovery_code", codes[0]), http.StatusBadRequest, "invalid_grant")
	r = alice.call(t, "GET", "/auth/v1/mfa", "")
	if st := r.json(t); st["recovery_codes_remaining"] != float64(9) {
		t.Fatalf("after one recovery code: %s", r.body)
	}

	// Disabling needs a fresh factor; afterwards sign-in is one step again.
	checkErrorResponse(t, alice.call(t, "DELETE", "/auth/v1/mfa/totp", "{}"), http.StatusBadRequest, "")
	wantStatus(t, alice.call(t, "DELETE", "/auth/v1/mfa/totp", jsonBody("recovery_code", codes[1])), http.StatusNoContent)
	r = s.login(t, alice.email, pw)
	wantStatus(t, r, http.StatusOK)
	r = alice.call(t, "GET", "/auth/v1/mfa", "")
	if st := r.json(t); st["totp"] != false || st["recovery_codes_remaining"] != float64(0) {
		t.Fatalf("status after disabling: %s", r.body)
	}
}

// mfaTables are every table a second-factor request could write.
var mfaTables = []string{"users", "sessions", "refresh_tokens", "user_secrets", "recovery_codes", "one_time_codes", "throttles", "events", "webauthn_credentials"}

func mfaSnapshot(t testing.TB, v *dbView) map[string][]string {
	t.Helper()
	return v.snapshot(t, mfaTables...)
}

// unchanged fails if any table outside allowed differs between the snapshots.
func unchanged(t testing.TB, name string, before, after map[string][]string, allowed ...string) {
	t.Helper()
	for _, tbl := range mfaTables {
		if !slices.Contains(allowed, tbl) && !slices.Equal(before[tbl], after[tbl]) {
			t.Errorf("%s: table %s changed (%d → %d rows)", name, tbl, len(before[tbl]), len(after[tbl]))
		}
	}
}

// TestMFABadInput refuses every bad second-step and enrolment request with its
// exact status and without changing state. The server's clock is the test's,
// so expiry is exact and step boundaries cannot flake.
func TestMFABadInput(t *testing.T) {
	la := startLiveApp(t, mfaLimits+"identity:\n  mfa: {totp_issuer: Notes Test, user_failures: 6}\n", liveOptions{})
	s := la.server
	clk := la.clk
	view := openDBView(t, s.db)
	// Start on a step boundary so that "now" and "now + n steps" are exact.
	clk.Set(clk.Now().Truncate(30 * time.Second).Add(30 * time.Second))

	r := s.signup(t, "carol@example.com", pw)
	wantStatus(t, r, http.StatusCreated)
	carol := &mfaClient{s: s, email: "carol@example.com", access: r.str(t, "access_token")}
	r = s.signup(t, "dave@example.com", pw)
	wantStatus(t, r, http.StatusCreated)
	dave := &mfaClient{s: s, email: "dave@example.com", access: r.str(t, "access_token")}

	// Confirm without enrolment, and a malformed confirm.
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"confirm without enrolment", jsonBody("code", "123456"), http.StatusConflict},
		{"confirm without code", `{}`, http.StatusBadRequest},
		{"confirm with a 5-digit code", jsonBody("code", "12345"), http.StatusBadRequest},
		{"confirm with letters", jsonBody("code", "12a456"), http.StatusBadRequest},
		{"confirm with a number", `{"code":123456}`, http.StatusBadRequest},
		{"confirm with an unknown field", `{"code":"123456","secret":"x"}`, http.StatusBadRequest},
	} {
		before := mfaSnapshot(t, view)
		checkErrorResponse(t, dave.call(t, "POST", "/auth/v1/mfa/totp/confirm", tc.body), tc.status, "")
		unchanged(t, tc.name, before, mfaSnapshot(t, view))
	}
	before := mfaSnapshot(t, view)
	checkErrorResponse(t, dave.call(t, "POST", "/auth/v1/mfa/totp", `{"x":1}`), http.StatusBadRequest, "")
	checkErrorResponse(t, dave.call(t, "DELETE", "/auth/v1/mfa/totp", jsonBody("code", "123456")), http.StatusConflict, "")
	checkErrorResponse(t, do(t, s.c, "POST", s.issuer+"/auth/v1/mfa/totp", "", ""), http.StatusUnauthorized, "")
	unchanged(t, "enrolment bad input", before, mfaSnapshot(t, view))

	secret, codes := carol.enrol(t, clk.Now())
	before = mfaSnapshot(t, view)
	checkErrorResponse(t, carol.call(t, "POST", "/auth/v1/mfa/totp", ""), http.StatusConflict, "")
	unchanged(t, "enrol twice", before, mfaSnapshot(t, view))
	clk.Advance(30 * time.Second)
	code := func(steps int) string { return totpCode(t, secret, clk.Now().Add(time.Duration(steps)*30*time.Second)) }

	// The second step: each case with its answer and what it may write.
	counted := []string{"one_time_codes", "throttles", "events"} // a well-formed wrong factor is counted
	for _, tc := range []struct {
		name    string
		kv      []string // after grant_type and mfa_token
		status  int
		oauth   string
		allowed []string
	}{
		{"wrong code", []string{"otp", wrongCode(code(0), code(-1), code(1))}, 400, "invalid_grant", counted},
		{"expired code (two steps old)", []string{"otp", code(-2)}, 400, "invalid_grant", counted},
		{"unknown recovery code", []string{"recovery_code", "aaaa-bbbb-cccc-dddd"}, 400, "invalid_grant", counted},
		{"no factor", nil, 400, "invalid_request", nil},
		{"two factors", []string{"otp", code(0), "recovery_code", codes[0]}, 400, "invalid_request", nil},
		{"otp and webauthn", []string{"otp", code(0), "webauthn_assertion", "{}"}, 400, "invalid_request", nil},
		{"webauthn without passkeys enabled", []string{"webauthn_assertion", "{}"}, 400, "invalid_request", nil},
		{"5-digit otp", []string{"otp", "12345"}, 400, "invalid_request", nil},
		{"otp with letters", []string{"otp", "12345a"}, 400, "invalid_request", nil},
		{"malformed recovery code", []string{"recovery_code", "not a code"}, 400, "invalid_request", nil},
	} {
		tok := mfaToken(t, s, carol.email)
		before := mfaSnapshot(t, view)
		checkErrorResponse(t, mfaGrant(t, s, append([]string{"mfa_token", tok}, tc.kv...)...), tc.status, tc.oauth)
		unchanged(t, tc.name, before, mfaSnapshot(t, view), tc.allowed...)
	}
	for _, tc := range []struct {
		name string
		body string
		ct   string
		want string
	}{
		{"missing mfa_token", form("grant_type", mfaGrantType, "otp", code(0)), formType, "invalid_request"},
		{"unknown mfa_token", form("grant_type", mfaGrantType, "mfa_token", strings.Repeat("A", 43), "otp", code(0)), formType, "invalid_grant"},
		{"garbage mfa_token", form("grant_type", mfaGrantType, "mfa_token", "../../x", "otp", code(0)), formType, "invalid_grant"},
		{"repeated otp", form("grant_type", mfaGrantType, "mfa_token", "x") + "&otp=1&otp=2", formType, "invalid_request"},
		{"otp as a JSON number", `{"grant_type":"` + mfaGrantType + `","mfa_token":"x","otp":123456}`, jsonType, "invalid_request"},
	} {
		before := mfaSnapshot(t, view)
		checkErrorResponse(t, do(t, s.c, "POST", s.issuer+"/auth/v1/token", tc.ct, tc.body), http.StatusBadRequest, tc.want)
		unchanged(t, tc.name, before, mfaSnapshot(t, view), "events")
	}

	// A replayed code: accepted once, refused the second time in its step.
	c0 := code(0)
	wantStatus(t, mfaGrant(t, s, "mfa_token", mfaToken(t, s, carol.email), "otp", c0), http.StatusOK)
	tok := mfaToken(t, s, carol.email)
	before = mfaSnapshot(t, view)
	checkErrorResponse(t, mfaGrant(t, s, "mfa_token", tok, "otp", c0), http.StatusBadRequest, "invalid_grant")
	unchanged(t, "replayed code", before, mfaSnapshot(t, view), counted...)
	clk.Advance(30 * time.Second)
	// A success forgives the failures so far (they were the owner's typos).
	wantStatus(t, mfaGrant(t, s, "mfa_token", mfaToken(t, s, carol.email), "otp", code(0)), http.StatusOK)
	clk.Advance(30 * time.Second)

	// An expired mfa_token, even with the right code.
	tok = mfaToken(t, s, carol.email)
	clk.Advance(5*time.Minute + time.Second)
	before = mfaSnapshot(t, view)
	checkErrorResponse(t, mfaGrant(t, s, "mfa_token", tok, "otp", code(0)), http.StatusBadRequest, "invalid_grant")
	unchanged(t, "expired mfa_token", before, mfaSnapshot(t, view), "events")

	// An mfa_token exhausted by 5 wrong codes refuses the right one, which
	// stays unspent.
	tok = mfaToken(t, s, carol.email)
	for range 5 {
		checkErrorResponse(t, mfaGrant(t, s, "mfa_token", tok, "otp", wrongCode(code(0), code(-1), code(1))), http.StatusBadRequest, "invalid_grant")
	}
	before = mfaSnapshot(t, view)
	checkErrorResponse(t, mfaGrant(t, s, "mfa_token", tok, "otp", code(0)), http.StatusBadRequest, "invalid_grant")
	unchanged(t, "exhausted mfa_token", before, mfaSnapshot(t, view), "events")
	r = mfaGrant(t, s, "mfa_token", mfaToken(t, s, carol.email), "otp", code(0))
	wantStatus(t, r, http.StatusOK)
	carol.access = r.str(t, "access_token")
	clk.Advance(30 * time.Second)

	// Disable and regenerate without a fresh factor.
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		allowed                  []string
	}{
		{"disable without a factor", "DELETE", "/auth/v1/mfa/totp", `{}`, 400, nil},
		{"disable without a body", "DELETE", "/auth/v1/mfa/totp", "", 415, nil},
		{"disable with both factors", "DELETE", "/auth/v1/mfa/totp", jsonBody("code", code(0), "recovery_code", codes[0]), 400, nil},
		{"disable with a wrong code", "DELETE", "/auth/v1/mfa/totp", jsonBody("code", wrongCode(code(0), code(-1), code(1))), 400, []string{"throttles", "events"}},
		{"disable with a used code", "DELETE", "/auth/v1/mfa/totp", jsonBody("code", code(-1)), 400, []string{"throttles", "events"}},
		{"regenerate without a code", "POST", "/auth/v1/mfa/recovery-codes", `{}`, 400, nil},
		{"regenerate with a recovery code", "POST", "/auth/v1/mfa/recovery-codes", jsonBody("recovery_code", codes[0]), 400, nil},
	} {
		before := mfaSnapshot(t, view)
		checkErrorResponse(t, carol.call(t, tc.method, tc.path, tc.body), tc.status, "")
		unchanged(t, tc.name, before, mfaSnapshot(t, view), tc.allowed...)
	}
	// Regeneration with a fresh code replaces every recovery code.
	r = carol.call(t, "POST", "/auth/v1/mfa/recovery-codes", jsonBody("code", code(0)))
	wantStatus(t, r, http.StatusOK)
	fresh := r.json(t)["recovery_codes"].([]any)
	checkErrorResponse(t, mfaGrant(t, s, "mfa_token", mfaToken(t, s, carol.email), "recovery_code", codes[2]), http.StatusBadRequest, "invalid_grant")
	wantStatus(t, mfaGrant(t, s, "mfa_token", mfaToken(t, s, carol.email), "recovery_code", fresh[0].(string)), http.StatusOK)
	clk.Advance(30 * time.Second)

	// New mfa_tokens buy no new guesses: after 6 failures the user is
	// throttled, even with the right code, until the window ends.
	for range 6 {
		checkErrorResponse(t, mfaGrant(t, s, "mfa_token", mfaToken(t, s, carol.email), "otp", wrongCode(code(0), code(-1), code(1))), http.StatusBadRequest, "invalid_grant")
	}
	r = mfaGrant(t, s, "mfa_token", mfaToken(t, s, carol.email), "otp", code(0))
	checkErrorResponse(t, r, http.StatusTooManyRequests, "invalid_grant")
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}
	clk.Advance(15*time.Minute + time.Second)
	wantStatus(t, mfaGrant(t, s, "mfa_token", mfaToken(t, s, carol.email), "otp", code(0)), http.StatusOK)

	// At rest: the secret sealed, recovery codes and mfa_tokens only hashed.
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	tok = mfaToken(t, s, carol.email)
	dump := strings.Join(slices.Concat(slices.Collect(maps.Values(mfaSnapshot(t, view)))...), "\n")
	for _, plain := range []string{secret, tok, fresh[1].(string), strings.ReplaceAll(fresh[1].(string), "-", "")} {
		if strings.Contains(dump, plain) {
			t.Errorf("a secret is stored in plaintext")
		}
	}
	var sealed []byte
	if err := view.db.QueryRow(`SELECT sealed FROM user_secrets WHERE kind = 'totp' AND purpose = 'totp_secret'`).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if len(sealed) < len(raw) || bytes.Contains(sealed, raw) {
		t.Errorf("the TOTP secret is not sealed")
	}

	// No code, secret or token ever reached the log.
	logs := s.stderr.String()
	for _, secretish := range append([]string{secret, c0}, codes...) {
		if strings.Contains(logs, secretish) {
			t.Errorf("the log carries a secret")
		}
	}
}

// wrongCode is a 6-digit code none of valid is.
func wrongCode(valid ...string) string {
	for i := 0; ; i++ {
		c := fmt.Sprintf("%06d", (i*7919)%1000000)
		if !slices.Contains(valid, c) {
			return c
		}
	}
}
