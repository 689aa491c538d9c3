// Package monitor is what Gatehouse tells its operators and how it answers
// attacks: Prometheus metrics on its own registry (never the global one), the
// event stream (audit events and gateway decisions on one bounded, non-blocking
// bus), the detectors that watch it (brute force, credential stuffing, object-id
// enumeration, refresh-token reuse, token forgery, error spikes), and the
// responses they trigger (temporary bans through package ban, alerts through
// package alert).
//
// It must never block or slow a request: the gateway's Decide touches atomic
// counters and offers denials to the bus, which drops (and counts) when a
// subscriber falls behind. It must never label a metric with a value an
// attacker controls without bound (user ids, paths, tokens): labels are route
// names, decisions, status classes, limit and detector names, all from the
// config or a closed set. Detectors bound their memory (maxKeys subjects each)
// and never ban an allow-listed address.
//
// Detectors see the events of their own replica only; bans are shared.
package monitor
