package ban_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gatehouse-dev/gatehouse/internal/ban"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/redis/go-redis/v9"
)

func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "g.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestNormalize(t *testing.T) {
	cases := []struct {
		kind, in, want string
		ok             bool
	}{
		{store.BanIP, "192.0.2.1", "192.0.2.1", true},
		{store.BanIP, "::ffff:192.0.2.1", "192.0.2.1", true},
		{store.BanIP, "2001:DB8::1", "2001:db8::1", true},
		{store.BanIP, "fe80::1%eth0", "fe80::1", true},
		{store.BanIP, "192.0.2.0/24", "", false},
		{store.BanIP, "example.com", "", false},
		{store.BanIP, "", "", false},
		{store.BanUser, "u-123", "u-123", true},
		{store.BanUser, "u 1", "", false},
		{store.BanUser, "u\n1", "", false},
		{store.BanSession, string(make([]byte, 257)), "", false},
		{"country", "NL", "", false},
	}
	for _, tc := range cases {
		got, err := ban.Normalize(tc.kind, tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("Normalize(%q, %q) = %q, %v; want %q ok=%v", tc.kind, tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ban.ErrInvalid) {
			t.Errorf("Normalize(%q, %q): error %v is not ErrInvalid", tc.kind, tc.in, err)
		}
	}
}

func TestAddCheckLiftExpire(t *testing.T) {
	c := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := ban.New(ban.Options{Store: openStore(t), Now: c.Now})
	ctx := t.Context()
	if _, ok := l.Check("192.0.2.1", "u1", "s1"); ok {
		t.Fatal("empty list bans")
	}
	ipBan, err := l.Add(ctx, store.Ban{Kind: store.BanIP, Value: "::ffff:192.0.2.1", Reason: "test", ExpiresAt: c.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if ipBan.Value != "192.0.2.1" || ipBan.ID == "" {
		t.Fatalf("ban not normalised: %+v", ipBan)
	}
	userBan, err := l.Add(ctx, store.Ban{Kind: store.BanUser, Value: "u1", ExpiresAt: c.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Add(ctx, store.Ban{Kind: store.BanSession, Value: "s1", ExpiresAt: c.Now().Add(31 * 24 * time.Hour)}); !errors.Is(err, ban.ErrInvalid) {
		t.Fatalf("a 31-day ban: %v", err)
	}
	if _, err := l.Add(ctx, store.Ban{Kind: store.BanSession, Value: "s1", ExpiresAt: c.Now()}); !errors.Is(err, ban.ErrInvalid) {
		t.Fatalf("a zero-length ban: %v", err)
	}
	checks := []struct {
		ip, user, sess string
		want           string
	}{
		{"192.0.2.1", "", "", ipBan.ID},
		{"192.0.2.2", "u1", "", userBan.ID},
		{"192.0.2.2", "u2", "s1", ""},
		{"", "", "", ""},
	}
	for _, ch := range checks {
		b, ok := l.Check(ch.ip, ch.user, ch.sess)
		if (ch.want != "") != ok || b.ID != ch.want {
			t.Errorf("Check(%q,%q,%q) = %q,%v; want %q", ch.ip, ch.user, ch.sess, b.ID, ok, ch.want)
		}
	}
	if n := l.Len(); n != 2 {
		t.Fatalf("Len = %d", n)
	}
	c.add(time.Minute) // the IP ban ends exactly now
	if _, ok := l.Check("192.0.2.1", "", ""); ok {
		t.Fatal("expired ban still applies")
	}
	if _, err := l.Lift(ctx, userBan.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Check("", "u1", ""); ok {
		t.Fatal("lifted ban still applies")
	}
	if _, err := l.Lift(ctx, userBan.ID); !errors.Is(err, ban.ErrNotFound) {
		t.Fatalf("lift twice: %v", err)
	}
	if _, err := l.Lift(ctx, "no-such-ban"); !errors.Is(err, ban.ErrNotFound) {
		t.Fatalf("lift unknown: %v", err)
	}
}

// TestStorePoll: a ban made by another process (another List on the same
// store, without Redis) reaches this one through Run's poll, and so does its lift.
func TestStorePoll(t *testing.T) {
	db := openStore(t)
	other := ban.New(ban.Options{Store: db})
	pre, err := other.Add(t.Context(), store.Ban{Kind: store.BanIP, Value: "198.51.100.1", ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	l := ban.New(ban.Options{Store: db, PollInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, func() bool { _, ok := l.Check("198.51.100.1", "", ""); return ok }) // loaded at start
	b, err := other.Add(t.Context(), store.Ban{Kind: store.BanUser, Value: "u9", ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, ok := l.Check("", "u9", ""); return ok })
	for _, id := range []string{b.ID, pre.ID} {
		if _, err := other.Lift(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return l.Len() == 0 })
}

func redisClients(t *testing.T, n int) []redis.UniversalClient {
	var opt *redis.Options
	if u := os.Getenv("GATEHOUSE_TEST_REDIS_URL"); u != "" {
		var err error
		if opt, err = redis.ParseURL(u); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Log("GATEHOUSE_TEST_REDIS_URL not set; using miniredis")
		opt = &redis.Options{Addr: miniredis.RunT(t).Addr()}
	}
	out := make([]redis.UniversalClient, n)
	for i := range out {
		c := redis.NewClient(opt)
		t.Cleanup(func() { c.Close() })
		out[i] = c
	}
	return out
}

// TestRedisPropagation: two replicas on separate stores (so only Redis can
// carry it) see each other's bans and lifts.
func TestRedisPropagation(t *testing.T) {
	ch := "gatehouse:test:bans:" + time.Now().Format("150405.000000000")
	rc := redisClients(t, 2)
	a := ban.New(ban.Options{Store: openStore(t), Redis: rc[0], Channel: ch, PollInterval: time.Hour})
	b := ban.New(ban.Options{Store: openStore(t), Redis: rc[1], Channel: ch, PollInterval: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { a.Run(ctx) })
	wg.Go(func() { b.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	var last store.Ban
	// Ban until B has subscribed and heard one (subscription is asynchronous).
	waitFor(t, func() bool {
		var err error
		if last, err = a.Add(t.Context(), store.Ban{Kind: store.BanIP, Value: "203.0.113.9", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		_, ok := b.Check("203.0.113.9", "", "")
		return ok
	})
	for _, x := range a.Active() {
		if _, err := a.Lift(t.Context(), x.ID); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { _, ok := b.Check("203.0.113.9", "", ""); return !ok })
	if last.ID == "" {
		t.Fatal("no ban made")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func BenchmarkCheckEmpty(b *testing.B) {
	l := ban.New(ban.Options{})
	for b.Loop() {
		l.Check("192.0.2.1", "u1", "s1")
	}
}

func BenchmarkCheckMiss(b *testing.B) {
	db, err := store.Open(b.Context(), "sqlite://"+filepath.Join(b.TempDir(), "g.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	l := ban.New(ban.Options{Store: db})
	for i := range 100 {
		if _, err := l.Add(b.Context(), store.Ban{Kind: store.BanUser, Value: "u" + string(rune('a'+i%26)) + string(rune('a'+i/26)), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		l.Check("192.0.2.1", "u1", "s1")
	}
}
