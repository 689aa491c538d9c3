package ratelimit

import (
	"context"
	"errors"
	"time"
)

// Domain errors. Callers test with errors.Is.
var (
	// ErrInvalidLimit reports a limit, quota or window that cannot be enforced
	// (bad text, zero count, a period out of range, an overflowing burst).
	ErrInvalidLimit = errors.New("invalid rate limit")
	// ErrInvalidCost reports a cost that is negative or larger than the burst
	// (GCRA) or the quota (window), so that no request could ever pass.
	ErrInvalidCost = errors.New("invalid rate limit cost")
)

// Decision is the outcome of one rate-limit check.
type Decision struct {
	// Allowed reports whether the request may proceed. When false nothing was
	// consumed.
	Allowed bool
	// Limit is the quota in the window, as advertised in headers: the burst for
	// GCRA, the quota for a fixed window.
	Limit int64
	// Remaining is how many more requests of cost 1 would be allowed right now.
	Remaining int64
	// ResetAfter is how long until the limit is fully replenished (GCRA) or the
	// window resets (fixed window). Zero when nothing is consumed.
	ResetAfter time.Duration
	// RetryAfter is, when !Allowed, how long until a request of the same cost
	// would be allowed. Zero when Allowed.
	RetryAfter time.Duration
}

// Store makes atomic rate-limit decisions. Implementations: [Memory],
// redisstore.Store, and [Limiter] (which wraps a primary and a fallback).
//
// Keys are opaque; callers namespace them (e.g. "ip:203.0.113.9:route:login").
// GCRA keys and window keys live in separate namespaces, so the same key may be
// used with both algorithms.
type Store interface {
	// AllowGCRA makes one atomic GCRA decision for key under l, at cost n
	// (usually 1; 0 peeks without consuming).
	AllowGCRA(ctx context.Context, key string, l Limit, n int64) (Decision, error)
	// AllowWindow counts n against a fixed-window quota of limit per window.
	// Windows are aligned to multiples of window since the Unix epoch, so a
	// 24h window resets at 00:00 UTC. Counting is exact.
	AllowWindow(ctx context.Context, key string, limit int64, window time.Duration, n int64) (Decision, error)
}
