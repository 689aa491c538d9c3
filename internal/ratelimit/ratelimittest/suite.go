package ratelimittest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
)

// Clock is a store's controllable clock.
type Clock interface {
	Now() time.Time
	Advance(d time.Duration)
}

// Factory returns a new, empty store for one test, with its clock. A nil Clock
// means the store uses real time it cannot control (a real Redis server): the
// suite then asserts times with a tolerance and skips the cases that need to
// move time.
type Factory func(t *testing.T) (ratelimit.Store, Clock)

// Start is where fake clocks should begin: deliberately not aligned to any
// window, with sub-second digits.
var Start = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)

// FakeClock is a Clock that moves only when told. Safe for concurrent use.
type FakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewFakeClock returns a clock reading start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{t: start} }

// Now returns the clock's time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// realTolerance is how far a duration measured against a real clock may fall
// short of the exact value: the time the test itself takes to run.
const realTolerance = 10 * time.Second

// Run runs the conformance suite against the stores newStore builds.
func Run(t *testing.T, newStore Factory) {
	cases := []struct {
		name       string
		needsClock bool
		run        func(t *testing.T, s ratelimit.Store, c Clock)
	}{
		{"GCRABurstThenDenied", false, testGCRABurst},
		{"GCRARetryAfterIsExact", true, testGCRARetryAfter},
		{"GCRASteadyRate", true, testGCRASteadyRate},
		{"GCRAReplenishes", true, testGCRAReplenishes},
		{"GCRACost", false, testGCRACost},
		{"GCRAExplicitBurst", false, testGCRAExplicitBurst},
		{"KeyIsolation", false, testKeyIsolation},
		{"InvalidArguments", false, testInvalid},
		{"WindowExactThenDenied", false, testWindowExact},
		{"WindowResetsAtBoundary", true, testWindowBoundary},
		{"WindowAlignedToEpoch", false, testWindowAlignment},
		{"WindowCost", false, testWindowCost},
		{"WindowLengthChangeStartsFresh", true, testWindowLengthChange},
		{"ConcurrentGCRAExact", false, testConcurrentGCRA},
		{"ConcurrentWindowExact", false, testConcurrentWindow},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, c := newStore(t)
			if tc.needsClock && c == nil {
				t.Skip("needs a controllable clock; this store uses a real server clock. The same script runs this case against miniredis.")
			}
			tc.run(t, s, c)
		})
	}
}

func gcra(t *testing.T, s ratelimit.Store, key string, l ratelimit.Limit, n int64) ratelimit.Decision {
	t.Helper()
	d, err := s.AllowGCRA(context.Background(), key, l, n)
	if err != nil {
		t.Fatalf("AllowGCRA(%q, %v, %d): %v", key, l, n, err)
	}
	return d
}

func window(t *testing.T, s ratelimit.Store, key string, limit int64, w time.Duration, n int64) ratelimit.Decision {
	t.Helper()
	d, err := s.AllowWindow(context.Background(), key, limit, w, n)
	if err != nil {
		t.Fatalf("AllowWindow(%q, %d, %v, %d): %v", key, limit, w, n, err)
	}
	return d
}

// near checks a duration: exactly with a fake clock, within realTolerance
// below want with a real one (time only passes, so real values only shrink).
func near(t *testing.T, c Clock, what string, got, want time.Duration) {
	t.Helper()
	if c != nil {
		if got != want {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
		return
	}
	if got > want || got < want-realTolerance {
		t.Errorf("%s = %v, want %v (tolerance %v below)", what, got, want, realTolerance)
	}
}

func expect(t *testing.T, what string, d ratelimit.Decision, allowed bool, remaining int64) {
	t.Helper()
	if d.Allowed != allowed || d.Remaining != remaining {
		t.Fatalf("%s: got allowed=%v remaining=%d, want allowed=%v remaining=%d (%+v)", what, d.Allowed, d.Remaining, allowed, remaining, d)
	}
}

func testGCRABurst(t *testing.T, s ratelimit.Store, c Clock) {
	l := ratelimit.Limit{Count: 5, Period: time.Hour} // one per 12 minutes, burst 5
	for i := int64(1); i <= 5; i++ {
		d := gcra(t, s, "burst", l, 1)
		expect(t, "request in burst", d, true, 5-i)
		if d.Limit != 5 || d.RetryAfter != 0 {
			t.Errorf("request %d: Limit=%d RetryAfter=%v, want 5 and 0", i, d.Limit, d.RetryAfter)
		}
		near(t, c, "ResetAfter", d.ResetAfter, time.Duration(i)*12*time.Minute)
	}
	for range 3 {
		d := gcra(t, s, "burst", l, 1)
		expect(t, "request past burst", d, false, 0)
		near(t, c, "RetryAfter", d.RetryAfter, 12*time.Minute)
		near(t, c, "ResetAfter", d.ResetAfter, time.Hour)
		if d.Limit != 5 {
			t.Errorf("Limit = %d, want 5", d.Limit)
		}
	}
}

func testGCRARetryAfter(t *testing.T, s ratelimit.Store, c Clock) {
	l := ratelimit.Limit{Count: 3, Period: time.Minute} // one per 20 s
	for range 3 {
		gcra(t, s, "retry", l, 1)
	}
	d := gcra(t, s, "retry", l, 1)
	expect(t, "exhausted", d, false, 0)
	if d.RetryAfter != 20*time.Second {
		t.Fatalf("RetryAfter = %v, want 20s", d.RetryAfter)
	}
	c.Advance(d.RetryAfter - time.Microsecond)
	d = gcra(t, s, "retry", l, 1)
	expect(t, "1µs before RetryAfter", d, false, 0)
	if d.RetryAfter != time.Microsecond {
		t.Errorf("RetryAfter = %v, want 1µs", d.RetryAfter)
	}
	c.Advance(time.Microsecond)
	expect(t, "at RetryAfter", gcra(t, s, "retry", l, 1), true, 0)
	expect(t, "right after", gcra(t, s, "retry", l, 1), false, 0)
}

func testGCRASteadyRate(t *testing.T, s ratelimit.Store, c Clock) {
	// Burst 1: exactly one request per 100 ms, never two.
	one := ratelimit.Limit{Count: 10, Period: time.Second, Burst: 1}
	for i := range 50 {
		if d := gcra(t, s, "steady1", one, 1); !d.Allowed {
			t.Fatalf("tick %d: first request denied: %+v", i, d)
		}
		if d := gcra(t, s, "steady1", one, 1); d.Allowed {
			t.Fatalf("tick %d: second request in the same interval allowed", i)
		}
		c.Advance(100 * time.Millisecond)
	}
	// Default burst: after draining, a client sending at the rate is never
	// refused, and one sending 2× the rate gets exactly half through.
	l := ratelimit.Limit{Count: 10, Period: time.Second}
	for range 10 {
		gcra(t, s, "steady10", l, 1)
	}
	allowed := 0
	for range 100 {
		c.Advance(50 * time.Millisecond)
		if gcra(t, s, "steady10", l, 1).Allowed {
			allowed++
		}
	}
	if allowed != 50 {
		t.Errorf("at twice the rate for 5 s: %d allowed, want 50", allowed)
	}
}

func testGCRAReplenishes(t *testing.T, s ratelimit.Store, c Clock) {
	l := ratelimit.Limit{Count: 4, Period: time.Minute}
	for range 4 {
		gcra(t, s, "refill", l, 1)
	}
	c.Advance(30 * time.Second)
	expect(t, "after half the period (peek)", gcra(t, s, "refill", l, 0), true, 2)
	c.Advance(30 * time.Second)
	d := gcra(t, s, "refill", l, 0)
	expect(t, "after the full period (peek)", d, true, 4)
	if d.ResetAfter != 0 {
		t.Errorf("ResetAfter when full = %v, want 0", d.ResetAfter)
	}
	c.Advance(time.Hour) // long idle: no debt, no credit beyond the burst
	for i := int64(1); i <= 4; i++ {
		expect(t, "after idling", gcra(t, s, "refill", l, 1), true, 4-i)
	}
	expect(t, "after idling, past burst", gcra(t, s, "refill", l, 1), false, 0)
}

func testGCRACost(t *testing.T, s ratelimit.Store, c Clock) {
	l := ratelimit.Limit{Count: 10, Period: time.Minute} // one per 6 s
	expect(t, "cost 4", gcra(t, s, "cost", l, 4), true, 6)
	expect(t, "cost 4 again", gcra(t, s, "cost", l, 4), true, 2)
	d := gcra(t, s, "cost", l, 4)
	expect(t, "cost 4 with 2 left", d, false, 2)
	near(t, c, "RetryAfter for 2 missing", d.RetryAfter, 12*time.Second)
	expect(t, "cost 2 with 2 left", gcra(t, s, "cost", l, 2), true, 0)
	expect(t, "peek when empty", gcra(t, s, "cost", l, 0), true, 0)
	for _, n := range []int64{-1, 11} {
		if _, err := s.AllowGCRA(context.Background(), "cost", l, n); !errors.Is(err, ratelimit.ErrInvalidCost) {
			t.Errorf("cost %d: err = %v, want ErrInvalidCost", n, err)
		}
	}
	// A peek on an unknown key consumes nothing and reports a full bucket.
	expect(t, "peek fresh", gcra(t, s, "cost-fresh", l, 0), true, 10)
	expect(t, "after peek", gcra(t, s, "cost-fresh", l, 10), true, 0)
}

func testGCRAExplicitBurst(t *testing.T, s ratelimit.Store, c Clock) {
	l := ratelimit.Limit{Count: 1, Period: time.Minute, Burst: 3}
	for i := int64(1); i <= 3; i++ {
		d := gcra(t, s, "eb", l, 1)
		expect(t, "within burst 3", d, true, 3-i)
		if d.Limit != 3 {
			t.Errorf("Limit = %d, want the burst 3", d.Limit)
		}
	}
	d := gcra(t, s, "eb", l, 1)
	expect(t, "past burst 3", d, false, 0)
	near(t, c, "RetryAfter", d.RetryAfter, time.Minute)
	near(t, c, "ResetAfter", d.ResetAfter, 3*time.Minute)
}

func testKeyIsolation(t *testing.T, s ratelimit.Store, _ Clock) {
	l := ratelimit.Limit{Count: 1, Period: time.Hour}
	expect(t, "a", gcra(t, s, "user:a", l, 1), true, 0)
	expect(t, "a again", gcra(t, s, "user:a", l, 1), false, 0)
	expect(t, "b", gcra(t, s, "user:b", l, 1), true, 0)
	expect(t, "prefix of a", gcra(t, s, "user:", l, 1), true, 0)
	expect(t, "a with suffix", gcra(t, s, "user:aa", l, 1), true, 0)
	expect(t, "empty key", gcra(t, s, "", l, 1), true, 0)
	// The same key under the other algorithm is a different counter.
	expect(t, "window a", window(t, s, "user:a", 1, time.Hour, 1), true, 0)
	expect(t, "window a again", window(t, s, "user:a", 1, time.Hour, 1), false, 0)
	expect(t, "gcra b still spent", gcra(t, s, "user:b", l, 1), false, 0)
	// Hostile keys: long, binary, separator-laden.
	long := string(make([]byte, 10_000))
	expect(t, "long key", gcra(t, s, long, l, 1), true, 0)
	expect(t, "long key again", gcra(t, s, long, l, 1), false, 0)
	expect(t, "long key + 1", gcra(t, s, long+"x", l, 1), true, 0)
	expect(t, "binary key", gcra(t, s, "\x00\xff:\r\n*", l, 1), true, 0)
}

func testInvalid(t *testing.T, s ratelimit.Store, _ Clock) {
	ctx := context.Background()
	badLimits := []ratelimit.Limit{
		{},
		{Count: 0, Period: time.Second},
		{Count: -1, Period: time.Second},
		{Count: 1, Period: 0},
		{Count: 1, Period: -time.Second},
		{Count: 1, Period: ratelimit.MaxPeriod + 1},
		{Count: 2_000_000, Period: time.Second},
		{Count: 1, Period: time.Second, Burst: -1},
		{Count: 1, Period: 24 * time.Hour, Burst: ratelimit.MaxCount},
	}
	for _, l := range badLimits {
		if _, err := s.AllowGCRA(ctx, "bad", l, 1); !errors.Is(err, ratelimit.ErrInvalidLimit) {
			t.Errorf("AllowGCRA(%+v): err = %v, want ErrInvalidLimit", l, err)
		}
	}
	badWindows := []struct {
		limit int64
		w     time.Duration
		n     int64
		want  error
	}{
		{0, time.Hour, 1, ratelimit.ErrInvalidLimit},
		{-5, time.Hour, 1, ratelimit.ErrInvalidLimit},
		{10, 0, 1, ratelimit.ErrInvalidLimit},
		{10, -time.Hour, 1, ratelimit.ErrInvalidLimit},
		{10, time.Microsecond, 1, ratelimit.ErrInvalidLimit},
		{10, time.Second + 1, 1, ratelimit.ErrInvalidLimit},
		{10, ratelimit.MaxPeriod + time.Second, 1, ratelimit.ErrInvalidLimit},
		{10, time.Hour, -1, ratelimit.ErrInvalidCost},
		{10, time.Hour, 11, ratelimit.ErrInvalidCost},
	}
	for _, w := range badWindows {
		if _, err := s.AllowWindow(ctx, "bad", w.limit, w.w, w.n); !errors.Is(err, w.want) {
			t.Errorf("AllowWindow(%d, %v, %d): err = %v, want %v", w.limit, w.w, w.n, err, w.want)
		}
	}
	// Nothing was written under the key by the rejected calls.
	expect(t, "after rejected calls", gcra(t, s, "bad", ratelimit.Limit{Count: 2, Period: time.Hour}, 1), true, 1)
	expect(t, "window after rejected calls", window(t, s, "bad", 2, time.Hour, 1), true, 1)
}

// untilBoundary is how long from now until the next multiple of w since the
// Unix epoch.
func untilBoundary(now time.Time, w time.Duration) time.Duration {
	ns := now.UnixMicro() * 1000
	return time.Duration(int64(w) - ns%int64(w))
}

func clockNow(c Clock) time.Time {
	if c == nil {
		return time.Now()
	}
	return c.Now()
}

func testWindowExact(t *testing.T, s ratelimit.Store, c Clock) {
	const w = time.Hour
	want := untilBoundary(clockNow(c), w)
	for i := int64(1); i <= 3; i++ {
		d := window(t, s, "quota", 3, w, 1)
		expect(t, "within quota", d, true, 3-i)
		if d.Limit != 3 || d.RetryAfter != 0 {
			t.Errorf("Limit=%d RetryAfter=%v, want 3 and 0", d.Limit, d.RetryAfter)
		}
		near(t, c, "ResetAfter", d.ResetAfter, want)
	}
	if c == nil && want < realTolerance {
		t.Log("real clock is within the tolerance of an hour boundary; denial checks may see a new window")
		return
	}
	for range 3 {
		d := window(t, s, "quota", 3, w, 1)
		expect(t, "past quota", d, false, 0)
		near(t, c, "RetryAfter", d.RetryAfter, want)
		near(t, c, "ResetAfter", d.ResetAfter, want)
	}
}

func testWindowBoundary(t *testing.T, s ratelimit.Store, c Clock) {
	const w = 10 * time.Minute
	for range 2 {
		window(t, s, "edge", 2, w, 1)
	}
	d := window(t, s, "edge", 2, w, 1)
	expect(t, "spent", d, false, 0)
	c.Advance(d.RetryAfter - time.Microsecond)
	d = window(t, s, "edge", 2, w, 1)
	expect(t, "1µs before the boundary", d, false, 0)
	if d.RetryAfter != time.Microsecond {
		t.Errorf("RetryAfter = %v, want 1µs", d.RetryAfter)
	}
	c.Advance(time.Microsecond)
	if got := c.Now().UnixMicro() % w.Microseconds(); got != 0 {
		t.Fatalf("clock is %d µs past a boundary, want exactly on it", got)
	}
	d = window(t, s, "edge", 2, w, 1)
	expect(t, "at the boundary", d, true, 1)
	if d.ResetAfter != w {
		t.Errorf("ResetAfter at the boundary = %v, want %v", d.ResetAfter, w)
	}
	// The fixed-window burst at the edge is expected: 2 at the end of one
	// window then 2 at the start of the next.
	expect(t, "second in new window", window(t, s, "edge", 2, w, 1), true, 0)
	expect(t, "third in new window", window(t, s, "edge", 2, w, 1), false, 0)
}

func testWindowAlignment(t *testing.T, s ratelimit.Store, c Clock) {
	now := clockNow(c)
	for _, w := range []time.Duration{24 * time.Hour, time.Hour, 10 * time.Second, 7 * time.Minute} {
		d := window(t, s, "align-"+w.String(), 1000, w, 1)
		near(t, c, "ResetAfter for "+w.String(), d.ResetAfter, untilBoundary(now, w))
	}
	if c != nil {
		// The daily window ends at midnight UTC.
		d := window(t, s, "align-daily", 1000, 24*time.Hour, 1)
		end := c.Now().Add(d.ResetAfter)
		if end.UTC().Format(time.TimeOnly) != "00:00:00" || end.Nanosecond() != 0 {
			t.Errorf("daily window ends at %v, want 00:00:00 UTC", end.UTC())
		}
	}
}

func testWindowCost(t *testing.T, s ratelimit.Store, _ Clock) {
	expect(t, "cost 7", window(t, s, "wc", 10, time.Hour, 7), true, 3)
	expect(t, "cost 4 with 3 left", window(t, s, "wc", 10, time.Hour, 4), false, 3)
	expect(t, "cost 3 with 3 left", window(t, s, "wc", 10, time.Hour, 3), true, 0)
	expect(t, "peek", window(t, s, "wc", 10, time.Hour, 0), true, 0)
	expect(t, "peek fresh", window(t, s, "wc-fresh", 10, time.Hour, 0), true, 10)
	expect(t, "cost 10 after peek", window(t, s, "wc-fresh", 10, time.Hour, 10), true, 0)
}

func testWindowLengthChange(t *testing.T, s ratelimit.Store, c Clock) {
	// Start just after an hour boundary so 1h and 7m windows end differently.
	c.Advance(untilBoundary(c.Now(), time.Hour) + time.Second)
	expect(t, "1h window", window(t, s, "wl", 1, time.Hour, 1), true, 0)
	expect(t, "1h window spent", window(t, s, "wl", 1, time.Hour, 1), false, 0)
	expect(t, "7m window on the same key", window(t, s, "wl", 1, 7*time.Minute, 1), true, 0)
}

func testConcurrentGCRA(t *testing.T, s ratelimit.Store, _ Clock) {
	l := ratelimit.Limit{Count: 100, Period: time.Hour}
	var allowed atomic.Int64
	run200(t, func() error {
		d, err := s.AllowGCRA(context.Background(), "hot", l, 1)
		if d.Allowed {
			allowed.Add(1)
		}
		return err
	})
	if got := allowed.Load(); got != 100 {
		t.Errorf("200 concurrent requests under burst 100: %d allowed, want exactly 100", got)
	}
}

func testConcurrentWindow(t *testing.T, s ratelimit.Store, c Clock) {
	const w = 24 * time.Hour
	if c == nil && untilBoundary(time.Now(), w) < realTolerance {
		t.Log("real clock is seconds from midnight UTC; the count may span two windows")
	}
	var allowed atomic.Int64
	run200(t, func() error {
		d, err := s.AllowWindow(context.Background(), "hot", 100, w, 1)
		if d.Allowed {
			allowed.Add(1)
		}
		return err
	})
	if got := allowed.Load(); got != 100 && (c != nil || untilBoundary(time.Now(), w) > realTolerance) {
		t.Errorf("200 concurrent requests under quota 100: %d allowed, want exactly 100", got)
	}
}

// run200 runs f in 200 goroutines released together.
func run200(t *testing.T, f func() error) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, 200)
	for range 200 {
		wg.Go(func() {
			<-start
			if err := f(); err != nil {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
