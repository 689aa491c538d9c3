// Package redisstore is the Redis-backed ratelimit.Store, shared by every
// Gatehouse process that points at the same Redis.
//
// It owns the two server-side Lua scripts (GCRA and fixed window), the key
// layout under a configurable prefix, and the translation of script replies
// into ratelimit.Decision values. Each decision is one round trip (EVALSHA,
// falling back to EVAL when the script is not cached), is atomic on the
// server, and uses the Redis clock (TIME) so that processes with skewed clocks
// still agree. Keys carry a PEXPIRE so idle keys disappear on their own.
//
// It must never: read the local clock for a decision, issue more than one
// round trip per decision, apply a failure policy (ratelimit.Limiter does
// that), or log (errors are returned, wrapped, to the Limiter, which reports
// them).
package redisstore
