package ratelimit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
	"github.com/gatehouse-dev/gatehouse/internal/ratelimit/ratelimittest"
)

var errDown = errors.New("store down")

// failingStore is a Store whose every call fails with err (nil: succeeds with
// an allow), counting calls.
type failingStore struct {
	mu    sync.Mutex
	err   error
	calls int
}

func (f *failingStore) AllowGCRA(context.Context, string, ratelimit.Limit, int64) (ratelimit.Decision, error) {
	return f.call()
}

func (f *failingStore) AllowWindow(context.Context, string, int64, time.Duration, int64) (ratelimit.Decision, error) {
	return f.call()
}

func (f *failingStore) call() (ratelimit.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return ratelimit.Decision{}, f.err
	}
	return ratelimit.Decision{Allowed: true, Limit: 42, Remaining: 41}, nil
}

type reported struct {
	mu       sync.Mutex
	policies []string
	errs     []error
}

func (r *reported) hook(policy string, err error) {
	r.mu.Lock()
	r.policies = append(r.policies, policy)
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

func newLimiter(t *testing.T, primary ratelimit.Store, opts ratelimit.Options) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(primary, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLimiterPolicies(t *testing.T) {
	ctx := context.Background()
	once := ratelimit.Limit{Count: 1, Period: time.Hour}
	type call func(l *ratelimit.Limiter) (ratelimit.Decision, error)
	gcraCall := func(l *ratelimit.Limiter) (ratelimit.Decision, error) { return l.AllowGCRA(ctx, "k", once, 1) }
	windowCall := func(l *ratelimit.Limiter) (ratelimit.Decision, error) {
		return l.AllowWindow(ctx, "k", 1, time.Hour, 1)
	}
	tests := []struct {
		policy string
		op     string
		call   call
		// want is the allowed-ness of two calls in a row.
		want [2]bool
	}{
		{"", "gcra", gcraCall, [2]bool{true, false}}, // default: local, which really counts
		{"local", "gcra", gcraCall, [2]bool{true, false}},
		{"local", "window", windowCall, [2]bool{true, false}},
		{"allow", "gcra", gcraCall, [2]bool{true, true}},
		{"allow", "window", windowCall, [2]bool{true, true}},
		{"deny", "gcra", gcraCall, [2]bool{false, false}},
		{"deny", "window", windowCall, [2]bool{false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.policy+"/"+tt.op, func(t *testing.T) {
			var rep reported
			c := ratelimittest.NewFakeClock(ratelimittest.Start)
			primary := &failingStore{err: errDown}
			l := newLimiter(t, primary, ratelimit.Options{OnStoreError: tt.policy, OnError: rep.hook, Now: c.Now})
			wantPolicy := tt.policy
			if wantPolicy == "" {
				wantPolicy = ratelimit.PolicyLocal
			}
			if l.Policy() != wantPolicy {
				t.Errorf("Policy() = %q, want %q", l.Policy(), wantPolicy)
			}
			for i, want := range tt.want {
				d, err := tt.call(l)
				if err != nil {
					t.Fatalf("call %d: err = %v; store failures must be absorbed by the policy", i, err)
				}
				if d.Allowed != want {
					t.Errorf("call %d: Allowed = %v, want %v", i, d.Allowed, want)
				}
				if d.Limit != 1 {
					t.Errorf("call %d: Limit = %d, want 1", i, d.Limit)
				}
				if !d.Allowed && d.RetryAfter <= 0 {
					t.Errorf("call %d: denied with RetryAfter %v, want > 0", i, d.RetryAfter)
				}
			}
			if primary.calls != 2 {
				t.Errorf("primary called %d times, want 2 (it is tried every time)", primary.calls)
			}
			if len(rep.policies) != 2 {
				t.Fatalf("OnError called %d times, want 2", len(rep.policies))
			}
			for i := range rep.policies {
				if rep.policies[i] != wantPolicy || !errors.Is(rep.errs[i], errDown) {
					t.Errorf("OnError(%q, %v), want (%q, errDown)", rep.policies[i], rep.errs[i], wantPolicy)
				}
			}
		})
	}
}

func TestLimiterHealthyPrimaryPassesThrough(t *testing.T) {
	var rep reported
	primary := &failingStore{}
	fallback := &failingStore{err: errors.New("fallback must not be used")}
	l := newLimiter(t, primary, ratelimit.Options{Fallback: fallback, OnError: rep.hook})
	d, err := l.AllowGCRA(context.Background(), "k", hour, 1)
	if err != nil || d.Limit != 42 || d.Remaining != 41 {
		t.Fatalf("got %+v, %v; want the primary's decision", d, err)
	}
	if _, err := l.AllowWindow(context.Background(), "k", 5, time.Hour, 1); err != nil {
		t.Fatal(err)
	}
	if len(rep.policies) != 0 || fallback.calls != 0 {
		t.Errorf("OnError calls %d, fallback calls %d; want 0 and 0", len(rep.policies), fallback.calls)
	}
}

func TestLimiterSharedFallback(t *testing.T) {
	c := ratelimittest.NewFakeClock(ratelimittest.Start)
	shared := ratelimit.NewMemory(ratelimit.MemoryOptions{Now: c.Now})
	primary := &failingStore{err: errDown}
	a := newLimiter(t, primary, ratelimit.Options{Fallback: shared})
	b := newLimiter(t, primary, ratelimit.Options{Fallback: shared})
	if d, _ := a.AllowGCRA(context.Background(), "k", hour, 1); !d.Allowed {
		t.Fatal("first call denied")
	}
	if d, _ := b.AllowGCRA(context.Background(), "k", hour, 1); d.Allowed {
		t.Error("second Limiter on the shared fallback allowed a spent key")
	}
}

func TestLimiterFailingFallbackDenies(t *testing.T) {
	var rep reported
	fallbackErr := errors.New("fallback broken")
	l := newLimiter(t, &failingStore{err: errDown}, ratelimit.Options{Fallback: &failingStore{err: fallbackErr}, OnError: rep.hook})
	for _, call := range []func() (ratelimit.Decision, error){
		func() (ratelimit.Decision, error) { return l.AllowGCRA(context.Background(), "k", hour, 1) },
		func() (ratelimit.Decision, error) { return l.AllowWindow(context.Background(), "k", 5, time.Hour, 1) },
	} {
		d, err := call()
		if err != nil || d.Allowed {
			t.Errorf("got %+v, %v; want a denial (fail closed)", d, err)
		}
	}
	for i, p := range rep.policies {
		if p != ratelimit.PolicyDeny || !errors.Is(rep.errs[i], errDown) || !errors.Is(rep.errs[i], fallbackErr) {
			t.Errorf("OnError(%q, %v), want (deny, both errors)", p, rep.errs[i])
		}
	}
}

func TestLimiterCallerErrorsBypassPolicy(t *testing.T) {
	var rep reported
	primary := &failingStore{err: errDown}
	l := newLimiter(t, primary, ratelimit.Options{OnStoreError: "allow", OnError: rep.hook})

	// Invalid arguments: rejected before the store, no policy can fix them.
	if _, err := l.AllowGCRA(context.Background(), "k", ratelimit.Limit{}, 1); !errors.Is(err, ratelimit.ErrInvalidLimit) {
		t.Errorf("invalid limit: err = %v", err)
	}
	if _, err := l.AllowGCRA(context.Background(), "k", hour, 2); !errors.Is(err, ratelimit.ErrInvalidCost) {
		t.Errorf("invalid cost: err = %v", err)
	}
	if _, err := l.AllowWindow(context.Background(), "k", 0, time.Hour, 1); !errors.Is(err, ratelimit.ErrInvalidLimit) {
		t.Errorf("invalid quota: err = %v", err)
	}
	if primary.calls != 0 {
		t.Errorf("primary called %d times for invalid arguments", primary.calls)
	}

	// A cancelled caller gets an error, not a decision, and is not a failure.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.AllowGCRA(ctx, "k", hour, 1); !errors.Is(err, errDown) {
		t.Errorf("cancelled: err = %v, want the store's error", err)
	}
	if _, err := l.AllowWindow(ctx, "k", 1, time.Hour, 1); !errors.Is(err, errDown) {
		t.Errorf("cancelled: err = %v, want the store's error", err)
	}
	if len(rep.policies) != 0 {
		t.Errorf("OnError called %d times for caller errors", len(rep.policies))
	}

	// A deadline is a slow store: the policy applies.
	ctx, cancel = context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	if d, err := l.AllowGCRA(ctx, "k", hour, 1); err != nil || !d.Allowed {
		t.Errorf("deadline: got %+v, %v; want the allow policy", d, err)
	}
	if len(rep.policies) != 1 {
		t.Errorf("OnError called %d times after a deadline, want 1", len(rep.policies))
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := ratelimit.New(nil, ratelimit.Options{}); err == nil {
		t.Error("New(nil primary) succeeded")
	}
	for _, p := range []string{"Local", "open", "closed", " deny", "fail"} {
		if _, err := ratelimit.New(&failingStore{}, ratelimit.Options{OnStoreError: p}); err == nil || !strings.Contains(err.Error(), "unknown failure policy") {
			t.Errorf("New(policy %q): err = %v", p, err)
		}
	}
}

// TestLimiterLogsAreRateLimited checks that an outage logs one line per
// LogInterval, with the count of the failures it did not log.
func TestLimiterLogsAreRateLimited(t *testing.T) {
	var buf bytes.Buffer
	c := ratelimittest.NewFakeClock(ratelimittest.Start)
	l := newLimiter(t, &failingStore{err: errDown}, ratelimit.Options{
		OnStoreError: "deny",
		Logger:       slog.New(slog.NewJSONHandler(&buf, nil)),
		LogInterval:  time.Minute,
		Now:          c.Now,
	})
	fail := func(times int) {
		for range times {
			if _, err := l.AllowGCRA(context.Background(), "user:secret-id", hour, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	fail(1000)
	c.Advance(59 * time.Second)
	fail(10)
	c.Advance(time.Second)
	fail(5)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines for 1015 failures over 60 s, want 2:\n%s", len(lines), buf.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if first["level"] != "ERROR" || first["policy"] != "deny" || first["op"] != "gcra" || first["err"] != "store down" {
		t.Errorf("first line = %v", first)
	}
	if first["suppressed_since_last_log"] != float64(0) || second["suppressed_since_last_log"] != float64(1009) {
		t.Errorf("suppressed counts = %v, %v; want 0 and 1009", first["suppressed_since_last_log"], second["suppressed_since_last_log"])
	}
	if strings.Contains(buf.String(), "secret-id") {
		t.Error("log line contains the rate-limit key")
	}
}
