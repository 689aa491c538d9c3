package token_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	db     *store.DB
	sealer *keys.Sealer
	ring   *keys.Ring
	clk    *clock
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	kek, err := keys.LoadKEK("env://K", func(string) string { return base64.StdEncoding.EncodeToString(raw[:]) })
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := keys.NewSealer(kek)
	ring, err := keys.NewRing(ctx, db, s, keys.RingOptions{Now: clk.Now, RetireAfter: 20 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{db: db, sealer: s, ring: ring, clk: clk}
}

func (f *fixture) access(t testing.TB) *token.Access {
	a, err := token.NewAccess(f.ring, f.ring, token.AccessOptions{Issuer: "https://gh.test", Audience: []string{"app"}, Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (f *fixture) families(leeway time.Duration) *token.Families {
	return token.NewFamilies(f.db, f.sealer, token.FamilyOptions{Leeway: leeway, Now: f.clk.Now, IdleTTL: time.Hour, AbsoluteTTL: 3 * time.Hour})
}

func TestAccessMintVerify(t *testing.T) {
	f := newFixture(t)
	a := f.access(t)
	tok, c, err := a.Mint(token.Subject{UserID: "u1", SessionID: "s1", Roles: []string{"admin"}, Plan: "free", AMR: []string{"pwd"}, Scope: "api"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != "u1" || got.SessionID != "s1" || got.Plan != "free" || got.Roles[0] != "admin" || got.ID != c.ID || got.Expiry-got.IssuedAt != 900 {
		t.Fatalf("claims %+v", got)
	}

	other, _ := token.NewAccess(f.ring, f.ring, token.AccessOptions{Issuer: "https://other", Audience: []string{"app"}, Now: f.clk.Now})
	otherAud, _ := token.NewAccess(f.ring, f.ring, token.AccessOptions{Issuer: "https://gh.test", Audience: []string{"x"}, Now: f.clk.Now})
	parts := strings.Split(tok, ".")
	flipped := []byte(parts[2])
	flipped[5] ^= 1
	cases := map[string]struct {
		a   *token.Access
		tok string
	}{
		"wrong issuer":     {other, tok},
		"wrong audience":   {otherAud, tok},
		"bad signature":    {a, parts[0] + "." + parts[1] + "." + string(flipped)},
		"alg none":         {a, b64(`{"alg":"none","typ":"at+jwt"}`) + "." + parts[1] + "."},
		"not at+jwt":       {a, b64(`{"alg":"ES256","typ":"JWT","kid":"x"}`) + "." + parts[1] + "." + parts[2]},
		"refresh as token": {a, "ghr_" + strings.Repeat("A", 43)},
		"garbage":          {a, "a.b.c"},
		"empty":            {a, ""},
		"huge":             {a, strings.Repeat("a", 9000) + ".b.c"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := c.a.Verify(c.tok); !errors.Is(err, token.ErrInvalidToken) {
				t.Fatalf("Verify = %v, want ErrInvalidToken", err)
			}
		})
	}
	f.clk.Add(16 * time.Minute)
	if _, err := a.Verify(tok); !errors.Is(err, token.ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

var userSeq atomic.Int32

func start(t *testing.T, f *fixture, fam *token.Families) (*store.Session, string) {
	t.Helper()
	id := "u-" + strings.Repeat("x", int(userSeq.Add(1)))
	u := &store.User{ID: id, EmailIndex: []byte(id), EmailSealed: []byte("x"), Roles: []string{}, CreatedAt: f.clk.Now(), UpdatedAt: f.clk.Now()}
	if err := f.db.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	s, rt, err := fam.Start(context.Background(), token.Login{UserID: u.ID, AMR: []string{"pwd"}})
	if err != nil {
		t.Fatal(err)
	}
	return s, rt
}

func TestRefreshRotationAndReuse(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	fam := f.families(10 * time.Second)
	_, r1 := start(t, f, fam)

	res, err := fam.Refresh(ctx, r1)
	if err != nil || res.Replayed || res.Token == r1 {
		t.Fatalf("first refresh: %v %+v", err, res)
	}
	r2 := res.Token

	// Inside the leeway, the previous token gets the same successor.
	f.clk.Add(5 * time.Second)
	again, err := fam.Refresh(ctx, r1)
	if err != nil || !again.Replayed || again.Token != r2 {
		t.Fatalf("leeway replay: %v %+v", err, again)
	}
	// The successor still works and rotates.
	res3, err := fam.Refresh(ctx, r2)
	if err != nil {
		t.Fatal(err)
	}
	// r1 is now two generations back: reuse, even inside 10s of its rotation.
	if _, err := fam.Refresh(ctx, r1); !errors.Is(err, token.ErrReused) {
		t.Fatalf("grandparent: %v, want ErrReused", err)
	}
	// The whole family is dead, including the newest token.
	if _, err := fam.Refresh(ctx, res3.Token); !errors.Is(err, token.ErrInvalidGrant) {
		t.Fatalf("after family revocation: %v", err)
	}
}

func TestRefreshReuseAfterLeeway(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	fam := f.families(10 * time.Second)
	sess, r1 := start(t, f, fam)
	res, err := fam.Refresh(ctx, r1)
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Add(11 * time.Second)
	if _, err := fam.Refresh(ctx, r1); !errors.Is(err, token.ErrReused) {
		t.Fatalf("after leeway: %v, want ErrReused", err)
	}
	if _, err := fam.Refresh(ctx, res.Token); !errors.Is(err, token.ErrInvalidGrant) {
		t.Fatalf("successor after reuse: %v", err)
	}
	s, _ := f.db.SessionByID(ctx, sess.ID)
	if s.RevokedAt == nil || s.RevokeReason != "refresh_token_reused" {
		t.Fatalf("session not revoked: %+v", s)
	}
}

func TestRefreshLeewayDisabled(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	fam := f.families(-1)
	_, r1 := start(t, f, fam)
	if _, err := fam.Refresh(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if _, err := fam.Refresh(ctx, r1); !errors.Is(err, token.ErrReused) {
		t.Fatalf("no leeway: %v", err)
	}
}

func TestRefreshExpiry(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	fam := f.families(10 * time.Second)
	_, r := start(t, f, fam)
	// Used every 50 minutes, the family lives until its absolute end (3h).
	for i := 0; i < 3; i++ {
		f.clk.Add(50 * time.Minute)
		res, err := fam.Refresh(ctx, r)
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		r = res.Token
	}
	f.clk.Add(31 * time.Minute) // 3h01m after login
	if _, err := fam.Refresh(ctx, r); !errors.Is(err, token.ErrInvalidGrant) {
		t.Fatalf("absolute expiry: %v", err)
	}

	_, r = start(t, f, f.families(10*time.Second))
	f.clk.Add(61 * time.Minute) // idle for more than 1h
	if _, err := fam.Refresh(ctx, r); !errors.Is(err, token.ErrInvalidGrant) {
		t.Fatalf("idle expiry: %v", err)
	}
}

func TestRefreshMalformed(t *testing.T) {
	f := newFixture(t)
	fam := f.families(0)
	for _, s := range []string{"", "ghr_", "ghr_short", strings.Repeat("x", 47), "eyJhbGciOiJFUzI1NiJ9.e30.sig", "ghr_" + strings.Repeat("A", 43)} {
		if _, err := fam.Refresh(context.Background(), s); !errors.Is(err, token.ErrInvalidGrant) {
			t.Errorf("Refresh(%q) = %v, want ErrInvalidGrant", s, err)
		}
	}
}

// Twenty concurrent refreshes with one token: one rotation, every other caller
// gets that same successor (leeway) — never two live successors, never an error.
func TestRefreshConcurrent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	fam := f.families(10 * time.Second)
	sess, r1 := start(t, f, fam)
	var wg sync.WaitGroup
	var errs atomic.Int32
	toks := make([]string, 20)
	for i := range toks {
		wg.Go(func() {
			res, err := fam.Refresh(ctx, r1)
			if err != nil {
				errs.Add(1)
				t.Errorf("refresh %d: %v", i, err)
				return
			}
			toks[i] = res.Token
		})
	}
	wg.Wait()
	if errs.Load() > 0 {
		t.FailNow()
	}
	for _, tk := range toks {
		if tk != toks[0] {
			t.Fatalf("two different successors: %s… and %s…", tk[:10], toks[0][:10])
		}
	}
	s, _ := f.db.SessionByID(ctx, sess.ID)
	if s.Generation != 2 {
		t.Fatalf("generation %d, want 2 (exactly one rotation)", s.Generation)
	}
}

func BenchmarkAccessVerify(b *testing.B) {
	f := newFixture(b)
	a := f.access(b)
	tok, _, err := a.Mint(token.Subject{UserID: "u1", SessionID: "s1", Roles: []string{"admin"}, Plan: "free", AMR: []string{"pwd"}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAccessMint(b *testing.B) {
	f := newFixture(b)
	a := f.access(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := a.Mint(token.Subject{UserID: "u1", SessionID: "s1", Plan: "free"}); err != nil {
			b.Fatal(err)
		}
	}
}
