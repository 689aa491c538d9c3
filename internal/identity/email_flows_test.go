package identity_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/mailer"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// fakeSealer "seals" by prefixing (the store is real; sealing has its own tests)
// and indexes with HMAC-SHA256 under a fixed key.
type fakeSealer struct{}

func (fakeSealer) Seal(purpose string, pt []byte, aad ...string) ([]byte, error) {
	return append([]byte(purpose+"|"+strings.Join(aad, "|")+"|"), pt...), nil
}

func (fakeSealer) Open(purpose string, sealed []byte, aad ...string) ([]byte, error) {
	p := []byte(purpose + "|" + strings.Join(aad, "|") + "|")
	if len(sealed) < len(p) || string(sealed[:len(p)]) != string(p) {
		return nil, errors.New("wrong aad")
	}
	return sealed[len(p):], nil
}

func (fakeSealer) Index(purpose string, v []byte) []byte {
	m := hmac.New(sha256.New, []byte("test-index-key"))
	m.Write([]byte(purpose))
	m.Write(v)
	return m.Sum(nil)
}

type plainHasher struct{}

func (plainHasher) Hash(_ context.Context, pw string) (string, error) { return "plain$" + pw, nil }
func (plainHasher) Verify(_ context.Context, pw, enc string) (bool, bool, error) {
	return enc == "plain$"+pw, false, nil
}
func (plainHasher) VerifyDummy(context.Context, string) error { return nil }

type events struct {
	mu sync.Mutex
	l  []store.Event
}

func (e *events) Record(_ context.Context, ev store.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.l = append(e.l, ev)
}

func (e *events) types() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.l {
		out = append(out, ev.Type)
	}
	return out
}

type outbox struct {
	mu sync.Mutex
	l  []mailer.Message
}

func (o *outbox) Enqueue(m mailer.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.l = append(o.l, m)
	return nil
}

func (o *outbox) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.l)
}

func (o *outbox) last(t *testing.T) mailer.Message {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.l) == 0 {
		t.Fatal("no mail")
	}
	return o.l[len(o.l)-1]
}

type revocations struct {
	mu  sync.Mutex
	ids []string
}

func (r *revocations) Revoke(_ context.Context, ids []string, _ time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, ids...)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	db    *store.DB
	acc   *identity.Service
	flows *identity.EmailFlows
	mail  *outbox
	ev    *events
	rev   *revocations
	clock *clock
}

var meta = identity.Meta{IP: "192.0.2.1", RequestID: "req-1"}

func newFixture(t *testing.T, o identity.EmailOptions) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "g.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, mail: &outbox{}, ev: &events{}, rev: &revocations{}, clock: &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	f.acc = identity.New(db, db, plainHasher{}, password.DefaultPolicy(), fakeSealer{}, f.ev, identity.Options{
		DefaultPlan: "free", AccountFailures: 2, Now: f.clock.now, Revocations: f.rev,
	})
	if o.VerifyURL == "" {
		o.VerifyURL = "https://app.example.com/verify?src=mail"
	}
	if o.ResetURL == "" {
		o.ResetURL = "https://app.example.com/reset"
	}
	f.flows = identity.NewEmailFlows(f.acc, db, db, f.mail, o)
	return f
}

func (f *fixture) user(t *testing.T, email string) *store.User {
	t.Helper()
	u, err := f.acc.Create(context.Background(), email, "correct horse battery", nil, "", meta)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (f *fixture) reload(t *testing.T, id string) *store.User {
	t.Helper()
	u, err := f.acc.User(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

var codeRe = regexp.MustCompile(`(?m)^    (\d{8})$`)

// linkAndCode reads the token from the mail's link and the 8-digit code.
func linkAndCode(t *testing.T, m mailer.Message) (tok, code string) {
	t.Helper()
	i := strings.Index(m.Text, "https://")
	if i < 0 {
		t.Fatalf("no link in %q", m.Text)
	}
	link := strings.Fields(m.Text[i:])[0]
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	tok = u.Query().Get("token")
	c := codeRe.FindStringSubmatch(m.Text)
	if tok == "" || c == nil {
		t.Fatalf("no token or code in %q", m.Text)
	}
	return tok, c[1]
}

func wrongCode(code string) string {
	if code == "00000000" {
		return "00000001"
	}
	return "00000000"
}

func TestVerifyByLinkAndByCode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, identity.EmailOptions{})
	u := f.user(t, "ann@example.com")

	if err := f.flows.SendVerification(ctx, " Ann@Example.com ", meta); err != nil {
		t.Fatal(err)
	}
	m := f.mail.last(t)
	if m.To != "ann@example.com" || m.Kind != "verify" {
		t.Fatalf("mail %+v", m)
	}
	tok, _ := linkAndCode(t, m)
	if !strings.Contains(m.Text, "https://app.example.com/verify?src=mail&token=") {
		t.Fatalf("link does not keep the configured query: %q", m.Text)
	}
	if err := f.flows.VerifyEmail(ctx, identity.Proof{Token: tok}, meta); err != nil {
		t.Fatal(err)
	}
	if !f.reload(t, u.ID).EmailVerified {
		t.Fatal("not verified")
	}
	// Replayed link.
	if err := f.flows.VerifyEmail(ctx, identity.Proof{Token: tok}, meta); !errors.Is(err, identity.ErrInvalidCode) {
		t.Fatalf("replayed token: %v", err)
	}
	// Already verified: 202-equivalent, no mail.
	n := f.mail.count()
	if err := f.flows.SendVerification(ctx, "ann@example.com", meta); err != nil || f.mail.count() != n {
		t.Fatalf("already verified: err %v, mails %d → %d", err, n, f.mail.count())
	}

	// By code, with a wrong code first (counted, not fatal), then replay.
	v := f.user(t, "bob@example.com")
	if err := f.flows.SendVerificationTo(ctx, v.ID, meta); err != nil {
		t.Fatal(err)
	}
	_, code := linkAndCode(t, f.mail.last(t))
	if err := f.flows.VerifyEmail(ctx, identity.Proof{Email: "bob@example.com", Code: wrongCode(code)}, meta); !errors.Is(err, identity.ErrInvalidCode) {
		t.Fatalf("wrong code: %v", err)
	}
	if f.reload(t, v.ID).EmailVerified {
		t.Fatal("a wrong code verified the address")
	}
	if err := f.flows.VerifyEmail(ctx, identity.Proof{Email: "BOB@example.com", Code: code}, meta); err != nil {
		t.Fatal(err)
	}
	if !f.reload(t, v.ID).EmailVerified {
		t.Fatal("not verified by code")
	}
	if err := f.flows.VerifyEmail(ctx, identity.Proof{Email: "bob@example.com", Code: code}, meta); !errors.Is(err, identity.ErrInvalidCode) {
		t.Fatalf("replayed code: %v", err)
	}
	assertNoSecrets(t, f.ev, "ann@example.com", "bob@example.com", tok, code)
	for _, want := range []string{audit.EmailVerificationSent, audit.EmailVerified, audit.EmailVerificationFailed} {
		if !contains(f.ev.types(), want) {
			t.Errorf("no %s event in %v", want, f.ev.types())
		}
	}
}

func TestBadProofsChangeNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, f *fixture, tok, code string) identity.Proof
	}{
		{"malformed token", func(*testing.T, *fixture, string, string) identity.Proof { return identity.Proof{Token: "not-a-token"} }},
		{"unknown token", func(*testing.T, *fixture, string, string) identity.Proof {
			return identity.Proof{Token: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
		}},
		{"short code", func(_ *testing.T, _ *fixture, _, code string) identity.Proof {
			return identity.Proof{Email: "cat@example.com", Code: code[:7]}
		}},
		{"code of another address", func(_ *testing.T, _ *fixture, _, code string) identity.Proof {
			return identity.Proof{Email: "dog@example.com", Code: code}
		}},
		{"expired token", func(_ *testing.T, f *fixture, tok, _ string) identity.Proof {
			f.clock.add(15*time.Minute + time.Second)
			return identity.Proof{Token: tok}
		}},
		{"expired code", func(_ *testing.T, f *fixture, _, code string) identity.Proof {
			f.clock.add(15*time.Minute + time.Second)
			return identity.Proof{Email: "cat@example.com", Code: code}
		}},
		{"attempts exhausted, then the right code", func(t *testing.T, f *fixture, _, code string) identity.Proof {
			for range 5 {
				if err := f.flows.VerifyEmail(ctx, identity.Proof{Email: "cat@example.com", Code: wrongCode(code)}, meta); !errors.Is(err, identity.ErrInvalidCode) {
					t.Fatal(err)
				}
			}
			return identity.Proof{Email: "cat@example.com", Code: code}
		}},
		{"attempts exhausted, then the link", func(t *testing.T, f *fixture, tok, code string) identity.Proof {
			for range 5 {
				if err := f.flows.VerifyEmail(ctx, identity.Proof{Email: "cat@example.com", Code: wrongCode(code)}, meta); !errors.Is(err, identity.ErrInvalidCode) {
					t.Fatal(err)
				}
			}
			return identity.Proof{Token: tok}
		}},
		{"superseded by a newer mail", func(t *testing.T, f *fixture, tok, _ string) identity.Proof {
			if err := f.flows.SendVerification(ctx, "cat@example.com", meta); err != nil {
				t.Fatal(err)
			}
			return identity.Proof{Token: tok}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, identity.EmailOptions{})
			u := f.user(t, "cat@example.com")
			f.user(t, "dog@example.com")
			if err := f.flows.SendVerification(ctx, "cat@example.com", meta); err != nil {
				t.Fatal(err)
			}
			tok, code := linkAndCode(t, f.mail.last(t))
			p := tt.run(t, f, tok, code)
			if err := f.flows.VerifyEmail(ctx, p, meta); !errors.Is(err, identity.ErrInvalidCode) {
				t.Fatalf("got %v, want ErrInvalidCode", err)
			}
			if f.reload(t, u.ID).EmailVerified {
				t.Fatal("verified by a bad proof")
			}
		})
	}
}

func TestSendAnswersNeverRevealAccounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, identity.EmailOptions{PerAddress: identity.Rate{Count: 2, Period: time.Hour}, PerIP: identity.Rate{Count: 6, Period: time.Hour}})
	f.user(t, "eve@example.com")
	// Unknown address: same answer, no mail.
	if err := f.flows.ForgotPassword(ctx, "nobody@example.com", meta); err != nil || f.mail.count() != 0 {
		t.Fatalf("unknown: %v, %d mails", err, f.mail.count())
	}
	if err := f.flows.SendVerification(ctx, "nobody@example.com", meta); err != nil || f.mail.count() != 0 {
		t.Fatalf("unknown: %v, %d mails", err, f.mail.count())
	}
	if err := f.flows.ForgotPassword(ctx, "not an address", meta); !errors.Is(err, identity.ErrInvalidEmail) {
		t.Fatalf("malformed: %v", err)
	}
	// Per address: the third mail within the hour is not sent, the answer is the same.
	for i := range 3 {
		if err := f.flows.ForgotPassword(ctx, "eve@example.com", meta); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if n := f.mail.count(); n != 2 {
		t.Fatalf("%d mails, want 2 (per-address limit)", n)
	}
	// Per IP: 6 requests counted so far (including the malformed one); the 7th is refused.
	err := f.flows.ForgotPassword(ctx, "other@example.com", meta)
	var te *identity.ThrottledError
	if !errors.As(err, &te) || te.RetryAfter <= 0 {
		t.Fatalf("per ip: %v", err)
	}
	// Another IP is not affected; a new window lets the address receive mail again.
	f.clock.add(time.Hour)
	if err := f.flows.ForgotPassword(ctx, "eve@example.com", identity.Meta{IP: "192.0.2.2"}); err != nil || f.mail.count() != 3 {
		t.Fatalf("next window: %v, %d mails", err, f.mail.count())
	}
	assertNoSecrets(t, f.ev, "eve@example.com", "nobody@example.com", "other@example.com")
}

func TestResetPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, identity.EmailOptions{})
	u := f.user(t, "fay@example.com")
	sess := []string{"s1", "s2"}
	for i, id := range sess {
		now := f.clock.now()
		if err := f.db.CreateSession(ctx, &store.Session{ID: id, UserID: u.ID, CreatedAt: now, LastUsedAt: now, IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour)},
			&store.RefreshToken{Hash: []byte{byte(i), 1, 2, 3}, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	// Lock the account out with wrong passwords (AccountFailures 2).
	for range 3 {
		_, _ = f.acc.Login(ctx, "fay@example.com", "wrong password here", meta)
	}
	var te *identity.ThrottledError
	if _, err := f.acc.Login(ctx, "fay@example.com", "correct horse battery", meta); !errors.As(err, &te) {
		t.Fatalf("expected the lockout first: %v", err)
	}

	if err := f.flows.ForgotPassword(ctx, "fay@example.com", meta); err != nil {
		t.Fatal(err)
	}
	tok, code := linkAndCode(t, f.mail.last(t))
	// Weak password: refused before the code is touched, nothing changes.
	var pe *password.PolicyError
	if err := f.flows.ResetPassword(ctx, identity.Proof{Token: tok}, "password", meta); !errors.As(err, &pe) {
		t.Fatalf("weak password: %v", err)
	}
	if err := f.flows.ResetPassword(ctx, identity.Proof{Email: "fay@example.com", Code: code}, "my gatehouse 2026", meta); !errors.As(err, &pe) {
		t.Fatalf("password with the service name in it: %v", err)
	}
	if got := f.reload(t, u.ID).PasswordHash; got != "plain$correct horse battery" {
		t.Fatalf("hash changed: %q", got)
	}
	if c, err := f.db.LatestCode(ctx, store.CodePasswordReset, fakeSealer{}.Index("email", []byte("fay@example.com")), f.clock.now()); err != nil || c.Attempts != 0 {
		t.Fatalf("weak password spent an attempt: %+v %v", c, err)
	}
	if err := f.flows.ResetPassword(ctx, identity.Proof{Token: tok}, "a much better secret", meta); err != nil {
		t.Fatal(err)
	}
	got := f.reload(t, u.ID)
	if got.PasswordHash != "plain$a much better secret" || !got.EmailVerified {
		t.Fatalf("after reset: %+v", got)
	}
	for _, id := range sess {
		s, err := f.db.SessionByID(ctx, id)
		if err != nil || s.RevokedAt == nil {
			t.Fatalf("session %s not revoked: %+v %v", id, s, err)
		}
	}
	if len(f.rev.ids) != 2 {
		t.Fatalf("revocations published: %v", f.rev.ids)
	}
	// The lockout is cleared and the new password works at once.
	if _, err := f.acc.Login(ctx, "fay@example.com", "a much better secret", meta); err != nil {
		t.Fatalf("login after reset: %v", err)
	}
	// Replays: the link and its code are spent.
	if err := f.flows.ResetPassword(ctx, identity.Proof{Token: tok}, "another good secret", meta); !errors.Is(err, identity.ErrInvalidCode) {
		t.Fatalf("replayed link: %v", err)
	}
	if err := f.flows.ResetPassword(ctx, identity.Proof{Email: "fay@example.com", Code: code}, "another good secret", meta); !errors.Is(err, identity.ErrInvalidCode) {
		t.Fatalf("replayed code: %v", err)
	}
	notice := f.mail.last(t)
	if notice.Kind != "password_changed" || notice.To != "fay@example.com" {
		t.Fatalf("notice %+v", notice)
	}
	assertNoSecrets(t, f.ev, "fay@example.com", tok, code, "a much better secret")
	for _, want := range []string{audit.PasswordResetRequested, audit.PasswordResetCompleted, audit.PasswordResetFailed, audit.SessionRevoked} {
		if !contains(f.ev.types(), want) {
			t.Errorf("no %s event in %v", want, f.ev.types())
		}
	}
}

func TestSignupTakenSendsANotice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, identity.EmailOptions{})
	u := f.user(t, "gus@example.com")
	f.flows.SignupTaken(ctx, "gus@example.com", meta)
	m := f.mail.last(t)
	if m.Kind != "signup_existing" || m.To != "gus@example.com" || codeRe.MatchString(m.Text) {
		t.Fatalf("notice %+v", m)
	}
	f.flows.SignupCreated(ctx, u, meta)
	if m := f.mail.last(t); m.Kind != "verify" {
		t.Fatalf("signup mail %+v", m)
	}
}

func assertNoSecrets(t *testing.T, ev *events, secrets ...string) {
	t.Helper()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	for _, e := range ev.l {
		for k, v := range e.Detail {
			for _, s := range secrets {
				if s != "" && (strings.Contains(strings.ToLower(v), strings.ToLower(s)) || strings.Contains(k, s)) {
					t.Errorf("event %s detail %s carries a secret", e.Type, k)
				}
			}
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
