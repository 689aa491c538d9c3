package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Failure policies: what a Limiter decides when its primary store errors.
const (
	// PolicyLocal decides with the in-process fallback store. Limits then hold
	// per process instead of cluster-wide, which keeps protection up while
	// being at most (number of processes)× looser. The default.
	PolicyLocal = "local"
	// PolicyAllow lets the request through (fail open). Its decisions carry no
	// quota knowledge: Remaining and ResetAfter are 0.
	PolicyAllow = "allow"
	// PolicyDeny refuses the request (fail closed), with RetryAfter one
	// emission interval (GCRA) or the time to the window's end (quota).
	PolicyDeny = "deny"
)

// Options configures New. Every zero value has a usable default.
type Options struct {
	// OnStoreError is the failure policy: PolicyLocal, PolicyAllow or
	// PolicyDeny. Empty means PolicyLocal. A Limiter has one policy; build one
	// Limiter per policy (they may share the primary and the fallback).
	OnStoreError string
	// Fallback is the store PolicyLocal decides with. Nil means a new
	// NewMemory(MemoryOptions{Now: Now}); pass a shared *Memory so that several
	// Limiters fall back to the same counts. Ignored by the other policies.
	Fallback Store
	// Logger receives one line per failure burst (see LogInterval). Nil means
	// failures are not logged, only reported through OnError.
	Logger *slog.Logger
	// OnError, when set, is called for every primary-store failure with the
	// policy applied and the error: the metrics hook. It must be cheap and
	// safe for concurrent use.
	OnError func(policy string, err error)
	// LogInterval is the least time between two failure log lines; failures in
	// between are counted and the count is logged with the next line. Zero
	// means 10 seconds.
	LogInterval time.Duration
	// Now is the clock for log pacing and for the reset time of decisions made
	// by PolicyDeny. Nil means time.Now.
	Now func() time.Time
}

// Limiter is a Store that decides with a primary store and, when that fails,
// applies its failure policy. Failures are never silent: each one goes to
// OnError, and a rate-limited log line says which policy was applied.
//
// Errors it returns are not store failures: ErrInvalidLimit / ErrInvalidCost
// for bad arguments, and the store's error when ctx was cancelled (the
// caller has gone; there is no request left to decide for).
type Limiter struct {
	primary  Store
	fallback Store
	policy   string
	logger   *slog.Logger
	onError  func(string, error)
	every    time.Duration
	now      func() time.Time

	mu         sync.Mutex
	lastLog    time.Time
	suppressed int64
}

var _ Store = (*Limiter)(nil)

// New returns a Limiter over primary.
func New(primary Store, opts Options) (*Limiter, error) {
	if primary == nil {
		return nil, errors.New("ratelimit: new limiter: primary store is nil")
	}
	policy := opts.OnStoreError
	if policy == "" {
		policy = PolicyLocal
	}
	if policy != PolicyLocal && policy != PolicyAllow && policy != PolicyDeny {
		return nil, fmt.Errorf("ratelimit: new limiter: unknown failure policy %q (want local, allow or deny)", opts.OnStoreError)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	fallback := opts.Fallback
	if fallback == nil && policy == PolicyLocal {
		fallback = NewMemory(MemoryOptions{Now: now})
	}
	every := opts.LogInterval
	if every <= 0 {
		every = 10 * time.Second
	}
	return &Limiter{
		primary:  primary,
		fallback: fallback,
		policy:   policy,
		logger:   opts.Logger,
		onError:  opts.OnError,
		every:    every,
		now:      now,
	}, nil
}

// Policy returns the failure policy in force.
func (l *Limiter) Policy() string { return l.policy }

// AllowGCRA implements Store.
func (l *Limiter) AllowGCRA(ctx context.Context, key string, lim Limit, n int64) (Decision, error) {
	if err := CheckGCRA(lim, n); err != nil {
		return Decision{}, err
	}
	d, err := l.primary.AllowGCRA(ctx, key, lim, n)
	if err == nil {
		return d, nil
	}
	if stop := l.callerError(ctx, err); stop != nil {
		return Decision{}, stop
	}
	switch l.policy {
	case PolicyAllow:
		l.report("gcra", PolicyAllow, err)
		return Decision{Allowed: true, Limit: lim.EffectiveBurst()}, nil
	case PolicyLocal:
		d, ferr := l.fallback.AllowGCRA(ctx, key, lim, n)
		if ferr == nil {
			l.report("gcra", PolicyLocal, err)
			return d, nil
		}
		err = errors.Join(err, fmt.Errorf("fallback: %w", ferr))
	}
	// PolicyDeny, or a failed fallback: fail closed.
	l.report("gcra", PolicyDeny, err)
	return Decision{Limit: lim.EffectiveBurst(), ResetAfter: lim.Window(), RetryAfter: lim.Interval()}, nil
}

// AllowWindow implements Store.
func (l *Limiter) AllowWindow(ctx context.Context, key string, limit int64, window time.Duration, n int64) (Decision, error) {
	if err := CheckWindow(limit, window, n); err != nil {
		return Decision{}, err
	}
	d, err := l.primary.AllowWindow(ctx, key, limit, window, n)
	if err == nil {
		return d, nil
	}
	if stop := l.callerError(ctx, err); stop != nil {
		return Decision{}, stop
	}
	switch l.policy {
	case PolicyAllow:
		l.report("window", PolicyAllow, err)
		return Decision{Allowed: true, Limit: limit}, nil
	case PolicyLocal:
		d, ferr := l.fallback.AllowWindow(ctx, key, limit, window, n)
		if ferr == nil {
			l.report("window", PolicyLocal, err)
			return d, nil
		}
		err = errors.Join(err, fmt.Errorf("fallback: %w", ferr))
	}
	l.report("window", PolicyDeny, err)
	now := l.now().UnixNano()
	reset := time.Duration(windowEnd(now, int64(window)) - now)
	return Decision{Limit: limit, ResetAfter: reset, RetryAfter: reset}, nil
}

// callerError returns a non-nil error when err is not a store failure: bad
// arguments (a caller bug, which no policy can fix) or a cancelled ctx.
func (l *Limiter) callerError(ctx context.Context, err error) error {
	if errors.Is(err, ErrInvalidLimit) || errors.Is(err, ErrInvalidCost) {
		return err
	}
	// Why only Canceled: a deadline is how callers bound a slow store, and a
	// slow store is exactly the failure the policy exists for.
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("ratelimit: decision abandoned: %w", err)
	}
	return nil
}

// report counts a failure through OnError and logs it, at most one line per
// LogInterval so an outage does not turn into a log line per request.
func (l *Limiter) report(op, applied string, err error) {
	if l.onError != nil {
		l.onError(applied, err)
	}
	if l.logger == nil {
		return
	}
	now := l.now()
	l.mu.Lock()
	if !l.lastLog.IsZero() && now.Sub(l.lastLog) < l.every {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := l.suppressed
	l.suppressed = 0
	l.lastLog = now
	l.mu.Unlock()
	l.logger.Error("rate-limit store failed; applying failure policy",
		slog.String("op", op),
		slog.String("policy", applied),
		slog.Int64("suppressed_since_last_log", suppressed),
		slog.Any("err", err))
}
