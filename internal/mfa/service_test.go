package mfa

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/google/uuid"
)

// fakeSealer "seals" by prefixing purpose and aad, and refuses to open a value
// under any other: enough to prove the service binds secrets to their row.
type fakeSealer struct{}

func (fakeSealer) Seal(purpose string, pt []byte, aad ...string) ([]byte, error) {
	return append([]byte(purpose+"|"+strings.Join(aad, "|")+"|"), pt...), nil
}

func (fakeSealer) Open(purpose string, sealed []byte, aad ...string) ([]byte, error) {
	p := []byte(purpose + "|" + strings.Join(aad, "|") + "|")
	if !bytes.HasPrefix(sealed, p) {
		return nil, errors.New("open: wrong purpose or aad")
	}
	return bytes.Clone(sealed[len(p):]), nil
}

type events struct {
	mu sync.Mutex
	l  []store.Event
}

func (e *events) Record(_ context.Context, ev store.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.l = append(e.l, ev)
}

func (e *events) last(typ string) *store.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.l) - 1; i >= 0; i-- {
		if e.l[i].Type == typ {
			ev := e.l[i]
			return &ev
		}
	}
	return nil
}

// clock is a settable test clock.
type clock struct{ t atomic.Int64 }

func (c *clock) Now() time.Time      { return time.Unix(0, c.t.Load()).UTC() }
func (c *clock) Set(t time.Time)     { c.t.Store(t.UnixNano()) }
func (c *clock) Add(d time.Duration) { c.t.Add(int64(d)) }
func (c *clock) code(t *testing.T, secret []byte, off int64) string {
	t.Helper()
	s, err := Code(secret, AppParams.Step(c.Now())+off, AppParams)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type fixture struct {
	db    *store.DB
	svc   *Service
	ev    *events
	clk   *clock
	user  string
	m     identity.Meta
	codes []string
	sec   []byte
}

var t0 = time.Unix(1_800_000_000, 0).UTC() // the start of a time step

// mkFixture makes a fixture on one store backend.
type mkFixture func(t *testing.T, opts Options) *fixture

// newFixture is a fixture on a fresh SQLite database.
func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	return fixtureOn(t, "sqlite://"+filepath.Join(t.TempDir(), "m.db"), opts)
}

// newUser creates a user with a unique id (the PostgreSQL database is shared).
func newUser(t *testing.T, db *store.DB) string {
	t.Helper()
	id := uuid.NewString()
	if err := db.CreateUser(t.Context(), &store.User{ID: id, EmailIndex: []byte(id), EmailSealed: []byte("e"), Plan: "free", CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	return id
}

func fixtureOn(t *testing.T, url string, opts Options) *fixture {
	t.Helper()
	db, err := store.Open(t.Context(), url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{db: db, ev: &events{}, clk: &clock{}, m: identity.Meta{IP: "192.0.2.1", RequestID: "r1"}}
	f.clk.Set(t0)
	f.user = newUser(t, db)
	opts.Now = f.clk.Now
	opts.Passkeys = db
	f.svc = New(db, db, fakeSealer{}, f.ev, opts)
	return f
}

// enrol enrols and confirms TOTP, keeping the secret and recovery codes.
func (f *fixture) enrol(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	e, err := f.svc.EnrolTOTP(ctx, f.user, "alice@example.com", f.m)
	if err != nil {
		t.Fatal(err)
	}
	f.sec, err = b32.DecodeString(e.Secret)
	if err != nil || len(f.sec) != SecretSize {
		t.Fatalf("secret %q: %v", e.Secret, err)
	}
	f.codes, err = f.svc.ConfirmTOTP(ctx, f.user, f.clk.code(t, f.sec, 0), f.m)
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Add(AppParams.Period) // the confirming code's step is spent
}

func (f *fixture) challenge(t *testing.T) string {
	t.Helper()
	tok, ttl, err := f.svc.Challenge(t.Context(), f.user, []string{"pwd"}, f.m)
	if err != nil || ttl != 5*time.Minute || len(tok) != 43 {
		t.Fatalf("challenge: %q %v %v", tok, ttl, err)
	}
	return tok
}

func TestEnrolConfirm(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{Issuer: "Notes App"})
	ctx := t.Context()
	if m, _ := f.svc.Methods(ctx, f.user); len(m) != 0 {
		t.Fatalf("methods before enrolment: %v", m)
	}
	if _, err := f.svc.ConfirmTOTP(ctx, f.user, "123456", f.m); !errors.Is(err, ErrNoEnrolment) {
		t.Fatalf("confirm without enrolment: %v", err)
	}
	e, err := f.svc.EnrolTOTP(ctx, f.user, "alice@example.com", f.m)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(e.URI)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("issuer") != "Notes App" ||
		u.Query().Get("secret") != e.Secret || !strings.Contains(u.Path, "Notes App:alice@example.com") {
		t.Fatalf("uri %q", e.URI)
	}
	sec, _ := b32.DecodeString(e.Secret)
	// Pending: not a second factor yet, and sealed bound to its own row.
	if m, _ := f.svc.Methods(ctx, f.user); len(m) != 0 {
		t.Fatalf("methods while pending: %v", m)
	}
	ps, err := f.db.UserSecret(ctx, f.user, SecretTOTPPending)
	if err != nil || bytes.Contains(ps.Sealed, []byte(e.Secret)) || !bytes.HasPrefix(ps.Sealed, []byte("totp_secret|user_secrets|sealed|"+f.user+"/totp_pending|")) {
		t.Fatalf("pending secret: %v", err)
	}
	// Wrong code: refused, nothing changes.
	wrong := f.clk.code(t, sec, 3)
	if _, err := f.svc.ConfirmTOTP(ctx, f.user, wrong, f.m); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("wrong code: %v", err)
	}
	if st, _ := f.svc.Status(ctx, f.user); st.TOTP || !st.TOTPPending {
		t.Fatalf("after wrong code: %+v", st)
	}
	if ev := f.ev.last(audit.MFAFailed); ev == nil || ev.Detail["reason"] != "wrong_code" || strings.Contains(ev.Detail["reason"]+ev.Detail["method"], wrong) {
		t.Fatalf("failed event %+v", ev)
	}
	codes, err := f.svc.ConfirmTOTP(ctx, f.user, f.clk.code(t, sec, 0), f.m)
	if err != nil || len(codes) != RecoveryCodeCount {
		t.Fatalf("confirm: %v %v", codes, err)
	}
	st, err := f.svc.Status(ctx, f.user)
	if err != nil || !st.TOTP || st.TOTPPending || st.RecoveryCodes != 10 || strings.Join(st.Methods, " ") != "otp recovery_code" {
		t.Fatalf("status %+v %v", st, err)
	}
	if _, err := f.db.UserSecret(ctx, f.user, SecretTOTPPending); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("pending secret kept: %v", err)
	}
	if _, err := f.svc.EnrolTOTP(ctx, f.user, "alice@example.com", f.m); !errors.Is(err, ErrAlreadyEnrolled) {
		t.Fatalf("enrol twice: %v", err)
	}
	// The confirming code cannot sign in.
	if _, err := f.svc.Redeem(ctx, f.challenge(t), Proof{Code: f.clk.code(t, sec, 0)}, f.m); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("confirming code reused: %v", err)
	}
}

func TestEnrolmentExpires(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{EnrolmentTTL: time.Minute})
	e, err := f.svc.EnrolTOTP(t.Context(), f.user, "a@example.com", f.m)
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := b32.DecodeString(e.Secret)
	f.clk.Add(2 * time.Minute)
	if _, err := f.svc.ConfirmTOTP(t.Context(), f.user, f.clk.code(t, sec, 0), f.m); !errors.Is(err, ErrNoEnrolment) {
		t.Fatalf("stale enrolment: %v", err)
	}
}

func TestRedeemTOTP(t *testing.T) {
	t.Parallel()
	testRedeemTOTP(t, newFixture)
}

func testRedeemTOTP(t *testing.T, newFixture mkFixture) {
	f := newFixture(t, Options{})
	f.enrol(t)
	ctx := t.Context()
	code := f.clk.code(t, f.sec, 0)
	r, err := f.svc.Redeem(ctx, f.challenge(t), Proof{Code: code}, f.m)
	if err != nil || r.UserID != f.user || strings.Join(r.AMR, " ") != "pwd otp mfa" {
		t.Fatalf("redeem: %+v %v", r, err)
	}
	for _, tc := range []struct {
		name string
		code string
	}{
		{"replayed (same step)", code},
		{"older step than the last accepted", f.clk.code(t, f.sec, -1)},
		{"expired (two steps old)", f.clk.code(t, f.sec, -2)},
		{"wrong", "000000"},
		{"malformed", "12 456"},
	} {
		if _, err := f.svc.Redeem(ctx, f.challenge(t), Proof{Code: tc.code}, f.m); !errors.Is(err, ErrInvalidCode) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if ev := f.ev.last(audit.MFAFailed); ev == nil {
		t.Fatal("no failure event")
	}
	// The next step's code (skew +1) is fine, once.
	next := f.clk.code(t, f.sec, 1)
	if _, err := f.svc.Redeem(ctx, f.challenge(t), Proof{Code: next}, f.m); err != nil {
		t.Fatalf("next step: %v", err)
	}
	// Having accepted step+1, the current step's code is now behind the counter.
	f.clk.Add(AppParams.Period)
	if _, err := f.svc.Redeem(ctx, f.challenge(t), Proof{Code: f.clk.code(t, f.sec, -1)}, f.m); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("code at the accepted step: %v", err)
	}
}

func TestRedeemToken(t *testing.T) {
	t.Parallel()
	testRedeemToken(t, newFixture)
}

func testRedeemToken(t *testing.T, newFixture mkFixture) {
	f := newFixture(t, Options{UserFailures: 100})
	f.enrol(t)
	ctx := t.Context()
	// Malformed and unknown tokens.
	for _, tok := range []string{"", "x", strings.Repeat("A", 43), strings.Repeat("A", 44), "!" + strings.Repeat("A", 42)} {
		if _, err := f.svc.Redeem(ctx, tok, Proof{Code: f.clk.code(t, f.sec, 0)}, f.m); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("token %q: %v", tok, err)
		}
	}
	// Exactly one factor.
	tok := f.challenge(t)
	for _, p := range []Proof{{}, {Code: "123456", RecoveryCode: f.codes[0]}} {
		if _, err := f.svc.Redeem(ctx, tok, p, f.m); !errors.Is(err, ErrProof) {
			t.Errorf("proof %+v: %v", p, err)
		}
	}
	// Five wrong codes exhaust it; the right one is then refused and not spent.
	for i := range 5 {
		if _, err := f.svc.Redeem(ctx, tok, Proof{Code: "000000"}, f.m); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	right := f.clk.code(t, f.sec, 0)
	if _, err := f.svc.Redeem(ctx, tok, Proof{Code: right}, f.m); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("exhausted token: %v", err)
	}
	if _, err := f.svc.Redeem(ctx, f.challenge(t), Proof{Code: right}, f.m); err != nil {
		t.Fatalf("the code was spent by an exhausted token: %v", err)
	}
	// Used: single use.
	tok = f.challenge(t)
	f.clk.Add(AppParams.Period)
	if _, err := f.svc.Redeem(ctx, tok, Proof{Code: f.clk.code(t, f.sec, 0)}, f.m); err != nil {
		t.Fatal(err)
	}
	f.clk.Add(AppParams.Period)
	if _, err := f.svc.Redeem(ctx, tok, Proof{Code: f.clk.code(t, f.sec, 0)}, f.m); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("used token: %v", err)
	}
	// Expired.
	tok = f.challenge(t)
	f.clk.Add(5*time.Minute + time.Second)
	if _, err := f.svc.Redeem(ctx, tok, Proof{Code: f.clk.code(t, f.sec, 0)}, f.m); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("expired token: %v", err)
	}
}

func TestRecoveryCodeSingleUse(t *testing.T) {
	t.Parallel()
	testRecoveryCodeSingleUse(t, newFixture)
}

func testRecoveryCodeSingleUse(t *testing.T, newFixture mkFixture) {
	f := newFixture(t, Options{})
	f.enrol(t)
	ctx := t.Context()
	typed := strings.ToUpper(strings.ReplaceAll(f.codes[3], "-", " "))
	r, err := f.svc.Redeem(ctx, f.challenge(t), Proof{RecoveryCode: typed}, f.m)
	if err != nil || strings.Join(r.AMR, " ") != "pwd mfa" {
		t.Fatalf("recovery code: %+v %v", r, err)
	}
	if ev := f.ev.last(audit.RecoveryCodeUsed); ev == nil || ev.Detail["remaining"] != "9" {
		t.Fatalf("used event %+v", ev)
	}
	if _, err := f.svc.Redeem(ctx, f.challenge(t), Proof{RecoveryCode: f.codes[3]}, f.m); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("reused recovery code: %v", err)
	}
	if _, err := f.svc.Redeem(ctx, f.challenge(t), Proof{RecoveryCode: "not-a-code"}, f.m); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("malformed recovery code: %v", err)
	}
	if st, _ := f.svc.Status(ctx, f.user); st.RecoveryCodes != 9 {
		t.Fatalf("remaining %d", st.RecoveryCodes)
	}
	// Another user's codes are not this user's.
	tok, _, _ := f.svc.Challenge(ctx, newUser(t, f.db), []string{"pwd"}, f.m)
	if _, err := f.svc.Redeem(ctx, tok, Proof{RecoveryCode: f.codes[4]}, f.m); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("another user's code: %v", err)
	}
	// Regeneration needs a TOTP code and replaces every code.
	if _, err := f.svc.RegenerateRecoveryCodes(ctx, f.user, "000000", f.m); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("regenerate with a wrong code: %v", err)
	}
	fresh, err := f.svc.RegenerateRecoveryCodes(ctx, f.user, f.clk.code(t, f.sec, 0), f.m)
	if err != nil || len(fresh) != 10 {
		t.Fatalf("regenerate: %v", err)
	}
	if _, err := f.svc.Redeem(ctx, f.challenge(t), Proof{RecoveryCode: f.codes[5]}, f.m); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("old code after regeneration: %v", err)
	}
	if _, err := f.svc.Redeem(ctx, f.challenge(t), Proof{RecoveryCode: fresh[0]}, f.m); err != nil {
		t.Fatalf("new code: %v", err)
	}
}

func TestUserThrottle(t *testing.T) {
	t.Parallel()
	testUserThrottle(t, newFixture)
}

func testUserThrottle(t *testing.T, newFixture mkFixture) {
	f := newFixture(t, Options{UserFailures: 3, Window: time.Minute})
	f.enrol(t)
	ctx := t.Context()
	// New mfa_tokens do not buy new guesses.
	for i := range 3 {
		if _, err := f.svc.Redeem(ctx, f.challenge(t), Proof{Code: "000000"}, f.m); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	var te *identity.ThrottledError
	if _, err := f.svc.Redeem(ctx, f.challenge(t), Proof{Code: f.clk.code(t, f.sec, 0)}, f.m); !errors.As(err, &te) || te.RetryAfter <= 0 {
		t.Fatalf("throttled: %v", err)
	}
	if ev := f.ev.last(audit.MFAFailed); ev == nil || ev.Detail["reason"] != "throttled" {
		t.Fatalf("event %+v", ev)
	}
	f.clk.Add(time.Minute + time.Second)
	if _, err := f.svc.Redeem(ctx, f.challenge(t), Proof{Code: f.clk.code(t, f.sec, 0)}, f.m); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestParallelSameCode(t *testing.T) {
	t.Parallel()
	testParallelSameCode(t, newFixture)
}

func testParallelSameCode(t *testing.T, newFixture mkFixture) {
	f := newFixture(t, Options{UserFailures: 100})
	f.enrol(t)
	code := f.clk.code(t, f.sec, 0)
	toks := make([]string, 8)
	for i := range toks {
		toks[i] = f.challenge(t)
	}
	var ok atomic.Int32
	var wg sync.WaitGroup
	for _, tok := range toks {
		wg.Go(func() {
			if _, err := f.svc.Redeem(context.Background(), tok, Proof{Code: code}, f.m); err == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d of 8 parallel sign-ins with one code succeeded, want 1", ok.Load())
	}
}

func TestDisable(t *testing.T) {
	t.Parallel()
	testDisable(t, newFixture)
}

func testDisable(t *testing.T, newFixture mkFixture) {
	f := newFixture(t, Options{})
	ctx := t.Context()
	if err := f.svc.DisableTOTP(ctx, f.user, Proof{Code: "123456"}, f.m); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("disable when not enrolled: %v", err)
	}
	f.enrol(t)
	for _, p := range []Proof{{}, {Code: "1", RecoveryCode: "2"}} {
		if err := f.svc.DisableTOTP(ctx, f.user, p, f.m); !errors.Is(err, ErrProof) {
			t.Fatalf("proof %+v: %v", p, err)
		}
	}
	if err := f.svc.DisableTOTP(ctx, f.user, Proof{Code: "000000"}, f.m); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("wrong code: %v", err)
	}
	if st, _ := f.svc.Status(ctx, f.user); !st.TOTP || st.RecoveryCodes != 10 {
		t.Fatalf("changed by a wrong code: %+v", st)
	}
	if err := f.svc.DisableTOTP(ctx, f.user, Proof{RecoveryCode: f.codes[0]}, f.m); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.svc.Status(ctx, f.user); st.TOTP || st.RecoveryCodes != 0 || len(st.Methods) != 0 {
		t.Fatalf("after disable: %+v", st)
	}
	if n, _ := f.db.CountRecoveryCodes(ctx, f.user); n != 0 {
		t.Fatalf("%d recovery codes left", n)
	}
	if f.ev.last(audit.MFADisabled) == nil {
		t.Fatal("no disabled event")
	}
}

func TestExternalFactor(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	ctx := t.Context()
	bad := func(context.Context, string) ([]string, error) { return nil, errors.New("signature invalid") }
	if _, err := f.svc.Redeem(ctx, f.challenge(t), Proof{External: bad}, f.m); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("refused assertion: %v", err)
	}
	var got string
	good := func(_ context.Context, uid string) ([]string, error) { got = uid; return []string{"hwk"}, nil }
	r, err := f.svc.Redeem(ctx, f.challenge(t), Proof{External: good}, f.m)
	if err != nil || got != f.user || strings.Join(r.AMR, " ") != "pwd hwk mfa" {
		t.Fatalf("assertion: %+v %v (user %q)", r, err, got)
	}
}

func TestNoSecretsInEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.enrol(t)
	tok := f.challenge(t)
	code := f.clk.code(t, f.sec, 0)
	if _, err := f.svc.Redeem(t.Context(), tok, Proof{Code: code}, f.m); err != nil {
		t.Fatal(err)
	}
	_, _ = f.svc.Redeem(t.Context(), f.challenge(t), Proof{RecoveryCode: f.codes[1]}, f.m)
	f.ev.mu.Lock()
	defer f.ev.mu.Unlock()
	for _, ev := range f.ev.l {
		for k, v := range ev.Detail {
			for _, secret := range append([]string{tok, code, EncodeSecret(f.sec)}, f.codes...) {
				if strings.Contains(v, secret) {
					t.Errorf("event %s detail %s carries a secret", ev.Type, k)
				}
			}
		}
	}
}

func TestVerifyCode(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.enrol(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		code string
		amr  string
		err  error
	}{
		{"empty", "  ", "", ErrProof},
		{"totp", f.clk.code(t, f.sec, 0), "otp mfa", nil},
		{"totp replayed", f.clk.code(t, f.sec, 0), "", ErrInvalidCode},
		{"recovery code", " " + strings.ToUpper(f.codes[0]) + " ", "mfa", nil},
		{"recovery code reused", f.codes[0], "", ErrInvalidCode},
		{"garbage", "hello", "", ErrInvalidCode},
	} {
		amr, err := f.svc.VerifyCode(ctx, f.user, tc.code, f.m)
		if !errors.Is(err, tc.err) || strings.Join(amr, " ") != tc.amr {
			t.Errorf("%s: %v, %v; want %q, %v", tc.name, amr, err, tc.amr, tc.err)
		}
	}
}

// TestPostgres runs the store-dependent cases against PostgreSQL when
// GATEHOUSE_TEST_POSTGRES_URL is set (atomic attempts, counters and single
// use are the store's; they must hold on both backends).
func TestPostgres(t *testing.T) {
	url := os.Getenv("GATEHOUSE_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("GATEHOUSE_TEST_POSTGRES_URL is not set")
	}
	mk := func(t *testing.T, opts Options) *fixture { return fixtureOn(t, url, opts) }
	for name, run := range map[string]func(*testing.T, mkFixture){
		"redeem totp": testRedeemTOTP, "redeem token": testRedeemToken, "recovery code": testRecoveryCodeSingleUse,
		"user throttle": testUserThrottle, "parallel same code": testParallelSameCode, "disable": testDisable,
	} {
		t.Run(name, func(t *testing.T) { run(t, mk) })
	}
}
