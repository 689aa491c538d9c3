package ratelimit_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
	"github.com/gatehouse-dev/gatehouse/internal/ratelimit/ratelimittest"
)

// waitFor polls cond, failing the test if it does not hold within a generous
// bound (this is a liveness bound, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

func TestCoarseClockFollowsAndFallsBack(t *testing.T) {
	fake := ratelimittest.NewFakeClock(ratelimittest.Start)
	ctx, cancel := context.WithCancel(context.Background())
	c := ratelimit.NewCoarseClock(ctx, time.Millisecond, fake.Now)
	if got := c.Now(); !got.Equal(ratelimittest.Start) {
		t.Fatalf("Now() = %v right after start, want %v", got, ratelimittest.Start)
	}
	fake.Advance(time.Hour)
	waitFor(t, "the clock to pick up the advance", func() bool { return c.Now().Equal(ratelimittest.Start.Add(time.Hour)) })
	cancel()
	// After the context ends, Now reads the source directly: never stale.
	waitFor(t, "the clock to fall back", func() bool {
		fake.Advance(time.Second)
		return c.Now().Equal(fake.Now())
	})
	fake.Advance(time.Minute)
	if got, want := c.Now(), fake.Now(); !got.Equal(want) {
		t.Errorf("stopped clock Now() = %v, want the source's %v", got, want)
	}
}

func TestCoarseClockDefaults(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := ratelimit.NewCoarseClock(ctx, 0, nil)
	before := time.Now().Add(-time.Second)
	if got := c.Now(); got.Before(before) || got.Location() != time.UTC {
		t.Errorf("Now() = %v, want about now, in UTC", got)
	}
}
