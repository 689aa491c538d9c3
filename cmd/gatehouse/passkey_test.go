package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/passkey"
	"github.com/gatehouse-dev/gatehouse/internal/passkey/passkeytest"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const (
	pkRPID   = "localhost"
	pkOrigin = "https://localhost:8443"
	// An Android app's origin: the base64url SHA-256 of its signing certificate.
	pkAndroid = "android:apk-key-hash:47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
)

const pkConfig = `identity:
  webauthn:
    rp_id: localhost
    rp_display_name: Gatehouse Test
    rp_origins: [https://localhost:8443, "android:apk-key-hash:47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"]
    timeout: 2m
`

// pkEnv is a live server with passkeys on, and helpers to drive it.
type pkEnv struct {
	t  *testing.T
	la *liveApp
	db *dbView
}

func (e *pkEnv) post(path, access, body string) *response {
	e.t.Helper()
	var hdr []string
	if access != "" {
		hdr = []string{"Authorization", "Bearer " + access}
	}
	ct := jsonType
	if body == "" {
		ct = ""
	}
	return do(e.t, e.la.c, "POST", e.la.issuer+path, ct, body, hdr...)
}

func (e *pkEnv) signup(email string) (access, userID string) {
	e.t.Helper()
	r := e.la.signup(e.t, email, "correct horse battery staple 1")
	wantStatus(e.t, r, http.StatusCreated)
	return r.str(e.t, "access_token"), r.str(e.t, "user_id")
}

// register runs register/begin and /finish for the signed-in user with a.
func (e *pkEnv) register(a *passkeytest.Authenticator, access, name string) *passkeytest.Credential {
	e.t.Helper()
	b, _ := json.Marshal(map[string]string{"name": name})
	r := e.post("/auth/v1/webauthn/register/begin", access, string(b))
	wantStatus(e.t, r, http.StatusOK)
	cred, body, err := a.Register(r.body)
	if err != nil {
		e.t.Fatal(err)
	}
	r = e.post("/auth/v1/webauthn/register/finish", access, string(body))
	wantStatus(e.t, r, http.StatusCreated)
	m := r.json(e.t)
	if m["id"] != cred.IDString() || m["name"] != name || m["created_at"] == nil {
		e.t.Fatalf("registered %s", r.body)
	}
	return cred
}

func (e *pkEnv) beginLogin() []byte {
	e.t.Helper()
	r := e.post("/auth/v1/webauthn/login/begin", "", "")
	wantStatus(e.t, r, http.StatusOK)
	return r.body
}

func challengeOf(t testing.TB, opts []byte) string {
	t.Helper()
	var r passkeytest.Request
	if err := json.Unmarshal(opts, &r); err != nil || r.PublicKey.Challenge == "" {
		t.Fatalf("no challenge in %s", opts)
	}
	return r.PublicKey.Challenge
}

// state is what a refused request must not change: every passkey (counter,
// record, last use), every session and every used ceremony.
func (e *pkEnv) state() string {
	e.t.Helper()
	var b strings.Builder
	rows, err := e.db.db.Query(`SELECT id, user_id, sign_count, hex(credential), COALESCE(last_used_at, 0) FROM webauthn_credentials ORDER BY id`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, uid, cred string
		var n, used int64
		if err := rows.Scan(&id, &uid, &n, &cred, &used); err != nil {
			e.t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s %d %s %d\n", id, uid, n, cred, used)
	}
	fmt.Fprintf(&b, "sessions %d\n", e.db.count(e.t, `SELECT COUNT(*) FROM sessions`))
	fmt.Fprintf(&b, "refresh %d\n", e.db.count(e.t, `SELECT COUNT(*) FROM refresh_tokens`))
	return b.String()
}

func (e *pkEnv) events(typ string) int {
	e.t.Helper()
	return e.db.count(e.t, `SELECT COUNT(*) FROM events WHERE type = ?`, typ)
}

// jwtAMR reads the amr claim of an access token (the signature is the
// server's business; this only reads what it issued).
func jwtAMR(t testing.TB, tok string) []string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AMR []string `json:"amr"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.AMR
}

func fieldOf(t testing.TB, r *response) string {
	t.Helper()
	var p struct {
		Errors []struct {
			Field string `json:"field"`
		} `json:"errors"`
	}
	_ = json.Unmarshal(r.body, &p)
	if len(p.Errors) == 0 {
		return ""
	}
	return p.Errors[0].Field
}

func TestPasskeysEndToEnd(t *testing.T) {
	la := startLiveApp(t, pkConfig, liveOptions{})
	e := &pkEnv{t: t, la: la, db: openDBView(t, la.db)}
	ann, annID := e.signup("ann@example.com")
	a := passkeytest.New(pkRPID, pkOrigin)

	// 1. Register while signed in.
	cred := e.register(a, ann, "Pixel 9")
	if e.events("passkey_registered") != 1 {
		t.Fatal("no passkey_registered event")
	}
	// Not signed in: no registration.
	wantStatus(t, e.post("/auth/v1/webauthn/register/begin", "", ""), http.StatusUnauthorized)

	// 2. Sign in with no username: empty allowCredentials, the token's amr
	// says key + user verification.
	opts := e.beginLogin()
	var req passkeytest.Request
	_ = json.Unmarshal(opts, &req)
	if len(req.PublicKey.AllowCredentials) != 0 || req.PublicKey.RPID != pkRPID || req.PublicKey.UserVerification != "preferred" {
		t.Fatalf("request options %s", opts)
	}
	body, _ := a.Assert(cred, opts)
	r := e.post("/auth/v1/webauthn/login/finish", "", string(body))
	wantStatus(t, r, http.StatusOK)
	tok := r.json(t)
	if tok["token_type"] != "Bearer" || tok["refresh_token"] == "" || tok["user_id"] != annID {
		t.Fatalf("token response %s", r.body)
	}
	if amr := jwtAMR(t, tok["access_token"].(string)); !slices.Equal(amr, []string{"hwk", "user", "mfa"}) {
		t.Fatalf("amr %v", amr)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Fatal("token response cacheable")
	}
	// Without user verification: one factor, amr ["hwk"].
	a.Flags = passkeytest.FlagUP
	body, _ = a.Assert(cred, e.beginLogin())
	r = e.post("/auth/v1/webauthn/login/finish", "", string(body))
	wantStatus(t, r, http.StatusOK)
	if amr := jwtAMR(t, r.str(t, "access_token")); !slices.Equal(amr, []string{"hwk"}) {
		t.Fatalf("amr without UV %v", amr)
	}
	a.Flags = passkeytest.FlagUP | passkeytest.FlagUV
	// An Android app's origin is accepted too.
	android := *a
	android.Origin = pkAndroid
	body, _ = android.Assert(cred, e.beginLogin())
	wantStatus(t, e.post("/auth/v1/webauthn/login/finish", "", string(body)), http.StatusOK)

	// 3. List.
	r = la.get(t, "/auth/v1/webauthn/credentials", ann)
	wantStatus(t, r, http.StatusOK)
	var list struct {
		Credentials []passkey.Credential `json:"credentials"`
	}
	if err := json.Unmarshal(r.body, &list); err != nil || len(list.Credentials) != 1 || list.Credentials[0].ID != cred.IDString() || list.Credentials[0].LastUsedAt == nil || list.Credentials[0].Name != "Pixel 9" {
		t.Fatalf("list %s", r.body)
	}

	// 4. Bad input: each with its exact status and nothing changed.
	bob, bobID := e.signup("bob@example.com")
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	stored := func() uint32 {
		return uint32(e.db.count(t, `SELECT sign_count FROM webauthn_credentials WHERE id = ?`, cred.IDString()))
	}
	get := func(challenge string) []byte { return passkeytest.ClientData("webauthn.get", challenge, pkOrigin) }
	var replayed []byte
	{ // a good sign-in whose response is replayed below
		replayed, _ = a.Assert(cred, e.beginLogin())
		wantStatus(t, e.post("/auth/v1/webauthn/login/finish", "", string(replayed)), http.StatusOK)
	}
	regOpts := e.post("/auth/v1/webauthn/register/begin", ann, "")
	wantStatus(t, regOpts, http.StatusOK)
	var expiredOpts []byte
	cases := []struct {
		name   string
		path   string
		access string
		body   func() string
		status int
		field  string
	}{
		{"wrong origin", "/auth/v1/webauthn/login/finish", "", func() string {
			b := *a
			b.Origin = "https://evil.example"
			body, _ := b.Assert(cred, e.beginLogin())
			return string(body)
		}, http.StatusUnauthorized, ""},
		{"wrong rp id hash", "/auth/v1/webauthn/login/finish", "", func() string {
			b := *a
			b.RPID = "evil.example"
			body, _ := b.Assert(cred, e.beginLogin())
			return string(body)
		}, http.StatusUnauthorized, ""},
		{"replayed assertion", "/auth/v1/webauthn/login/finish", "", func() string { return string(replayed) }, http.StatusUnauthorized, ""},
		{"challenge from a registration ceremony", "/auth/v1/webauthn/login/finish", "", func() string {
			body, _ := a.Sign(cred, cred.Key, stored()+1, get(challengeOf(t, regOpts.body)))
			return string(body)
		}, http.StatusUnauthorized, ""},
		{"another user's registration ceremony", "/auth/v1/webauthn/register/finish", bob, func() string {
			c, _ := passkeytest.NewCredential([]byte("x"))
			body, _ := a.Attest(c, passkeytest.ClientData("webauthn.create", challengeOf(t, regOpts.body), pkOrigin))
			return string(body)
		}, http.StatusBadRequest, ""},
		{"counter regression (clone)", "/auth/v1/webauthn/login/finish", "", func() string {
			body, _ := a.Sign(cred, cred.Key, stored(), get(challengeOf(t, e.beginLogin())))
			return string(body)
		}, http.StatusUnauthorized, ""},
		{"signature by another key", "/auth/v1/webauthn/login/finish", "", func() string {
			body, _ := a.Sign(cred, otherKey, stored()+1, get(challengeOf(t, e.beginLogin())))
			return string(body)
		}, http.StatusUnauthorized, ""},
		{"finish without begin", "/auth/v1/webauthn/login/finish", "", func() string {
			ch := make([]byte, 32)
			_, _ = rand.Read(ch)
			body, _ := a.Sign(cred, cred.Key, stored()+1, get(base64.RawURLEncoding.EncodeToString(ch)))
			return string(body)
		}, http.StatusUnauthorized, ""},
		{"expired ceremony", "/auth/v1/webauthn/login/finish", "", func() string {
			la.clk.Advance(2*time.Minute + time.Second)
			body, _ := a.Sign(cred, cred.Key, stored()+1, get(challengeOf(t, expiredOpts)))
			return string(body)
		}, http.StatusUnauthorized, ""},
		{"unknown credential id", "/auth/v1/webauthn/login/finish", "", func() string {
			c, _ := passkeytest.NewCredential(cred.UserHandle)
			body, _ := a.Sign(c, c.Key, 1, get(challengeOf(t, e.beginLogin())))
			return string(body)
		}, http.StatusUnauthorized, ""},
		{"malformed JSON", "/auth/v1/webauthn/login/finish", "", func() string { return `{"id":` }, http.StatusBadRequest, ""},
		{"malformed base64", "/auth/v1/webauthn/login/finish", "", func() string {
			body, _ := a.Sign(cred, cred.Key, stored()+1, get(challengeOf(t, e.beginLogin())))
			return strings.Replace(string(body), `"signature":"`, `"signature":"*`, 1)
		}, http.StatusBadRequest, "response.signature"},
		{"malformed registration base64", "/auth/v1/webauthn/register/finish", ann, func() string {
			return `{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"!!"}}`
		}, http.StatusBadRequest, "response.attestationObject"},
		{"wrong origin at registration", "/auth/v1/webauthn/register/finish", ann, func() string {
			b := *a
			b.Origin = "https://localhost:9999"
			r := e.post("/auth/v1/webauthn/register/begin", ann, "")
			_, body, _ := b.Register(r.body)
			return string(body)
		}, http.StatusBadRequest, ""},
		{"mfa_token unknown", "/auth/v1/webauthn/login/begin", "", func() string { return `{"mfa_token":"nope"}` }, http.StatusBadRequest, "mfa_token"},
		{"login begin unknown field", "/auth/v1/webauthn/login/begin", "", func() string { return `{"username":"ann"}` }, http.StatusBadRequest, "username"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "expired ceremony" {
				expiredOpts = e.beginLogin()
			}
			body := tc.body()
			before := e.state()
			r := e.post(tc.path, tc.access, body)
			wantStatus(t, r, tc.status)
			if !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
				t.Fatalf("content type %q", r.header.Get("Content-Type"))
			}
			if f := fieldOf(t, r); f != tc.field {
				t.Fatalf("field %q, want %q: %s", f, tc.field, r.body)
			}
			if after := e.state(); after != before {
				t.Fatalf("state changed:\n%s\n→\n%s", before, after)
			}
		})
	}
	// Every failed sign-in answered alike: no hint which credential exists.
	if n := e.events("passkey_counter_regressed"); n != 1 {
		t.Fatalf("%d counter regression events", n)
	}
	if e.events("passkey_signin_failed") < 7 {
		t.Fatalf("%d sign-in failure events", e.events("passkey_signin_failed"))
	}

	// 5. The MFA step's options list only the mfa_token's user's passkeys,
	// and the lookup leaves the token unused.
	mfaTok := "mfa-token-for-test"
	now := la.clk.Now()
	if err := la.app.db.CreateCode(context.Background(), &store.Code{ID: passkey.HashID(mfaTok), Kind: store.CodeMFA, UserID: annID, MaxAttempts: 5, CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	r = e.post("/auth/v1/webauthn/login/begin", "", `{"mfa_token":"`+mfaTok+`"}`)
	wantStatus(t, r, http.StatusOK)
	_ = json.Unmarshal(r.body, &req)
	if len(req.PublicKey.AllowCredentials) != 1 || req.PublicKey.AllowCredentials[0].ID != cred.IDString() {
		t.Fatalf("mfa options %s", r.body)
	}
	if c, _ := la.app.db.Code(context.Background(), passkey.HashID(mfaTok)); c.UsedAt != nil || c.Attempts != 0 {
		t.Fatalf("mfa_token consumed: %+v", c)
	}
	// Its ceremony is not a passwordless sign-in (refused without burning
	// it), nor bob's; it is ann's second factor, once.
	body, _ = a.Assert(cred, r.body)
	wantStatus(t, e.post("/auth/v1/webauthn/login/finish", "", string(body)), http.StatusUnauthorized)
	ctx := context.Background()
	if err := la.app.passkeys.VerifyMFAAssertion(ctx, bobID, body, identity.Meta{}); !errors.Is(err, passkey.ErrRejected) {
		t.Fatalf("bob redeemed ann's MFA ceremony: %v", err)
	}
	if err := la.app.passkeys.VerifyMFAAssertion(ctx, annID, body, identity.Meta{}); err != nil {
		t.Fatalf("mfa assertion: %v", err)
	}
	if err := la.app.passkeys.VerifyMFAAssertion(ctx, annID, body, identity.Meta{}); !errors.Is(err, passkey.ErrRejected) {
		t.Fatalf("mfa assertion replayed: %v", err)
	}

	// 6. Delete: someone else's id is 404 and deletes nothing; the owner's is 204.
	before := e.state()
	r = do(t, la.c, "DELETE", la.issuer+"/auth/v1/webauthn/credentials/"+cred.IDString(), "", "", "Authorization", "Bearer "+bob)
	wantStatus(t, r, http.StatusNotFound)
	if e.state() != before {
		t.Fatal("someone else's DELETE changed state")
	}
	wantStatus(t, do(t, la.c, "DELETE", la.issuer+"/auth/v1/webauthn/credentials/nope", "", "", "Authorization", "Bearer "+ann), http.StatusNotFound)
	wantStatus(t, do(t, la.c, "DELETE", la.issuer+"/auth/v1/webauthn/credentials/"+cred.IDString(), "", "", "Authorization", "Bearer "+ann), http.StatusNoContent)
	r = la.get(t, "/auth/v1/webauthn/credentials", ann)
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), `"credentials":[]`) || e.events("passkey_removed") != 1 {
		t.Fatalf("after delete %s", r.body)
	}
	// The deleted passkey signs in no more.
	body, _ = a.Assert(cred, e.beginLogin())
	wantStatus(t, e.post("/auth/v1/webauthn/login/finish", "", string(body)), http.StatusUnauthorized)

	// 7. A locked account's passkey is refused.
	cred = e.register(a, ann, "Again")
	lockAt := la.clk.Now()
	if err := la.app.db.SetLocked(context.Background(), annID, &lockAt, lockAt); err != nil {
		t.Fatal(err)
	}
	body, _ = a.Assert(cred, e.beginLogin())
	wantStatus(t, e.post("/auth/v1/webauthn/login/finish", "", string(body)), http.StatusForbidden)
}

// With no rp_id the passkey endpoints do not exist.
func TestPasskeysOff(t *testing.T) {
	s := startServer(t, newTestEnv(t, ""), nil)
	for _, p := range []string{"/auth/v1/webauthn/login/begin", "/auth/v1/webauthn/register/begin"} {
		wantStatus(t, do(t, s.c, "POST", s.issuer+p, "", ""), http.StatusNotFound)
	}
}

// TestPasskeyAsSecondFactor: a user with a password and a passkey signs in
// with the password, gets mfa_required listing webauthn, runs the assertion
// ceremony for the mfa_token and redeems it at the token endpoint's MFA
// grant; the token's amr shows both factors, and the assertion works once.
func TestPasskeyAsSecondFactor(t *testing.T) {
	la := startLiveApp(t, pkConfig, liveOptions{})
	e := &pkEnv{t: t, la: la, db: openDBView(t, la.db)}
	ann, _ := e.signup("ann@example.com")
	a := passkeytest.New(pkRPID, pkOrigin)
	cred := e.register(a, ann, "Pixel 9")

	tokenURL := la.issuer + "/auth/v1/token"
	r := do(t, la.c, "POST", tokenURL, formType, form("grant_type", "password", "username", "ann@example.com", "password", "correct horse battery staple 1"))
	wantStatus(t, r, http.StatusBadRequest)
	m := r.json(t)
	if m["error"] != "mfa_required" || !slices.Contains(toStrings(m["mfa_methods"]), "webauthn") {
		t.Fatalf("password grant: %s", r.body)
	}
	mfaTok := m["mfa_token"].(string)

	r = e.post("/auth/v1/webauthn/login/begin", "", `{"mfa_token":"`+mfaTok+`"}`)
	wantStatus(t, r, http.StatusOK)
	assertion, err := a.Assert(cred, r.body)
	if err != nil {
		t.Fatal(err)
	}
	grant := form("grant_type", "urn:gatehouse:grant-type:mfa", "mfa_token", mfaTok, "webauthn_assertion", string(assertion))
	r = do(t, la.c, "POST", tokenURL, formType, grant)
	wantStatus(t, r, http.StatusOK)
	if amr := jwtAMR(t, r.str(t, "access_token")); !slices.Contains(amr, "pwd") || !slices.Contains(amr, "hwk") || !slices.Contains(amr, "mfa") {
		t.Fatalf("amr %v", amr)
	}
	// The same assertion (and the spent mfa_token) cannot be used again.
	wantStatus(t, do(t, la.c, "POST", tokenURL, formType, grant), http.StatusBadRequest)
}
