// Package ratelimittest holds the conformance suite every ratelimit.Store must
// pass (Run), and a controllable clock (FakeClock) for driving it.
//
// It owns test helpers only; it must never be imported by non-test code.
package ratelimittest
