package ratelimit_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
	"github.com/gatehouse-dev/gatehouse/internal/ratelimit/ratelimittest"
)

func TestMemoryConformance(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T) (ratelimit.Store, ratelimittest.Clock) {
		c := ratelimittest.NewFakeClock(ratelimittest.Start)
		return ratelimit.NewMemory(ratelimit.MemoryOptions{Now: c.Now}), c
	})
}

// TestMemoryConformanceOneShard runs the suite with every key in one shard
// and a small capacity, the layout the eviction tests use.
func TestMemoryConformanceOneShard(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T) (ratelimit.Store, ratelimittest.Clock) {
		c := ratelimittest.NewFakeClock(ratelimittest.Start)
		return ratelimit.NewMemory(ratelimit.MemoryOptions{Now: c.Now, Shards: 1, MaxKeys: 64}), c
	})
}

var hour = ratelimit.Limit{Count: 1, Period: time.Hour}

func allow(t *testing.T, m *ratelimit.Memory, key string, l ratelimit.Limit) bool {
	t.Helper()
	d, err := m.AllowGCRA(context.Background(), key, l, 1)
	if err != nil {
		t.Fatal(err)
	}
	return d.Allowed
}

func TestMemoryOptionsDefaults(t *testing.T) {
	tests := []struct {
		name string
		opts ratelimit.MemoryOptions
		want int // Capacity
	}{
		{"zero means a million", ratelimit.MemoryOptions{}, 1_000_000},
		{"negative means default", ratelimit.MemoryOptions{MaxKeys: -1, Shards: -3}, 1_000_000},
		{"capacity never exceeds MaxKeys", ratelimit.MemoryOptions{MaxKeys: 1000, Shards: 64}, 1000 / 64 * 64},
		{"shards capped by MaxKeys", ratelimit.MemoryOptions{MaxKeys: 3, Shards: 64}, 2},
		{"one key", ratelimit.MemoryOptions{MaxKeys: 1, Shards: 8}, 1},
		{"shards round up to a power of two", ratelimit.MemoryOptions{MaxKeys: 100, Shards: 3}, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ratelimit.NewMemory(tt.opts)
			if got := m.Capacity(); got != tt.want {
				t.Errorf("Capacity() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestMemoryBoundedUnderKeyFlood(t *testing.T) {
	c := ratelimittest.NewFakeClock(ratelimittest.Start)
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{Now: c.Now, MaxKeys: 1000, Shards: 8})
	for i := range 50_000 {
		allow(t, m, "flood:"+strconv.Itoa(i), hour)
		if i%997 == 0 {
			c.Advance(time.Millisecond)
		}
	}
	if n, capacity := m.Len(), m.Capacity(); n > capacity || capacity > 1000 {
		t.Fatalf("Len() = %d, Capacity() = %d; want Len ≤ Capacity ≤ 1000", n, capacity)
	}
}

func TestMemoryEvictsExpiredFirst(t *testing.T) {
	c := ratelimittest.NewFakeClock(ratelimittest.Start)
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{Now: c.Now, MaxKeys: 4, Shards: 1})
	short := ratelimit.Limit{Count: 1, Period: time.Second}
	allow(t, m, "long-1", hour)
	allow(t, m, "short", short)
	allow(t, m, "long-2", hour)
	allow(t, m, "long-3", hour)
	c.Advance(2 * time.Second) // "short" has expired
	allow(t, m, "new", hour)   // shard is full: "short" must go, not a long one
	for _, k := range []string{"long-1", "long-2", "long-3", "new"} {
		if allow(t, m, k, hour) {
			t.Errorf("%s was evicted (its limit was forgotten) although an expired entry was available", k)
		}
	}
	if got := m.Len(); got != 4 {
		t.Errorf("Len() = %d, want 4", got)
	}
}

func TestMemoryEvictsClosestToExpiry(t *testing.T) {
	c := ratelimittest.NewFakeClock(ratelimittest.Start)
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{Now: c.Now, MaxKeys: 4, Shards: 1})
	allow(t, m, "1h", hour)
	allow(t, m, "2h", ratelimit.Limit{Count: 1, Period: 2 * time.Hour})
	allow(t, m, "10m", ratelimit.Limit{Count: 1, Period: 10 * time.Minute})
	allow(t, m, "3h", ratelimit.Limit{Count: 1, Period: 3 * time.Hour})
	allow(t, m, "new", hour) // full, nothing expired: "10m" is closest to expiry
	want := map[string]ratelimit.Limit{
		"1h":  hour,
		"2h":  {Count: 1, Period: 2 * time.Hour},
		"3h":  {Count: 1, Period: 3 * time.Hour},
		"new": hour,
	}
	for k, l := range want {
		if allow(t, m, k, l) {
			t.Errorf("%s was evicted; only the entry closest to expiry should be", k)
		}
	}
	if !allow(t, m, "10m", ratelimit.Limit{Count: 1, Period: 10 * time.Minute}) {
		t.Error("10m (closest to expiry) was kept; it should have been evicted")
	}
}

func TestMemoryWindowEntriesAreBoundedToo(t *testing.T) {
	c := ratelimittest.NewFakeClock(ratelimittest.Start)
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{Now: c.Now, MaxKeys: 16, Shards: 2})
	for i := range 1000 {
		if _, err := m.AllowWindow(context.Background(), strconv.Itoa(i), 5, time.Hour, 1); err != nil {
			t.Fatal(err)
		}
		allow(t, m, strconv.Itoa(i), hour)
	}
	if got := m.Len(); got > 16 {
		t.Errorf("Len() = %d, want ≤ 16", got)
	}
}

func TestMemorySweep(t *testing.T) {
	c := ratelimittest.NewFakeClock(ratelimittest.Start)
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{Now: c.Now})
	for i := range 100 {
		allow(t, m, fmt.Sprint("s", i), ratelimit.Limit{Count: 1, Period: time.Minute})
		allow(t, m, fmt.Sprint("l", i), hour)
		if _, err := m.AllowWindow(context.Background(), fmt.Sprint("w", i), 5, 10*time.Minute, 1); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.Sweep(c.Now()); got != 0 {
		t.Errorf("Sweep before anything expired removed %d", got)
	}
	c.Advance(time.Minute)
	if got := m.Sweep(c.Now()); got != 100 {
		t.Errorf("Sweep after 1m removed %d, want the 100 one-minute keys", got)
	}
	c.Advance(time.Hour)
	if got := m.Sweep(c.Now()); got != 200 {
		t.Errorf("Sweep after 1h removed %d, want the remaining 200", got)
	}
	if got := m.Len(); got != 0 {
		t.Errorf("Len() = %d after sweeping everything", got)
	}
}

func TestMemoryRunSweepsAndStops(t *testing.T) {
	c := ratelimittest.NewFakeClock(ratelimittest.Start)
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{Now: c.Now, SweepInterval: time.Millisecond})
	allow(t, m, "k", ratelimit.Limit{Count: 1, Period: time.Second})
	c.Advance(time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	for m.Len() != 0 {
		runtime.Gosched()
	}
	cancel()
	<-done
}

func TestMemoryNoStateForPeeksOrDenials(t *testing.T) {
	c := ratelimittest.NewFakeClock(ratelimittest.Start)
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{Now: c.Now})
	ctx := context.Background()
	if _, err := m.AllowGCRA(ctx, "peek", hour, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AllowWindow(ctx, "peek", 5, time.Hour, 0); err != nil {
		t.Fatal(err)
	}
	if got := m.Len(); got != 0 {
		t.Errorf("peeks stored %d entries, want 0", got)
	}
}

// TestMemoryBytesPerKey measures the heap the store holds per tracked key at
// one million keys; the budget is 200 bytes.
func TestMemoryBytesPerKey(t *testing.T) {
	const keys = 1_000_000
	perKey := bytesPerKey(t, keys)
	t.Logf("memory store: %.1f bytes per tracked key at %d keys", perKey, keys)
	if perKey > 200 {
		t.Errorf("%.1f bytes per key, budget 200", perKey)
	}
}

func bytesPerKey(tb testing.TB, keys int) float64 {
	tb.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// Headroom: capacity is split evenly across shards and hashing fills them
	// unevenly (±1% at this size), so a store of exactly keys would evict.
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{MaxKeys: keys + keys/16})
	ctx := context.Background()
	buf := []byte("user:")
	for i := range keys {
		k := strconv.AppendInt(buf[:5], int64(i), 10)
		if _, err := m.AllowGCRA(ctx, string(k), hour, 1); err != nil {
			tb.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := m.Len(); got != keys {
		tb.Fatalf("Len() = %d, want %d", got, keys)
	}
	perKey := float64(after.HeapAlloc-before.HeapAlloc) / float64(keys)
	runtime.KeepAlive(m)
	return perKey
}

func TestMemoryDropsExpiredEntriesOnPeek(t *testing.T) {
	c := ratelimittest.NewFakeClock(ratelimittest.Start)
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{Now: c.Now})
	ctx := context.Background()
	allow(t, m, "g", hour)
	if _, err := m.AllowWindow(ctx, "w", 5, time.Minute, 1); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Hour)
	if _, err := m.AllowGCRA(ctx, "g", hour, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AllowWindow(ctx, "w", 5, time.Minute, 0); err != nil {
		t.Fatal(err)
	}
	if got := m.Len(); got != 0 {
		t.Errorf("Len() = %d after peeking at two expired keys, want 0", got)
	}
}
