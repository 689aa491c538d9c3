package passkey_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/passkey"
	"github.com/gatehouse-dev/gatehouse/internal/passkey/passkeytest"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const (
	rpID   = "example.com"
	origin = "https://example.com"
)

// users is the account service as passkeys see it, over the real store.
type users struct{ db *store.DB }

func (u users) User(ctx context.Context, id string) (*store.User, error) {
	return u.db.UserByID(ctx, id)
}
func (u users) Email(x *store.User) (string, error) { return string(x.EmailSealed), nil }

// events keeps audit events.
type events struct {
	mu sync.Mutex
	ev []store.Event
}

func (e *events) Record(_ context.Context, ev store.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ev = append(e.ev, ev)
}

func (e *events) count(typ string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.ev {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	t   testing.TB
	db  *store.DB
	svc *passkey.Service
	ev  *events
	clk *clock
	ctx context.Context
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixtureOn(t, "sqlite://"+filepath.Join(t.TempDir(), "p.db"))
}

// newFixtureOn is a fixture over the store at url.
func newFixtureOn(t testing.TB, url string) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{t: t, db: db, ev: &events{}, clk: &clock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}, ctx: ctx}
	f.svc, err = passkey.New(passkey.Config{RPID: rpID, RPDisplayName: "Example", Origins: []string{origin, "android:apk-key-hash:" + strings.Repeat("A", 43)}, Timeout: 5 * time.Minute},
		db, users{db}, f.ev, passkey.Options{Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) user(email string) string {
	f.t.Helper()
	id := uuid.NewString()
	now := f.clk.Now()
	if err := f.db.CreateUser(f.ctx, &store.User{ID: id, EmailIndex: []byte(email), EmailSealed: []byte(email), Plan: "free", CreatedAt: now, UpdatedAt: now}); err != nil {
		f.t.Fatal(err)
	}
	return id
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// register runs a whole registration with a and returns the credential.
func (f *fixture) register(a *passkeytest.Authenticator, userID string) *passkeytest.Credential {
	f.t.Helper()
	opts, err := f.svc.BeginRegistration(f.ctx, userID, "Phone")
	if err != nil {
		f.t.Fatal(err)
	}
	cred, body, err := a.Register(mustJSON(f.t, opts))
	if err != nil {
		f.t.Fatal(err)
	}
	c, err := f.svc.FinishRegistration(f.ctx, userID, body, identity.Meta{})
	if err != nil {
		f.t.Fatalf("finish registration: %v", err)
	}
	if c.ID != cred.IDString() || c.Name != "Phone" {
		f.t.Fatalf("registered %+v", c)
	}
	return cred
}

func (f *fixture) beginLogin() []byte {
	f.t.Helper()
	opts, err := f.svc.BeginLogin(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return mustJSON(f.t, opts)
}

func (f *fixture) signCount(id string) int64 {
	f.t.Helper()
	c, err := f.db.WebAuthnCredentialByID(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return c.SignCount
}

func TestRegisterAndDiscoverableLogin(t *testing.T) {
	t.Parallel()
	testRegisterAndDiscoverableLogin(t, newFixture(t))
}

func testRegisterAndDiscoverableLogin(t *testing.T, f *fixture) {
	uid := f.user("ann@example.com")
	a := passkeytest.New(rpID, origin)
	cred := f.register(a, uid)

	// The creation options: discoverable, UV preferred, no attestation,
	// user handle = user id, name = email, the passkey excluded next time.
	opts, err := f.svc.BeginRegistration(f.ctx, uid, "")
	if err != nil {
		t.Fatal(err)
	}
	var c passkeytest.Creation
	if err := json.Unmarshal(mustJSON(t, opts), &c); err != nil {
		t.Fatal(err)
	}
	pk := c.PublicKey
	if pk.AuthenticatorSelection.ResidentKey != "required" || pk.AuthenticatorSelection.UserVerification != "preferred" || pk.Attestation != "none" {
		t.Errorf("selection %+v attestation %q", pk.AuthenticatorSelection, pk.Attestation)
	}
	if uh, _ := base64.RawURLEncoding.DecodeString(pk.User.ID); string(uh) != uid || pk.User.Name != "ann@example.com" || pk.RP.ID != rpID {
		t.Errorf("user %+v rp %+v", pk.User, pk.RP)
	}
	if len(pk.ExcludeCredentials) != 1 || pk.ExcludeCredentials[0].ID != cred.IDString() {
		t.Errorf("excludeCredentials %+v", pk.ExcludeCredentials)
	}

	// Sign in with no username: the request options allow any credential.
	req := f.beginLogin()
	var r passkeytest.Request
	_ = json.Unmarshal(req, &r)
	if len(r.PublicKey.AllowCredentials) != 0 || r.PublicKey.RPID != rpID {
		t.Fatalf("request options %s", req)
	}
	body, err := a.Assert(cred, req)
	if err != nil {
		t.Fatal(err)
	}
	u, amr, err := f.svc.FinishLogin(f.ctx, body, identity.Meta{})
	if err != nil {
		t.Fatalf("finish login: %v", err)
	}
	if u.ID != uid || !slices.Equal(amr, []string{"hwk", "user", "mfa"}) {
		t.Fatalf("user %s amr %v", u.ID, amr)
	}
	if n := f.signCount(cred.IDString()); n != 1 {
		t.Fatalf("sign count %d, want 1", n)
	}

	// Without user verification the passkey is one factor: amr hwk only.
	a.Flags = passkeytest.FlagUP
	body, _ = a.Assert(cred, f.beginLogin())
	if _, amr, err = f.svc.FinishLogin(f.ctx, body, identity.Meta{}); err != nil || !slices.Equal(amr, []string{"hwk"}) {
		t.Fatalf("amr %v err %v", amr, err)
	}
	list, err := f.svc.List(f.ctx, uid)
	if err != nil || len(list) != 1 || list[0].LastUsedAt == nil {
		t.Fatalf("list %+v %v", list, err)
	}
	if f.ev.count(audit.PasskeyRegistered) != 1 || f.ev.count(audit.PasskeySignInSucceeded) != 2 {
		t.Fatalf("events %+v", f.ev.ev)
	}
}

// A synced passkey reports counter 0 on every use: allowed while both are 0.
func TestZeroCounterAllowed(t *testing.T) {
	t.Parallel()
	testZeroCounterAllowed(t, newFixture(t))
}

func testZeroCounterAllowed(t *testing.T, f *fixture) {
	uid := f.user("zed@example.com")
	a := passkeytest.New(rpID, origin)
	a.Flags |= passkeytest.FlagBE | passkeytest.FlagBS
	cred := f.register(a, uid)
	cred.Step = 0
	for range 3 {
		body, _ := a.Assert(cred, f.beginLogin())
		if _, _, err := f.svc.FinishLogin(f.ctx, body, identity.Meta{}); err != nil {
			t.Fatalf("zero counter: %v", err)
		}
	}
	list, _ := f.svc.List(f.ctx, uid)
	if !list[0].BackupEligible || !list[0].BackupState {
		t.Fatalf("flags not kept: %+v", list[0])
	}
}

func TestLoginRefused(t *testing.T) {
	t.Parallel()
	testLoginRefused(t, newFixture(t))
}

func testLoginRefused(t *testing.T, f *fixture) {
	uid := f.user("bob@example.com")
	a := passkeytest.New(rpID, origin)
	cred := f.register(a, uid)
	other := f.user("eve@example.com")
	ea := passkeytest.New(rpID, origin)
	evesCred := f.register(ea, other)

	challenge := func(opts []byte) string {
		var r passkeytest.Request
		_ = json.Unmarshal(opts, &r)
		return r.PublicKey.Challenge
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	// One good sign-in first, so the stored counter is 1.
	if body, _ := a.Assert(cred, f.beginLogin()); true {
		if _, _, err := f.svc.FinishLogin(f.ctx, body, identity.Meta{}); err != nil {
			t.Fatal(err)
		}
	}

	cases := []struct {
		name string
		body func() []byte
		want error
	}{
		{"wrong origin", func() []byte {
			b := *a
			b.Origin = "https://evil.example.net"
			body, _ := b.Assert(cred, f.beginLogin())
			return body
		}, passkey.ErrRejected},
		{"wrong rp id hash", func() []byte {
			b := *a
			b.RPID = "evil.example.net"
			body, _ := b.Assert(cred, f.beginLogin())
			return body
		}, passkey.ErrRejected},
		{"signature by another key", func() []byte {
			body, _ := a.Sign(cred, otherKey, cred.Counter+1, passkeytest.ClientData("webauthn.get", challenge(f.beginLogin()), origin))
			return body
		}, passkey.ErrRejected},
		{"finish without begin", func() []byte {
			ch := make([]byte, 32)
			_, _ = rand.Read(ch)
			body, _ := a.Sign(cred, cred.Key, cred.Counter+1, passkeytest.ClientData("webauthn.get", base64.RawURLEncoding.EncodeToString(ch), origin))
			return body
		}, passkey.ErrRejected},
		{"registration challenge at login", func() []byte {
			opts, _ := f.svc.BeginRegistration(f.ctx, uid, "")
			var c passkeytest.Creation
			_ = json.Unmarshal(mustJSON(t, opts), &c)
			body, _ := a.Sign(cred, cred.Key, cred.Counter+1, passkeytest.ClientData("webauthn.get", c.PublicKey.Challenge, origin))
			return body
		}, passkey.ErrRejected},
		{"create type in an assertion", func() []byte {
			body, _ := a.Sign(cred, cred.Key, cred.Counter+1, passkeytest.ClientData("webauthn.create", challenge(f.beginLogin()), origin))
			return body
		}, passkey.ErrRejected},
		{"counter regression (clone)", func() []byte {
			stored := uint32(f.signCount(cred.IDString()))
			body, _ := a.Sign(cred, cred.Key, stored, passkeytest.ClientData("webauthn.get", challenge(f.beginLogin()), origin))
			return body
		}, passkey.ErrCounterRegressed},
		{"user handle of another user", func() []byte {
			c := *cred
			c.UserHandle = []byte(other)
			body, _ := a.Sign(&c, cred.Key, cred.Counter+1, passkeytest.ClientData("webauthn.get", challenge(f.beginLogin()), origin))
			return body
		}, passkey.ErrRejected},
		{"unknown user handle", func() []byte {
			c := *cred
			c.UserHandle = []byte(uuid.NewString())
			body, _ := a.Sign(&c, cred.Key, cred.Counter+1, passkeytest.ClientData("webauthn.get", challenge(f.beginLogin()), origin))
			return body
		}, passkey.ErrRejected},
		{"another user's credential with own handle", func() []byte {
			c := *evesCred
			c.UserHandle = []byte(uid)
			body, _ := ea.Sign(&c, evesCred.Key, evesCred.Counter+1, passkeytest.ClientData("webauthn.get", challenge(f.beginLogin()), origin))
			return body
		}, passkey.ErrRejected},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := f.signCount(cred.IDString())
			_, _, err := f.svc.FinishLogin(f.ctx, tc.body(), identity.Meta{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if after := f.signCount(cred.IDString()); after != before {
				t.Fatalf("sign count changed %d → %d", before, after)
			}
		})
	}
	if f.ev.count(audit.PasskeyCounterRegressed) != 1 || f.ev.count(audit.PasskeySignInFailed) != len(cases) {
		t.Fatalf("regressions %d failures %d", f.ev.count(audit.PasskeyCounterRegressed), f.ev.count(audit.PasskeySignInFailed))
	}
}

func TestReplayAndExpiry(t *testing.T) {
	t.Parallel()
	testReplayAndExpiry(t, newFixture(t))
}

func testReplayAndExpiry(t *testing.T, f *fixture) {
	uid := f.user("cat@example.com")
	a := passkeytest.New(rpID, origin)
	cred := f.register(a, uid)

	body, _ := a.Assert(cred, f.beginLogin())
	if _, _, err := f.svc.FinishLogin(f.ctx, body, identity.Meta{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.FinishLogin(f.ctx, body, identity.Meta{}); !errors.Is(err, passkey.ErrRejected) {
		t.Fatalf("replay: %v", err)
	}
	// Concurrent finishes of one response: exactly one wins.
	body, _ = a.Assert(cred, f.beginLogin())
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := f.svc.FinishLogin(f.ctx, body, identity.Meta{}); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d concurrent finishes succeeded", wins)
	}
	// An expired ceremony.
	req := f.beginLogin()
	f.clk.Add(5*time.Minute + time.Second)
	body, _ = a.Assert(cred, req)
	before := f.signCount(cred.IDString())
	if _, _, err := f.svc.FinishLogin(f.ctx, body, identity.Meta{}); !errors.Is(err, passkey.ErrRejected) {
		t.Fatalf("expired: %v", err)
	}
	if f.signCount(cred.IDString()) != before {
		t.Fatal("expired ceremony changed the counter")
	}
	// An expired registration ceremony stores nothing.
	opts, _ := f.svc.BeginRegistration(f.ctx, uid, "Later")
	f.clk.Add(6 * time.Minute)
	_, rb, _ := a.Register(mustJSON(t, opts))
	if _, err := f.svc.FinishRegistration(f.ctx, uid, rb, identity.Meta{}); !errors.Is(err, passkey.ErrRejected) {
		t.Fatalf("expired registration: %v", err)
	}
	if list, _ := f.svc.List(f.ctx, uid); len(list) != 1 {
		t.Fatalf("%d passkeys", len(list))
	}
}

func TestRegistrationRefused(t *testing.T) {
	t.Parallel()
	testRegistrationRefused(t, newFixture(t))
}

func testRegistrationRefused(t *testing.T, f *fixture) {
	uid := f.user("dan@example.com")
	other := f.user("fay@example.com")
	a := passkeytest.New(rpID, origin)
	begin := func(user string) []byte {
		opts, err := f.svc.BeginRegistration(f.ctx, user, "")
		if err != nil {
			t.Fatal(err)
		}
		return mustJSON(t, opts)
	}
	cases := []struct {
		name string
		user string
		body func() []byte
		want error
	}{
		{"wrong origin", uid, func() []byte {
			b := *a
			b.Origin = "https://example.org"
			_, body, _ := b.Register(begin(uid))
			return body
		}, passkey.ErrRejected},
		{"wrong rp id hash", uid, func() []byte {
			b := *a
			b.RPID = "example.org"
			_, body, _ := b.Register(begin(uid))
			return body
		}, passkey.ErrRejected},
		{"another user's ceremony", other, func() []byte {
			_, body, _ := a.Register(begin(uid))
			return body
		}, passkey.ErrRejected},
		{"login challenge at registration", uid, func() []byte {
			var r passkeytest.Request
			_ = json.Unmarshal(f.beginLogin(), &r)
			cred, _ := passkeytest.NewCredential([]byte(uid))
			body, _ := a.Attest(cred, passkeytest.ClientData("webauthn.create", r.PublicKey.Challenge, origin))
			return body
		}, passkey.ErrRejected},
		{"no user presence", uid, func() []byte {
			b := *a
			b.Flags = 0
			_, body, _ := b.Register(begin(uid))
			return body
		}, passkey.ErrRejected},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.FinishRegistration(f.ctx, tc.user, tc.body(), identity.Meta{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			for _, u := range []string{uid, other} {
				if list, _ := f.svc.List(f.ctx, u); len(list) != 0 {
					t.Fatalf("a passkey was stored: %+v", list)
				}
			}
		})
	}
	// The same authenticator's credential twice: refused as a duplicate.
	cred, body, _ := a.Register(begin(uid))
	if _, err := f.svc.FinishRegistration(f.ctx, uid, body, identity.Meta{}); err != nil {
		t.Fatal(err)
	}
	again, _ := a.Attest(cred, passkeytest.ClientData("webauthn.create", func() string {
		var c passkeytest.Creation
		_ = json.Unmarshal(begin(uid), &c)
		return c.PublicKey.Challenge
	}(), origin))
	if _, err := f.svc.FinishRegistration(f.ctx, uid, again, identity.Meta{}); !errors.Is(err, passkey.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := f.svc.BeginRegistration(f.ctx, uid, strings.Repeat("x", 101)); !isInput(err, "name") {
		t.Fatalf("long name: %v", err)
	}
}

func isInput(err error, field string) bool {
	var ie *passkey.InputError
	return errors.As(err, &ie) && ie.Field == field
}

func TestMalformed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	uid := f.user("gil@example.com")
	a := passkeytest.New(rpID, origin)
	cred := f.register(a, uid)
	good, _ := a.Assert(cred, f.beginLogin())
	edit := func(fn func(m map[string]any)) []byte {
		var m map[string]any
		_ = json.Unmarshal(good, &m)
		fn(m)
		b, _ := json.Marshal(m)
		return b
	}
	resp := func(m map[string]any) map[string]any { return m["response"].(map[string]any) }
	cases := []struct {
		name  string
		body  []byte
		field string
	}{
		{"empty", []byte(""), ""},
		{"not JSON", []byte("{"), ""},
		{"array", []byte("[]"), ""},
		{"id not base64url", edit(func(m map[string]any) { m["id"] = "***" }), "id"},
		{"rawId differs", edit(func(m map[string]any) { m["rawId"] = "AAAA" }), "rawId"},
		{"type", edit(func(m map[string]any) { m["type"] = "password" }), "type"},
		{"no response", edit(func(m map[string]any) { delete(m, "response") }), "response"},
		{"clientDataJSON not base64url", edit(func(m map[string]any) { resp(m)["clientDataJSON"] = "%%%" }), "response.clientDataJSON"},
		{"clientDataJSON not JSON", edit(func(m map[string]any) { resp(m)["clientDataJSON"] = "bm90IGpzb24" }), "response.clientDataJSON"},
		{"signature a number", edit(func(m map[string]any) { resp(m)["signature"] = 5 }), "response.signature"},
		{"authenticatorData missing", edit(func(m map[string]any) { delete(resp(m), "authenticatorData") }), "response.authenticatorData"},
		{"authenticatorData short", edit(func(m map[string]any) { resp(m)["authenticatorData"] = "AAAA" }), "response.authenticatorData"},
		{"userHandle missing", edit(func(m map[string]any) { delete(resp(m), "userHandle") }), "response.userHandle"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := f.svc.FinishLogin(f.ctx, tc.body, identity.Meta{})
			if !isInput(err, tc.field) {
				t.Fatalf("err %v, want input error on %q", err, tc.field)
			}
		})
	}
	// Malformed input consumed nothing: the good response still signs in.
	if _, _, err := f.svc.FinishLogin(f.ctx, good, identity.Meta{}); err != nil {
		t.Fatalf("good after malformed: %v", err)
	}
	if _, err := f.svc.FinishRegistration(f.ctx, uid, edit(func(m map[string]any) { resp(m)["attestationObject"] = "AAAA" }), identity.Meta{}); !isInput(err, "response.attestationObject") {
		t.Fatalf("bad attestation object: %v", err)
	}
}

func TestMFA(t *testing.T) {
	t.Parallel()
	testMFA(t, newFixture(t))
}

func testMFA(t *testing.T, f *fixture) {
	uid := f.user("hal@example.com")
	other := f.user("ivy@example.com")
	a := passkeytest.New(rpID, origin)
	cred := f.register(a, uid)
	oa := passkeytest.New(rpID, origin)
	ocred := f.register(oa, other)

	mfaToken := func(user string, ttl time.Duration) string {
		tok := uuid.NewString()
		now := f.clk.Now()
		if err := f.db.CreateCode(f.ctx, &store.Code{ID: passkey.HashID(tok), Kind: store.CodeMFA, UserID: user, MaxAttempts: 5, CreatedAt: now, ExpiresAt: now.Add(ttl)}); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tok := mfaToken(uid, 5*time.Minute)
	opts, err := f.svc.BeginMFA(f.ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	req := mustJSON(t, opts)
	var r passkeytest.Request
	_ = json.Unmarshal(req, &r)
	if len(r.PublicKey.AllowCredentials) != 1 || r.PublicKey.AllowCredentials[0].ID != cred.IDString() {
		t.Fatalf("allowCredentials %s", req)
	}
	// The lookup did not use the mfa_token.
	if c, _ := f.db.Code(f.ctx, passkey.HashID(tok)); c.UsedAt != nil || c.Attempts != 0 {
		t.Fatalf("mfa_token touched: %+v", c)
	}
	body, _ := a.Assert(cred, req)
	// Another user cannot redeem it; the ceremony survives for its owner.
	if err := f.svc.VerifyMFAAssertion(f.ctx, other, body, identity.Meta{}); !errors.Is(err, passkey.ErrRejected) {
		t.Fatalf("other user: %v", err)
	}
	if err := f.svc.VerifyMFAAssertion(f.ctx, uid, body, identity.Meta{}); err != nil {
		t.Fatalf("mfa: %v", err)
	}
	if err := f.svc.VerifyMFAAssertion(f.ctx, uid, body, identity.Meta{}); !errors.Is(err, passkey.ErrRejected) {
		t.Fatalf("mfa replay: %v", err)
	}
	// A discoverable-login ceremony is not an MFA ceremony, and vice versa.
	body, _ = a.Assert(cred, f.beginLogin())
	if err := f.svc.VerifyMFAAssertion(f.ctx, uid, body, identity.Meta{}); !errors.Is(err, passkey.ErrRejected) {
		t.Fatalf("login ceremony as mfa: %v", err)
	}
	opts, _ = f.svc.BeginMFA(f.ctx, tok)
	body, _ = a.Assert(cred, mustJSON(t, opts))
	if _, _, err := f.svc.FinishLogin(f.ctx, body, identity.Meta{}); !errors.Is(err, passkey.ErrRejected) {
		t.Fatalf("mfa ceremony at login: %v", err)
	}
	// Another user's passkey in this user's MFA ceremony.
	opts, _ = f.svc.BeginMFA(f.ctx, tok)
	body, _ = oa.Assert(ocred, mustJSON(t, opts))
	if err := f.svc.VerifyMFAAssertion(f.ctx, uid, body, identity.Meta{}); !errors.Is(err, passkey.ErrRejected) {
		t.Fatalf("other's passkey: %v", err)
	}
	// Bad mfa_tokens.
	expired := mfaToken(uid, time.Minute)
	f.clk.Add(2 * time.Minute)
	for name, tk := range map[string]string{"unknown": "nope", "empty": "", "expired": expired} {
		if _, err := f.svc.BeginMFA(f.ctx, tk); !errors.Is(err, passkey.ErrInvalidMFAToken) {
			t.Errorf("%s: %v", name, err)
		}
	}
	used := mfaToken(uid, time.Minute)
	if _, err := f.db.UseCode(f.ctx, store.CodeMFA, passkey.HashID(used), f.clk.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.BeginMFA(f.ctx, used); !errors.Is(err, passkey.ErrInvalidMFAToken) {
		t.Errorf("used: %v", err)
	}
	none := f.user("joe@example.com")
	if _, err := f.svc.BeginMFA(f.ctx, mfaToken(none, time.Minute)); !errors.Is(err, passkey.ErrNoPasskeys) {
		t.Errorf("no passkeys: %v", err)
	}
}

func TestLockedAndDelete(t *testing.T) {
	t.Parallel()
	testLockedAndDelete(t, newFixture(t))
}

func testLockedAndDelete(t *testing.T, f *fixture) {
	uid := f.user("kim@example.com")
	other := f.user("lee@example.com")
	a := passkeytest.New(rpID, origin)
	cred := f.register(a, uid)

	if err := f.svc.Delete(f.ctx, other, cred.IDString(), identity.Meta{}); !errors.Is(err, passkey.ErrNotFound) {
		t.Fatalf("other's delete: %v", err)
	}
	now := f.clk.Now()
	if err := f.db.SetLocked(f.ctx, uid, &now, now); err != nil {
		t.Fatal(err)
	}
	body, _ := a.Assert(cred, f.beginLogin())
	if _, _, err := f.svc.FinishLogin(f.ctx, body, identity.Meta{}); !errors.Is(err, identity.ErrLocked) {
		t.Fatalf("locked: %v", err)
	}
	if _, err := f.svc.BeginRegistration(f.ctx, uid, ""); !errors.Is(err, identity.ErrLocked) {
		t.Fatalf("locked registration: %v", err)
	}
	if err := f.svc.Delete(f.ctx, uid, cred.IDString(), identity.Meta{}); err != nil {
		t.Fatal(err)
	}
	if list, _ := f.svc.List(f.ctx, uid); len(list) != 0 || f.ev.count(audit.PasskeyRemoved) != 1 {
		t.Fatalf("after delete: %+v", list)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]passkey.Config{
		"no origins":     {RPID: rpID, RPDisplayName: "x"},
		"unknown opaque": {RPID: rpID, RPDisplayName: "x", Origins: []string{origin, "foo:bar"}},
	} {
		if _, err := passkey.New(cfg, nil, nil, nil, passkey.Options{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
