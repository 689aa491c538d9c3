package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/oauth2-proxy/mockoidc"
)

// appRedirect is the app's registered redirect URI (a private-use scheme,
// RFC 8252 §7.1); loopbackApp is registered without a port, so any port matches.
const (
	appRedirect = "com.example.app:/oauth2redirect"
	loopbackApp = "http://127.0.0.1/cb"
)

// socialServer is Gatehouse with a real OIDC provider (mockoidc: discovery,
// JWKS, authorize, token with PKCE, RS256 ID tokens) on loopback, a second
// provider that is down, and a browser that follows redirects by hand.
type socialServer struct {
	*liveApp
	op      *mockoidc.MockOIDC
	browser *http.Client
	view    *dbView
}

func startSocial(t *testing.T) *socialServer {
	t.Helper()
	op, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Like a careful provider: S256 only.
	op.CodeChallengeMethodsSupported = []string{"S256"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = op.Shutdown() })
	secret := filepath.Join(t.TempDir(), "client_secret")
	if err := os.WriteFile(secret, []byte(op.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	down := freePort(t) // nothing listens here: discovery keeps failing
	extra := fmt.Sprintf(`identity:
  oidc:
    providers:
      - name: mock
        issuer: %s
        client_id: %s
        client_secret_file: %s
        redirect_uris: [%q, %q]
      - name: down
        issuer: http://%s
        client_id: x
        redirect_uris: [%q]
`, op.Issuer(), op.ClientID, secret, appRedirect, loopbackApp, down, appRedirect)
	s := startLiveApp(t, extra, liveOptions{})
	tr := s.c.Transport
	browser := &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ss := &socialServer{liveApp: s, op: op, browser: browser, view: openDBView(t, s.db)}
	// Discovery runs in the background: wait until the provider answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := ss.authorize(t, "mock", url.Values{"redirect_uri": {appRedirect}, "state": {"probe"}, "code_challenge": {challenge(newVerifier(t))}, "code_challenge_method": {"S256"}})
		if r.status == http.StatusFound {
			break
		}
		if r.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("provider not discovered: %d %s", r.status, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ss
}

func newVerifier(t testing.TB) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func challenge(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func (s *socialServer) authorize(t testing.TB, provider string, q url.Values) *response {
	t.Helper()
	return do(t, s.browser, "GET", s.issuer+"/auth/v1/oidc/"+provider+"/authorize?"+q.Encode(), "", "")
}

func (s *socialServer) follow(t testing.TB, u string) *response {
	t.Helper()
	return do(t, s.browser, "GET", u, "", "")
}

func location(t testing.TB, r *response) *url.URL {
	t.Helper()
	if r.status != http.StatusFound {
		t.Fatalf("status %d, want 302: %s", r.status, r.body)
	}
	u, err := url.Parse(r.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// flow is one sign-in as far as the app's redirect.
type flow struct {
	verifier, state string
	provider        *url.URL // Gatehouse → provider
	callback        *url.URL // provider → Gatehouse
	app             *url.URL // Gatehouse → app
}

// toProvider starts a sign-in and returns the provider's authorize URL.
func (s *socialServer) toProvider(t testing.TB, redirectURI string) *flow {
	t.Helper()
	f := &flow{verifier: newVerifier(t), state: "app-state-" + newVerifier(t)[:8]}
	r := s.authorize(t, "mock", url.Values{"redirect_uri": {redirectURI}, "state": {f.state},
		"code_challenge": {challenge(f.verifier)}, "code_challenge_method": {"S256"}, "response_type": {"code"}})
	f.provider = location(t, r)
	return f
}

// signIn runs the browser part for the provider user u and returns the flow
// with the app's redirect.
func (s *socialServer) signIn(t testing.TB, u *mockoidc.MockUser, redirectURI string) *flow {
	t.Helper()
	f := s.toProvider(t, redirectURI)
	s.op.QueueUser(u)
	f.callback = location(t, s.follow(t, f.provider.String()))
	f.app = location(t, s.follow(t, f.callback.String()))
	return f
}

func (s *socialServer) redeem(t testing.TB, code, redirectURI, verifier string) *response {
	t.Helper()
	return do(t, s.c, "POST", s.issuer+"/auth/v1/token", formType,
		form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI, "code_verifier", verifier))
}

func (s *socialServer) count(t testing.TB, query string) int {
	t.Helper()
	var n int
	if err := s.view.db.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// counts are the rows a sign-in can create. states and codes count used
// rows too: each sign-in that reaches the provider writes one state.
type counts struct{ users, identities, sessions, states, codes int }

func (s *socialServer) counts(t testing.TB) counts {
	t.Helper()
	return counts{
		users:      s.count(t, "SELECT COUNT(*) FROM users"),
		identities: s.count(t, "SELECT COUNT(*) FROM user_identities"),
		sessions:   s.count(t, "SELECT COUNT(*) FROM sessions"),
		states:     s.count(t, "SELECT COUNT(*) FROM one_time_codes WHERE kind = 'oidc_state'"),
		codes:      s.count(t, "SELECT COUNT(*) FROM one_time_codes WHERE kind = 'oidc_code'"),
	}
}

func wantCounts(t testing.TB, got, want counts) {
	t.Helper()
	if got != want {
		t.Fatalf("rows %+v, want %+v", got, want)
	}
}

func wantSocialProblem(t testing.TB, r *response, status int, field string) {
	t.Helper()
	wantStatus(t, r, status)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("content type %q, want problem+json: %s", ct, r.body)
	}
	if r.header.Get("Location") != "" {
		t.Fatalf("an error that must not redirect has Location %q", r.header.Get("Location"))
	}
	if field != "" && !strings.Contains(string(r.body), `"field":"`+field+`"`) {
		t.Fatalf("problem does not name %s: %s", field, r.body)
	}
}

// wantAppError: the browser is sent to the app's redirect URI with error and
// the app's state (RFC 6749 §4.1.2.1) and Gatehouse's iss (RFC 9207).
func wantAppError(t testing.TB, s *socialServer, r *response, redirectURI, code, state string) {
	t.Helper()
	u := location(t, r)
	base := *u
	base.RawQuery = ""
	q := u.Query()
	if base.String() != redirectURI || q.Get("error") != code || q.Get("state") != state || q.Get("iss") != s.issuer || q.Get("code") != "" {
		t.Fatalf("redirect %s, want %s with error=%s state=%q", u, redirectURI, code, state)
	}
}

// wantFailReason: the newest social_login_failed event gives reason.
func (s *socialServer) wantFailReason(t testing.TB, reason string) {
	t.Helper()
	var detail string
	if err := s.view.db.QueryRow("SELECT detail FROM events WHERE type = 'social_login_failed' ORDER BY rowid DESC LIMIT 1").Scan(&detail); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(detail, `"reason":"`+reason+`"`) {
		t.Fatalf("last social_login_failed detail %s, want reason %s", detail, reason)
	}
}

func amr(t testing.TB, access string) []string {
	t.Helper()
	_, c := jwtParts(t, access)
	var out []string
	for _, v := range c["amr"].([]any) {
		out = append(out, v.(string))
	}
	return out
}

func subject(t testing.TB, access string) string {
	t.Helper()
	_, c := jwtParts(t, access)
	return c["sub"].(string)
}

// TestSocialLogin runs social login end to end over HTTPS against a real
// OIDC provider on loopback: account creation, a second sign-in, linking to
// a password account, the takeover guard, and every bad input with its exact
// status and no state change. Subtests share one server and run in order.
func TestSocialLogin(t *testing.T) {
	s := startSocial(t)
	var newUserID string

	t.Run("new user via provider", func(t *testing.T) {
		before := s.counts(t)
		f := s.signIn(t, &mockoidc.MockUser{Subject: "sub-new", Email: "new@example.com", EmailVerified: true}, appRedirect)
		// Gatehouse ran the provider leg with its own state, nonce and S256.
		pq := f.provider.Query()
		if pq.Get("code_challenge_method") != "S256" || pq.Get("nonce") == "" || pq.Get("state") == f.state ||
			pq.Get("redirect_uri") != s.issuer+"/auth/v1/oidc/mock/callback" || pq.Get("code_challenge") == challenge(f.verifier) {
			t.Fatalf("provider request %s", f.provider)
		}
		q := f.app.Query()
		if !strings.HasPrefix(f.app.String(), appRedirect+"?") || q.Get("state") != f.state || q.Get("iss") != s.issuer || len(q.Get("code")) != 43 {
			t.Fatalf("app redirect %s", f.app)
		}
		r := s.redeem(t, q.Get("code"), appRedirect, f.verifier)
		wantStatus(t, r, http.StatusOK)
		if got := amr(t, r.str(t, "access_token")); !slices.Equal(got, []string{"fed"}) {
			t.Fatalf("amr %v, want [fed]", got)
		}
		if r.str(t, "refresh_token") == "" {
			t.Fatal("no refresh token")
		}
		newUserID = subject(t, r.str(t, "access_token"))
		after := s.counts(t)
		wantCounts(t, after, counts{before.users + 1, before.identities + 1, before.sessions + 1, before.states + 1, before.codes + 1})
		me := s.get(t, "/auth/v1/user", r.str(t, "access_token"))
		wantStatus(t, me, http.StatusOK)
		if !strings.Contains(string(me.body), `"new@example.com"`) {
			t.Fatalf("user: %s", me.body)
		}
	})

	t.Run("second login is the same user", func(t *testing.T) {
		before := s.counts(t)
		f := s.signIn(t, &mockoidc.MockUser{Subject: "sub-new", Email: "new@example.com", EmailVerified: true}, appRedirect)
		r := s.redeem(t, f.app.Query().Get("code"), appRedirect, f.verifier)
		wantStatus(t, r, http.StatusOK)
		if got := subject(t, r.str(t, "access_token")); got != newUserID {
			t.Fatalf("second sign-in is user %s, want %s", got, newUserID)
		}
		after := s.counts(t)
		wantCounts(t, after, counts{before.users, before.identities, before.sessions + 1, before.states + 1, before.codes + 1})
	})

	t.Run("loopback redirect on any port", func(t *testing.T) {
		ru := "http://127.0.0.1:51004/cb"
		f := s.signIn(t, &mockoidc.MockUser{Subject: "sub-new", Email: "new@example.com", EmailVerified: true}, ru)
		if !strings.HasPrefix(f.app.String(), ru+"?") {
			t.Fatalf("app redirect %s", f.app)
		}
		wantStatus(t, s.redeem(t, f.app.Query().Get("code"), ru, f.verifier), http.StatusOK)
	})

	t.Run("links to a verified password account", func(t *testing.T) {
		wantStatus(t, s.signup(t, "carol@example.com", pw), http.StatusCreated)
		u, err := s.app.accounts.UserByEmail(t.Context(), "carol@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.app.db.SetEmailVerified(t.Context(), u.ID, true, s.clk.Now()); err != nil {
			t.Fatal(err)
		}
		before := s.counts(t)
		f := s.signIn(t, &mockoidc.MockUser{Subject: "sub-carol", Email: "Carol@Example.com", EmailVerified: true}, appRedirect)
		r := s.redeem(t, f.app.Query().Get("code"), appRedirect, f.verifier)
		wantStatus(t, r, http.StatusOK)
		if got := subject(t, r.str(t, "access_token")); got != u.ID {
			t.Fatalf("linked sign-in is user %s, want %s", got, u.ID)
		}
		after := s.counts(t)
		wantCounts(t, after, counts{before.users, before.identities + 1, before.sessions + 1, before.states + 1, before.codes + 1})
		// The password still works: the account's own address was proven.
		wantStatus(t, s.login(t, "carol@example.com", pw), http.StatusOK)
	})

	t.Run("linking secures an unverified password account", func(t *testing.T) {
		// Someone signed up with dave's address and a password but never
		// proved the address. Dave signs in with the provider, which has
		// verified it: the link is made, the unproven password removed and
		// its sessions ended (pre-account takeover).
		r := s.signup(t, "dave@example.com", pw)
		wantStatus(t, r, http.StatusCreated)
		squatter := r.str(t, "refresh_token")
		f := s.signIn(t, &mockoidc.MockUser{Subject: "sub-dave", Email: "dave@example.com", EmailVerified: true}, appRedirect)
		wantStatus(t, s.redeem(t, f.app.Query().Get("code"), appRedirect, f.verifier), http.StatusOK)
		wantStatus(t, s.login(t, "dave@example.com", pw), http.StatusBadRequest)
		wantStatus(t, s.refresh(t, squatter), http.StatusBadRequest)
	})

	t.Run("a second factor is still asked for", func(t *testing.T) {
		// Social sign-in is one factor ("fed"): an account with TOTP gets
		// mfa_required from the token endpoint, like after a password.
		f := s.signIn(t, &mockoidc.MockUser{Subject: "sub-frank", Email: "frank@example.com", EmailVerified: true}, appRedirect)
		r := s.redeem(t, f.app.Query().Get("code"), appRedirect, f.verifier)
		wantStatus(t, r, http.StatusOK)
		access := r.str(t, "access_token")
		r = do(t, s.c, "POST", s.issuer+"/auth/v1/mfa/totp", "", "", "Authorization", "Bearer "+access)
		wantStatus(t, r, http.StatusOK)
		secret := r.str(t, "secret")
		r = do(t, s.c, "POST", s.issuer+"/auth/v1/mfa/totp/confirm", jsonType, jsonBody("code", totpCode(t, secret, s.clk.Now())), "Authorization", "Bearer "+access)
		wantStatus(t, r, http.StatusOK)

		f = s.signIn(t, &mockoidc.MockUser{Subject: "sub-frank", Email: "frank@example.com", EmailVerified: true}, appRedirect)
		m := wantMFARequired(t, s.redeem(t, f.app.Query().Get("code"), appRedirect, f.verifier))
		s.clk.Advance(30 * time.Second) // the next TOTP step: the confirmation's code is spent
		r = mfaGrant(t, s.server, "mfa_token", m["mfa_token"].(string), "otp", totpCode(t, secret, s.clk.Now()))
		wantStatus(t, r, http.StatusOK)
		if got := amr(t, r.str(t, "access_token")); !slices.Contains(got, "fed") || !slices.Contains(got, "otp") {
			t.Fatalf("amr %v, want fed and otp", got)
		}
	})

	t.Run("unverified provider email cannot take over an account", func(t *testing.T) {
		wantStatus(t, s.signup(t, "bob@example.com", pw), http.StatusCreated)
		before := s.counts(t)
		f := s.toProvider(t, appRedirect)
		s.op.QueueUser(&mockoidc.MockUser{Subject: "sub-mallory", Email: "bob@example.com", EmailVerified: false})
		cb := location(t, s.follow(t, f.provider.String()))
		r := s.follow(t, cb.String())
		wantAppError(t, s, r, appRedirect, "access_denied", f.state)
		s.wantFailReason(t, "unverified_email_conflict")
		wantCounts(t, s.counts(t), counts{before.users, before.identities, before.sessions, before.states + 1, before.codes})
		if n := s.count(t, "SELECT COUNT(*) FROM user_identities WHERE subject = 'sub-mallory'"); n != 0 {
			t.Fatalf("%d links for the unverified sign-in", n)
		}
		wantStatus(t, s.login(t, "bob@example.com", pw), http.StatusOK)
	})

	t.Run("authorize refuses", func(t *testing.T) {
		good := func() url.Values {
			return url.Values{"redirect_uri": {appRedirect}, "state": {"st"}, "code_challenge": {challenge(newVerifier(t))}, "code_challenge_method": {"S256"}}
		}
		with := func(k, v string) url.Values { q := good(); q.Set(k, v); return q }
		without := func(k string) url.Values { q := good(); q.Del(k); return q }
		for _, tc := range []struct {
			name     string
			provider string
			q        url.Values
			status   int    // a problem, no redirect
			field    string // the problem names it
			appError string // else: redirect to the app with this error
			appState string
		}{
			{"unknown provider", "nope", good(), http.StatusNotFound, "", "", ""},
			{"provider not discovered", "down", good(), http.StatusServiceUnavailable, "", "", ""},
			{"mismatched redirect_uri", "mock", with("redirect_uri", "com.example.app:/other"), http.StatusBadRequest, "redirect_uri", "", ""},
			{"redirect_uri with extra path", "mock", with("redirect_uri", appRedirect+"/x"), http.StatusBadRequest, "redirect_uri", "", ""},
			{"redirect_uri attacker https", "mock", with("redirect_uri", "https://evil.example/cb"), http.StatusBadRequest, "redirect_uri", "", ""},
			{"loopback redirect other path", "mock", with("redirect_uri", "http://127.0.0.1:8080/other"), http.StatusBadRequest, "redirect_uri", "", ""},
			{"loopback redirect localhost", "mock", with("redirect_uri", "http://localhost:8080/cb"), http.StatusBadRequest, "redirect_uri", "", ""},
			{"missing redirect_uri", "mock", without("redirect_uri"), http.StatusBadRequest, "redirect_uri", "", ""},
			{"repeated parameter", "mock", func() url.Values { q := good(); q.Add("state", "x"); return q }(), http.StatusBadRequest, "state", "", ""},
			{"plain PKCE", "mock", with("code_challenge_method", "plain"), 0, "", "invalid_request", "st"},
			{"missing challenge method", "mock", without("code_challenge_method"), 0, "", "invalid_request", "st"},
			{"missing challenge", "mock", without("code_challenge"), 0, "", "invalid_request", "st"},
			{"short challenge", "mock", with("code_challenge", "abc"), 0, "", "invalid_request", "st"},
			{"challenge not base64url", "mock", with("code_challenge", strings.Repeat("~", 43)), 0, "", "invalid_request", "st"},
			{"missing state", "mock", without("state"), 0, "", "invalid_request", ""},
			{"oversized state", "mock", with("state", strings.Repeat("s", 513)), 0, "", "invalid_request", ""},
			{"response_type token", "mock", with("response_type", "token"), 0, "", "unsupported_response_type", "st"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := s.counts(t)
				r := s.authorize(t, tc.provider, tc.q)
				if tc.status != 0 {
					wantSocialProblem(t, r, tc.status, tc.field)
				} else {
					wantAppError(t, s, r, appRedirect, tc.appError, tc.appState)
				}
				wantCounts(t, s.counts(t), before)
			})
		}
		t.Run("HEAD writes nothing", func(t *testing.T) {
			before := s.counts(t)
			r := do(t, s.browser, "HEAD", s.issuer+"/auth/v1/oidc/mock/authorize?"+good().Encode(), "", "")
			wantStatus(t, r, http.StatusMethodNotAllowed)
			wantCounts(t, s.counts(t), before)
		})
	})

	t.Run("callback refuses", func(t *testing.T) {
		// A state Gatehouse never issued, one altered in transit, one used
		// already, and one from another provider's callback: 400, no redirect.
		f := s.toProvider(t, appRedirect)
		s.op.QueueUser(&mockoidc.MockUser{Subject: "sub-new", Email: "new@example.com", EmailVerified: true})
		cb := location(t, s.follow(t, f.provider.String()))
		tampered := *cb
		q := cb.Query()
		st := q.Get("state")
		q.Set("state", st[:len(st)-1]+map[bool]string{true: "A", false: "B"}[st[len(st)-1] != 'A'])
		tampered.RawQuery = q.Encode()
		unknown := *cb
		q = cb.Query()
		q.Set("state", newVerifier(t))
		unknown.RawQuery = q.Encode()
		missing := *cb
		q = cb.Query()
		q.Del("state")
		missing.RawQuery = q.Encode()
		for _, tc := range []struct{ name, url string }{
			{"tampered state", tampered.String()},
			{"unknown state", unknown.String()},
			{"missing state", missing.String()},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := s.counts(t)
				wantSocialProblem(t, s.follow(t, tc.url), http.StatusBadRequest, "state")
				wantCounts(t, s.counts(t), before)
			})
		}
		// The genuine state still works once; replayed, it is refused.
		before := s.counts(t)
		app := location(t, s.follow(t, cb.String()))
		if app.Query().Get("state") != f.state {
			t.Fatalf("app redirect %s", app)
		}
		if after := s.counts(t); after.codes != before.codes+1 || after.sessions != before.sessions || after.states != before.states {
			t.Fatalf("rows %+v after the genuine callback, before %+v", after, before)
		}
		t.Run("replayed state", func(t *testing.T) {
			before := s.counts(t)
			wantSocialProblem(t, s.follow(t, cb.String()), http.StatusBadRequest, "state")
			wantCounts(t, s.counts(t), before)
		})
		t.Run("state through another provider", func(t *testing.T) {
			f := s.toProvider(t, appRedirect)
			other := s.issuer + "/auth/v1/oidc/down/callback?" + url.Values{"state": {f.provider.Query().Get("state")}, "code": {"x"}}.Encode()
			before := s.counts(t)
			wantSocialProblem(t, s.follow(t, other), http.StatusBadRequest, "state")
			wantCounts(t, s.counts(t), before)
		})
		t.Run("provider error", func(t *testing.T) {
			f := s.toProvider(t, appRedirect)
			u := s.issuer + "/auth/v1/oidc/mock/callback?" + url.Values{"state": {f.provider.Query().Get("state")}, "error": {"access_denied"}, "error_description": {"<script>"}}.Encode()
			before := s.counts(t)
			wantAppError(t, s, s.follow(t, u), appRedirect, "access_denied", f.state)
			s.wantFailReason(t, "provider_error")
			wantCounts(t, s.counts(t), before)
		})
		t.Run("issuer mix-up", func(t *testing.T) {
			f := s.toProvider(t, appRedirect)
			u := s.issuer + "/auth/v1/oidc/mock/callback?" + url.Values{"state": {f.provider.Query().Get("state")}, "code": {"x"}, "iss": {"https://evil.example"}}.Encode()
			before := s.counts(t)
			wantAppError(t, s, s.follow(t, u), appRedirect, "access_denied", f.state)
			s.wantFailReason(t, "issuer_mismatch")
			wantCounts(t, s.counts(t), before)
		})
		t.Run("expired ID token", func(t *testing.T) {
			// The provider's clock is 20 minutes behind: its ID token
			// (10 minute lifetime) has expired on arrival.
			s.op.FastForward(-20 * time.Minute)
			defer s.op.FastForward(20 * time.Minute)
			f := s.toProvider(t, appRedirect)
			s.op.QueueUser(&mockoidc.MockUser{Subject: "sub-late", Email: "late@example.com", EmailVerified: true})
			cb := location(t, s.follow(t, f.provider.String()))
			before := s.counts(t)
			wantAppError(t, s, s.follow(t, cb.String()), appRedirect, "access_denied", f.state)
			s.wantFailReason(t, "id_token_invalid")
			wantCounts(t, s.counts(t), before)
		})
		t.Run("locked account", func(t *testing.T) {
			r := s.signup(t, "erin@example.com", pw)
			wantStatus(t, r, http.StatusCreated)
			u, err := s.app.accounts.UserByEmail(t.Context(), "erin@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if err := s.app.db.SetEmailVerified(t.Context(), u.ID, true, s.clk.Now()); err != nil {
				t.Fatal(err)
			}
			if err := s.app.accounts.Lock(t.Context(), u.ID, identity.Meta{RequestID: "test"}); err != nil {
				t.Fatal(err)
			}
			f := s.toProvider(t, appRedirect)
			s.op.QueueUser(&mockoidc.MockUser{Subject: "sub-erin", Email: "erin@example.com", EmailVerified: true})
			cb := location(t, s.follow(t, f.provider.String()))
			before := s.counts(t)
			wantAppError(t, s, s.follow(t, cb.String()), appRedirect, "access_denied", f.state)
			s.wantFailReason(t, "locked")
			after := s.counts(t)
			if after.sessions != before.sessions || after.codes != before.codes || after.users != before.users {
				t.Fatalf("rows %+v after a locked sign-in, before %+v", after, before)
			}
		})
	})

	t.Run("token endpoint refuses", func(t *testing.T) {
		user := &mockoidc.MockUser{Subject: "sub-new", Email: "new@example.com", EmailVerified: true}
		fresh := func() (code, verifier string) {
			f := s.signIn(t, user, appRedirect)
			return f.app.Query().Get("code"), f.verifier
		}
		wantGrant := func(t *testing.T, r *response, status int, code string) {
			t.Helper()
			wantStatus(t, r, status)
			if got := r.str(t, "error"); got != code {
				t.Fatalf("error %q, want %q: %s", got, code, r.body)
			}
		}
		t.Run("mismatched redirect_uri spends the code", func(t *testing.T) {
			code, v := fresh()
			before := s.counts(t)
			wantGrant(t, s.redeem(t, code, "com.example.app:/other", v), http.StatusBadRequest, "invalid_grant")
			s.wantFailReason(t, "redirect_uri_mismatch")
			wantGrant(t, s.redeem(t, code, appRedirect, v), http.StatusBadRequest, "invalid_grant")
			wantCounts(t, s.counts(t), before)
		})
		t.Run("wrong code_verifier spends the code", func(t *testing.T) {
			code, v := fresh()
			before := s.counts(t)
			wantGrant(t, s.redeem(t, code, appRedirect, newVerifier(t)), http.StatusBadRequest, "invalid_grant")
			s.wantFailReason(t, "code_verifier_mismatch")
			wantGrant(t, s.redeem(t, code, appRedirect, v), http.StatusBadRequest, "invalid_grant")
			wantCounts(t, s.counts(t), before)
		})
		t.Run("replayed code", func(t *testing.T) {
			code, v := fresh()
			wantStatus(t, s.redeem(t, code, appRedirect, v), http.StatusOK)
			before := s.counts(t)
			wantGrant(t, s.redeem(t, code, appRedirect, v), http.StatusBadRequest, "invalid_grant")
			wantCounts(t, s.counts(t), before)
		})
		t.Run("unknown code", func(t *testing.T) {
			before := s.counts(t)
			wantGrant(t, s.redeem(t, newVerifier(t), appRedirect, newVerifier(t)), http.StatusBadRequest, "invalid_grant")
			wantCounts(t, s.counts(t), before)
		})
		t.Run("malformed input leaves the code alone", func(t *testing.T) {
			code, v := fresh()
			before := s.counts(t)
			for _, body := range []string{
				form("grant_type", "authorization_code", "code", code, "redirect_uri", appRedirect, "code_verifier", "short"),
				form("grant_type", "authorization_code", "code", code, "redirect_uri", appRedirect, "code_verifier", strings.Repeat("a", 129)),
				form("grant_type", "authorization_code", "code", code, "redirect_uri", appRedirect),
				form("grant_type", "authorization_code", "code", code, "code_verifier", v),
				form("grant_type", "authorization_code", "redirect_uri", appRedirect, "code_verifier", v),
			} {
				wantGrant(t, do(t, s.c, "POST", s.issuer+"/auth/v1/token", formType, body), http.StatusBadRequest, "invalid_request")
			}
			wantCounts(t, s.counts(t), before)
			wantStatus(t, s.redeem(t, code, appRedirect, v), http.StatusOK)
		})
		// Last: it moves the clock past the code's 60 s lifetime.
		t.Run("expired code", func(t *testing.T) {
			code, v := fresh()
			s.clk.Advance(61 * time.Second)
			before := s.counts(t)
			wantGrant(t, s.redeem(t, code, appRedirect, v), http.StatusBadRequest, "invalid_grant")
			wantCounts(t, s.counts(t), before)
		})
	})

	t.Run("audit events carry no secrets", func(t *testing.T) {
		rows, err := s.view.db.Query("SELECT type, detail FROM events WHERE type LIKE 'social_%'")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		seen := map[string]bool{}
		for rows.Next() {
			var typ, detail string
			if err := rows.Scan(&typ, &detail); err != nil {
				t.Fatal(err)
			}
			seen[typ] = true
			if strings.Contains(detail, "@") || strings.Contains(detail, "code\":") || strings.Contains(detail, "state\":") {
				t.Fatalf("%s detail %s", typ, detail)
			}
		}
		for _, want := range []string{"social_login_succeeded", "social_login_failed", "social_identity_linked", "social_account_created"} {
			if !seen[want] {
				t.Errorf("no %s event", want)
			}
		}
		if strings.Contains(s.stderr.String(), s.op.ClientSecret) {
			t.Error("the client secret reached the log")
		}
	})
}
