package ratelimit_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
)

// benchKeys returns n distinct keys shaped like real ones.
func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i*7919) + ":route:GET /v1/notes"
	}
	return keys
}

var benchLimit = ratelimit.Limit{Count: 100, Period: time.Second}

// coarse returns a CoarseClock stopped when the benchmark ends.
func coarse(b *testing.B) func() time.Time {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	return ratelimit.NewCoarseClock(ctx, time.Millisecond, nil).Now
}

// BenchmarkMemoryGCRA measures one decision with the CoarseClock the gateway
// uses. Run with -cpu 1 for the single-core figure (target ≥ 5M decisions/s,
// i.e. ≤ 200 ns/op). SingleKeyTimeNow shows the same with time.Now per call.
func BenchmarkMemoryGCRA(b *testing.B) {
	ctx := context.Background()
	b.Run("SingleKey", func(b *testing.B) {
		m := ratelimit.NewMemory(ratelimit.MemoryOptions{Now: coarse(b)})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.AllowGCRA(ctx, "user:42", benchLimit, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SingleKeyTimeNow", func(b *testing.B) {
		m := ratelimit.NewMemory(ratelimit.MemoryOptions{})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.AllowGCRA(ctx, "user:42", benchLimit, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ManyKeys", func(b *testing.B) {
		keys := benchKeys(1 << 20)
		m := ratelimit.NewMemory(ratelimit.MemoryOptions{MaxKeys: 2 << 20, Now: coarse(b)})
		for _, k := range keys {
			m.AllowGCRA(ctx, k, benchLimit, 1)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := m.AllowGCRA(ctx, keys[i&(len(keys)-1)], benchLimit, 1); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		keys := benchKeys(1 << 16)
		m := ratelimit.NewMemory(ratelimit.MemoryOptions{Now: coarse(b)})
		for _, k := range keys {
			m.AllowGCRA(ctx, k, benchLimit, 1)
		}
		var next atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(1) * 7717)
			for pb.Next() {
				if _, err := m.AllowGCRA(ctx, keys[i&(len(keys)-1)], benchLimit, 1); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
	b.Run("ParallelOneKey", func(b *testing.B) {
		m := ratelimit.NewMemory(ratelimit.MemoryOptions{Now: coarse(b)})
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := m.AllowGCRA(ctx, "hot", benchLimit, 1); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("FullStoreNewKeys", func(b *testing.B) {
		// Every decision is a new key into a full store: the eviction path.
		m := ratelimit.NewMemory(ratelimit.MemoryOptions{MaxKeys: 1 << 16, Now: coarse(b)})
		keys := benchKeys(1 << 20)
		for _, k := range keys[:1<<16] {
			m.AllowGCRA(ctx, k, benchLimit, 1)
		}
		b.ReportAllocs()
		i := 1 << 16
		for b.Loop() {
			if _, err := m.AllowGCRA(ctx, keys[i&(len(keys)-1)], ratelimit.Limit{Count: 1, Period: time.Hour}, 1); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkMemoryWindow(b *testing.B) {
	ctx := context.Background()
	keys := benchKeys(1 << 16)
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{Now: coarse(b)})
	for _, k := range keys {
		m.AllowWindow(ctx, k, 1000, 24*time.Hour, 1)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := m.AllowWindow(ctx, keys[i&(len(keys)-1)], 1000, 24*time.Hour, 1); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkLimiterOverMemory is the Limiter's cost on the healthy path.
func BenchmarkLimiterOverMemory(b *testing.B) {
	ctx := context.Background()
	l, err := ratelimit.New(ratelimit.NewMemory(ratelimit.MemoryOptions{Now: coarse(b)}), ratelimit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.AllowGCRA(ctx, "user:42", benchLimit, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryBytesPerKey reports the heap held per tracked key at one
// million keys (budget 200 B/key) as the "B/key" metric.
func BenchmarkMemoryBytesPerKey(b *testing.B) {
	var perKey float64
	for b.Loop() {
		perKey = bytesPerKey(b, 1_000_000)
	}
	b.ReportMetric(perKey, "B/key")
}
