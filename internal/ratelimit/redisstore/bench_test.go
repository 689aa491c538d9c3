package redisstore_test

import (
	"context"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
	"github.com/gatehouse-dev/gatehouse/internal/ratelimit/redisstore"
)

// BenchmarkRedisGCRA measures one decision against the real server at
// GATEHOUSE_TEST_REDIS_URL: one round trip each (EVALSHA).
func BenchmarkRedisGCRA(b *testing.B) {
	url := os.Getenv("GATEHOUSE_TEST_REDIS_URL")
	if url == "" {
		b.Skip("GATEHOUSE_TEST_REDIS_URL is not set; set it (e.g. redis://127.0.0.1:6379/0) to benchmark a real Redis")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	client := redis.NewClient(opts)
	defer client.Close()
	ctx := context.Background()
	prefix := "gatehouse-bench:rl:" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	defer func() {
		iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
	}()
	s := newStore(b, client, prefix)
	if err := s.Load(ctx); err != nil {
		b.Fatal(err)
	}
	l := ratelimit.Limit{Count: 1000, Period: time.Second}
	b.Run("Serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := s.AllowGCRA(ctx, "k"+strconv.Itoa(i&1023), l, 1); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		var next atomic.Int64
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(1) * 131)
			for pb.Next() {
				if _, err := s.AllowGCRA(ctx, "k"+strconv.Itoa(i&1023), l, 1); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
	ps, err := redisstore.New(client, redisstore.Options{Prefix: prefix, Pipeline: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer ps.Close()
	b.Run("ParallelPipelined", func(b *testing.B) {
		var next atomic.Int64
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(1) * 131)
			for pb.Next() {
				if _, err := ps.AllowGCRA(ctx, "k"+strconv.Itoa(i&1023), l, 1); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
	b.Run("Window", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := s.AllowWindow(ctx, "k"+strconv.Itoa(i&1023), 1_000_000, time.Hour, 1); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
