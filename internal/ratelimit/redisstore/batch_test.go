package redisstore_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
	"github.com/gatehouse-dev/gatehouse/internal/ratelimit/ratelimittest"
	"github.com/gatehouse-dev/gatehouse/internal/ratelimit/redisstore"
	"github.com/redis/go-redis/v9"
)

func newPipelined(t testing.TB, client redis.UniversalClient, prefix string) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(client, redisstore.Options{Prefix: prefix, Pipeline: 2, MaxBatch: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// The pipelined store passes the same conformance suite as the direct one.
func TestPipelinedMiniredisConformance(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T) (ratelimit.Store, ratelimittest.Clock) {
		_, client, clock := newMini(t)
		return newPipelined(t, client, ""), clock
	})
}

func TestPipelinedRealRedisConformance(t *testing.T) {
	realRedis(t)
	ratelimittest.Run(t, func(t *testing.T) (ratelimit.Store, ratelimittest.Clock) {
		client, prefix := realRedis(t)
		return newPipelined(t, client, prefix), nil
	})
}

// Concurrent decisions on one key through the pipeline stay exact, and the
// script is reloaded when the server lost it.
func TestPipelinedExactUnderConcurrency(t *testing.T) {
	_, client, _ := newMini(t)
	s := newPipelined(t, client, "")
	ctx := context.Background()
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			d, err := s.AllowGCRA(ctx, "k", ratelimit.Limit{Count: 100, Period: time.Hour}, 1)
			if err != nil {
				t.Error(err)
				return
			}
			if d.Allowed {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 100 {
		t.Fatalf("allowed %d of 200 with a limit of 100", allowed.Load())
	}
}

func TestPipelinedCancelAndClose(t *testing.T) {
	_, client, _ := newMini(t)
	s, _ := redisstore.New(client, redisstore.Options{Pipeline: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.AllowGCRA(ctx, "k", ratelimit.Limit{Count: 1, Period: time.Second}, 1); err == nil {
		t.Fatal("cancelled context decided")
	}
	s.Close()
	s.Close() // idempotent
	if _, err := s.AllowGCRA(context.Background(), "k", ratelimit.Limit{Count: 1, Period: time.Second}, 1); err == nil {
		t.Fatal("closed store decided")
	}
}
