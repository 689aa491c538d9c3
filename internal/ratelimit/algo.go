package ratelimit

import "time"

// gcraStep is one GCRA decision, in nanoseconds since the Unix epoch.
//
// tat is the stored theoretical arrival time (any value ≤ now means "no
// state"). interval is the emission interval and burst the bucket size, both
// already validated. It returns the TAT to store (meaningful only when the
// decision is allowed and n > 0) and the decision.
//
// The redisstore Lua script implements the same arithmetic in microseconds;
// keep the two in step (the conformance suite checks they agree).
func gcraStep(now, tat, interval, burst, n int64) (int64, Decision) {
	if tat < now {
		tat = now
	}
	newTAT := tat + n*interval
	// allowAt is the earliest time at which a request of cost n fits: the bucket
	// holds burst×interval of "debt" at most.
	allowAt := newTAT - burst*interval
	if now >= allowAt {
		return newTAT, Decision{
			Allowed:    true,
			Limit:      burst,
			Remaining:  (now - allowAt) / interval,
			ResetAfter: time.Duration(newTAT - now),
		}
	}
	remaining := (now - (tat - burst*interval)) / interval
	if remaining < 0 {
		remaining = 0
	}
	return tat, Decision{
		Allowed:    false,
		Limit:      burst,
		Remaining:  remaining,
		ResetAfter: time.Duration(tat - now),
		RetryAfter: time.Duration(allowAt - now),
	}
}

// windowStep is one fixed-window decision, in nanoseconds since the Unix
// epoch. count is the number already counted in the window ending at end (the
// caller passes 0 when its stored window is not the current one). It returns
// the new count and the decision.
func windowStep(now, end, count, limit, n int64) (int64, Decision) {
	reset := time.Duration(end - now)
	if count+n <= limit {
		count += n
		return count, Decision{Allowed: true, Limit: limit, Remaining: limit - count, ResetAfter: reset}
	}
	return count, Decision{Allowed: false, Limit: limit, Remaining: max(limit-count, 0), ResetAfter: reset, RetryAfter: reset}
}

// windowEnd returns the end of the epoch-aligned window of length w holding now.
func windowEnd(now, w int64) int64 {
	idx := now / w
	if now < 0 && now%w != 0 {
		idx-- // floor division for clocks before 1970 (tests only)
	}
	return (idx + 1) * w
}
