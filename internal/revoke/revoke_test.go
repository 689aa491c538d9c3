package revoke_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gatehouse-dev/gatehouse/internal/revoke"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/redis/go-redis/v9"
)

type fakeSource struct {
	mu   sync.Mutex
	list []store.RevokedSession
}

func (f *fakeSource) RevokedSince(_ context.Context, since time.Time, limit int) ([]store.RevokedSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.RevokedSession
	for _, r := range f.list {
		if !r.RevokedAt.Before(since) && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeSource) add(id string, at time.Time) {
	f.mu.Lock()
	f.list = append(f.list, store.RevokedSession{ID: id, RevokedAt: at})
	f.mu.Unlock()
}

func TestLocalAndExpiry(t *testing.T) {
	now := time.Unix(1000, 0)
	l := revoke.New(revoke.Options{TTL: time.Minute, Now: func() time.Time { return now }})
	l.Revoke(context.Background(), []string{"s1"}, time.Time{})
	if !l.IsRevoked("s1") || l.IsRevoked("s2") {
		t.Fatal("local revocation")
	}
	now = now.Add(61 * time.Second)
	if l.IsRevoked("s1") {
		t.Fatal("entry outlived its TTL")
	}
}

func TestSyncFromSource(t *testing.T) {
	now := time.Now()
	src := &fakeSource{}
	src.add("old", now.Add(-time.Hour))
	src.add("recent", now.Add(-time.Minute))
	l := revoke.New(revoke.Options{TTL: 20 * time.Minute, Source: src})
	next, err := l.Sync(context.Background(), now.Add(-20*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if l.IsRevoked("old") || !l.IsRevoked("recent") {
		t.Fatal("sync window")
	}
	if !next.Equal(now.Add(-time.Minute)) {
		t.Fatalf("next %v", next)
	}
}

// TestRunPicksUpStoreRevocations: a revocation written by another process
// (here: straight into the source) is listed within the poll interval.
func TestRunPicksUpStoreRevocations(t *testing.T) {
	src := &fakeSource{}
	l := revoke.New(revoke.Options{TTL: time.Minute, Source: src, PollInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	src.add("cli-revoked", time.Now())
	waitFor(t, func() bool { return l.IsRevoked("cli-revoked") })
}

// redisClients returns n clients of one Redis: the real server when
// GATEHOUSE_TEST_REDIS_URL is set, else one miniredis.
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

// TestRedisPropagation: two replicas sharing Redis; a revocation at A is listed
// at B without any store.
func TestRedisPropagation(t *testing.T) {
	ch := "gatehouse:test:revocations:" + t.Name() + time.Now().Format("150405.000000")
	rc := redisClients(t, 2)
	a := revoke.New(revoke.Options{TTL: time.Minute, Redis: rc[0], Channel: ch})
	b := revoke.New(revoke.Options{TTL: time.Minute, Redis: rc[1], Channel: ch})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { a.Run(ctx) })
	wg.Go(func() { b.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	// Publish until B has subscribed and heard it (subscription is asynchronous).
	waitFor(t, func() bool {
		a.Revoke(context.Background(), []string{"sid-x"}, time.Time{})
		return b.IsRevoked("sid-x")
	})
	if !a.IsRevoked("sid-x") {
		t.Fatal("not listed locally")
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
