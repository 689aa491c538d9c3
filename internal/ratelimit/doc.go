// Package ratelimit decides whether a request may proceed under a rate or a quota.
//
// It owns:
//   - [Limit] and its text form ("100/h", "20/10s burst 50") via [ParseLimit];
//   - the two algorithms: GCRA for rates (one number per key, the theoretical
//     arrival time) and fixed windows aligned to the Unix epoch for plan quotas;
//   - the [Store] interface both algorithms run against, and the in-memory
//     store [Memory] (sharded, bounded, with an injected clock);
//   - the [Limiter], which applies the per-policy failure setting (local,
//     allow, deny) when its primary store errors, logging and reporting every
//     failure;
//   - the IETF RateLimit-Policy / RateLimit / Retry-After response fields
//     ([SetHeaders], [AddHeaders]).
//
// The Redis store lives in the sub-package redisstore (one package per
// external dependency); the conformance suite every store must pass lives in
// ratelimittest.
//
// It must never: decide who a caller is or which limit applies to a route
// (the gateway and policy packages do that and hand in a key and a [Limit]);
// write HTTP status codes or bodies; keep unbounded state in memory; swallow a
// store failure silently; or use package-level mutable state.
package ratelimit
