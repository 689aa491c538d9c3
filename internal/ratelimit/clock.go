package ratelimit

import (
	"context"
	"sync/atomic"
	"time"
)

// CoarseClock is a clock for the hot path: Now reads a cached time that a
// background goroutine refreshes every resolution, instead of asking the
// kernel. On virtual machines time.Now can cost 100–250 ns (kvm-clock), more
// than the rest of a memory-store decision; a cached read costs about 1 ns.
//
// The trade-off is that decisions see time up to one resolution late. For a
// rate limit that means a request may be judged as if it arrived up to that
// much earlier; with a 1 ms resolution that is negligible for any rate under
// 1000/s per key, and windows still reset at their boundaries within 1 ms.
type CoarseClock struct {
	nanos   atomic.Int64
	stopped atomic.Bool
	now     func() time.Time
}

// NewCoarseClock starts a clock refreshed from now (nil means time.Now) every
// resolution (zero means 1 ms) until ctx is done. After that, Now reads now
// directly, so a clock that outlives its context is slow but never stale.
func NewCoarseClock(ctx context.Context, resolution time.Duration, now func() time.Time) *CoarseClock {
	if now == nil {
		now = time.Now
	}
	if resolution <= 0 {
		resolution = time.Millisecond
	}
	c := &CoarseClock{now: now}
	c.nanos.Store(now().UnixNano())
	go func() {
		t := time.NewTicker(resolution)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				c.stopped.Store(true)
				return
			case <-t.C:
				c.nanos.Store(c.now().UnixNano())
			}
		}
	}()
	return c
}

// Now returns the cached time (UTC, no monotonic reading).
func (c *CoarseClock) Now() time.Time {
	if c.stopped.Load() {
		return c.now()
	}
	return time.Unix(0, c.nanos.Load()).UTC()
}
