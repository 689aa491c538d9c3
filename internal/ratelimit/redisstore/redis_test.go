package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
	"github.com/gatehouse-dev/gatehouse/internal/ratelimit/ratelimittest"
	"github.com/gatehouse-dev/gatehouse/internal/ratelimit/redisstore"
)

// miniClock drives miniredis's TIME (and, with ClockTTL, its key expiry).
type miniClock struct {
	mr *miniredis.Miniredis
	c  *ratelimittest.FakeClock
}

func (m miniClock) Now() time.Time { return m.c.Now() }

func (m miniClock) Advance(d time.Duration) {
	m.c.Advance(d)
	m.mr.SetTime(m.c.Now())
}

func newMini(t *testing.T) (*miniredis.Miniredis, *redis.Client, miniClock) {
	t.Helper()
	mr := miniredis.RunT(t)
	mr.SetTime(ratelimittest.Start)
	mr.ClockTTL(true)
	client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { client.Close() })
	return mr, client, miniClock{mr: mr, c: ratelimittest.NewFakeClock(ratelimittest.Start)}
}

func newStore(t testing.TB, client redis.UniversalClient, prefix string) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(client, redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMiniredisConformance(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T) (ratelimit.Store, ratelimittest.Clock) {
		_, client, clock := newMini(t)
		return newStore(t, client, ""), clock
	})
}

// realRedis returns a client for GATEHOUSE_TEST_REDIS_URL and a prefix unique
// to this test, deleting the test's keys afterwards.
func realRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	url := os.Getenv("GATEHOUSE_TEST_REDIS_URL")
	if url == "" {
		t.Skip("GATEHOUSE_TEST_REDIS_URL is not set; the Redis store is tested against miniredis only (set it, e.g. redis://127.0.0.1:6379/0, to test a real server)")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("GATEHOUSE_TEST_REDIS_URL: %v", err)
	}
	client := redis.NewClient(opts)
	prefix := "gatehouse-test:rl:" + randomHex(t) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
		client.Close()
	})
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("GATEHOUSE_TEST_REDIS_URL is set but Redis does not answer: %v", err)
	}
	return client, prefix
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func TestRealRedisConformance(t *testing.T) {
	realRedis(t) // skips with a reason when unset
	ratelimittest.Run(t, func(t *testing.T) (ratelimit.Store, ratelimittest.Clock) {
		client, prefix := realRedis(t)
		return newStore(t, client, prefix), nil
	})
}

func TestNewRejectsNilClient(t *testing.T) {
	if _, err := redisstore.New(nil, redisstore.Options{}); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}

// TestKeysExpire checks the key layout and that every key written carries a
// TTL matching the state it holds, so idle keys disappear.
func TestKeysExpire(t *testing.T) {
	mr, client, clock := newMini(t)
	s := newStore(t, client, "p:")
	ctx := context.Background()
	l := ratelimit.Limit{Count: 10, Period: time.Minute} // 6 s each
	if _, err := s.AllowGCRA(ctx, "k", l, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AllowWindow(ctx, "k", 5, time.Hour, 1); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 1000)
	if _, err := s.AllowGCRA(ctx, long, l, 1); err != nil {
		t.Fatal(err)
	}
	keys := mr.Keys()
	if len(keys) != 3 {
		t.Fatalf("keys = %q, want 3", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "p:") || len(k) > 300 {
			t.Errorf("key %q: want prefix p: and a bounded length", k)
		}
	}
	if got := mr.TTL("p:g:k"); got != 18*time.Second {
		t.Errorf("GCRA key TTL = %v, want 18s (3 × 6 s until full)", got)
	}
	wantWindow := time.Hour - time.Duration(clock.Now().UnixMicro()%time.Hour.Microseconds())*time.Microsecond
	wantWindow = wantWindow.Round(time.Millisecond)
	if got := mr.TTL("p:w:k"); got < wantWindow-time.Millisecond || got > wantWindow+time.Millisecond {
		t.Errorf("window key TTL = %v, want about %v (until the hour boundary)", got, wantWindow)
	}
	clock.Advance(time.Hour)
	if _, err := client.Exists(ctx, "p:g:k").Result(); err != nil {
		t.Fatal(err)
	}
	if keys := mr.Keys(); len(keys) != 0 {
		t.Errorf("after an hour idle, keys %q remain", keys)
	}
}

func TestRealRedisKeysExpire(t *testing.T) {
	client, prefix := realRedis(t)
	s := newStore(t, client, prefix)
	ctx := context.Background()
	if _, err := s.AllowGCRA(ctx, "k", ratelimit.Limit{Count: 10, Period: time.Minute}, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AllowWindow(ctx, "k", 5, time.Hour, 1); err != nil {
		t.Fatal(err)
	}
	for key, most := range map[string]time.Duration{prefix + "g:k": 18 * time.Second, prefix + "w:k": time.Hour} {
		ttl, err := client.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 || ttl > most {
			t.Errorf("PTTL(%s) = %v, want in (0, %v]", key, ttl, most)
		}
	}
}

// TestScriptReloadedAfterFlush checks the EVALSHA → EVAL fallback: after the
// server forgets its scripts, decisions still work.
func TestScriptReloadedAfterFlush(t *testing.T) {
	_, client, _ := newMini(t)
	s := newStore(t, client, "")
	ctx := context.Background()
	if err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if d, err := s.AllowGCRA(ctx, "k", ratelimit.Limit{Count: 1, Period: time.Hour}, 1); err != nil || !d.Allowed {
		t.Fatalf("after SCRIPT FLUSH: %+v, %v", d, err)
	}
	if d, err := s.AllowWindow(ctx, "k", 1, time.Hour, 1); err != nil || !d.Allowed {
		t.Fatalf("after SCRIPT FLUSH: %+v, %v", d, err)
	}
}

func TestServerDownIsAnError(t *testing.T) {
	mr := miniredis.RunT(t)
	client := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { client.Close() })
	s := newStore(t, client, "")
	mr.Close()
	ctx := context.Background()
	if _, err := s.AllowGCRA(ctx, "k", ratelimit.Limit{Count: 1, Period: time.Hour}, 1); err == nil || !strings.HasPrefix(err.Error(), "redisstore: gcra: ") {
		t.Errorf("AllowGCRA with the server down: err = %v, want a wrapped redisstore error", err)
	}
	if _, err := s.AllowWindow(ctx, "k", 1, time.Hour, 1); err == nil || !strings.HasPrefix(err.Error(), "redisstore: window: ") {
		t.Errorf("AllowWindow with the server down: err = %v, want a wrapped redisstore error", err)
	}
}

func TestServerErrorSurfaces(t *testing.T) {
	mr, client, _ := newMini(t)
	s := newStore(t, client, "")
	l := ratelimit.Limit{Count: 1, Period: time.Hour}
	if _, err := s.AllowGCRA(context.Background(), "k", l, 1); err != nil {
		t.Fatal(err)
	}
	mr.SetError("ERR injected failure")
	for name, call := range map[string]func() error{
		"gcra":   func() error { _, err := s.AllowGCRA(context.Background(), "k", l, 1); return err },
		"window": func() error { _, err := s.AllowWindow(context.Background(), "k", 1, time.Hour, 1); return err },
	} {
		err := call()
		var rerr redis.Error
		if !errors.As(err, &rerr) || !strings.Contains(err.Error(), "injected failure") {
			t.Errorf("%s: err = %v, want the server's error, unwrapping to a redis.Error", name, err)
		}
	}
}

// TestAgreesWithMemory drives the memory store and the Redis script with the
// same clock and the same request sequence, and requires identical decisions.
func TestAgreesWithMemory(t *testing.T) {
	_, client, clock := newMini(t)
	rs := newStore(t, client, "")
	ms := ratelimit.NewMemory(ratelimit.MemoryOptions{Now: clock.Now})
	ctx := context.Background()
	limits := []ratelimit.Limit{
		{Count: 3, Period: time.Second},
		{Count: 7, Period: 24 * time.Hour},
		{Count: 10, Period: time.Minute, Burst: 25},
		{Count: 1000, Period: time.Second, Burst: 1},
	}
	steps := []time.Duration{0, 1, 333_333 * time.Microsecond, 17 * time.Millisecond, time.Second, 0, 3 * time.Hour, 5 * time.Microsecond}
	for i := range 400 {
		l := limits[i%len(limits)]
		n := min(int64(i%3), l.EffectiveBurst())
		md, merr := ms.AllowGCRA(ctx, "k", l, n)
		rd, rerr := rs.AllowGCRA(ctx, "k", l, n)
		if merr != nil || rerr != nil || md != rd {
			t.Fatalf("step %d GCRA %v cost %d: memory %+v %v, redis %+v %v", i, l, n, md, merr, rd, rerr)
		}
		w := []time.Duration{time.Second, 7 * time.Minute, 24 * time.Hour}[i%3]
		md, merr = ms.AllowWindow(ctx, "k", 5, w, n)
		rd, rerr = rs.AllowWindow(ctx, "k", 5, w, n)
		if merr != nil || rerr != nil || md != rd {
			t.Fatalf("step %d window %v cost %d: memory %+v %v, redis %+v %v", i, w, n, md, merr, rd, rerr)
		}
		clock.Advance(steps[i%len(steps)])
	}
}

// TestLimiterFallsBackWhenRedisDies wires the pieces as the gateway does: a
// Limiter over this store with the local policy keeps limiting, per process,
// after Redis goes away, and reports each failure.
func TestLimiterFallsBackWhenRedisDies(t *testing.T) {
	mr := miniredis.RunT(t)
	client := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { client.Close() })
	var failures []string
	l, err := ratelimit.New(newStore(t, client, ""), ratelimit.Options{
		OnError: func(policy string, err error) { failures = append(failures, policy) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	two := ratelimit.Limit{Count: 2, Period: time.Hour}
	if d, err := l.AllowGCRA(ctx, "k", two, 1); err != nil || !d.Allowed || d.Remaining != 1 {
		t.Fatalf("with Redis up: %+v, %v", d, err)
	}
	mr.Close()
	got := []bool{}
	for range 3 {
		d, err := l.AllowGCRA(ctx, "k", two, 1)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, d.Allowed)
	}
	// The fallback starts empty: it knows nothing of the request Redis counted.
	if want := []bool{true, true, false}; !slices.Equal(got, want) {
		t.Errorf("with Redis down: allowed %v, want %v", got, want)
	}
	if want := []string{"local", "local", "local"}; !slices.Equal(failures, want) {
		t.Errorf("OnError policies %v, want %v", failures, want)
	}
}
