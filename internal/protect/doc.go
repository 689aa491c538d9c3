// Package protect judges what crosses the gateway in both directions, one route at
// a time: it validates requests against the upstream's OpenAPI 3.0 or 3.1 document
// (path, query, headers, body; unknown and readOnly properties refused), bounds the
// shape of JSON bodies before anything parses them, runs the Coraza WAF with the
// OWASP Core Rule Set, and filters responses: properties the response schema does
// not declare are dropped and secrets (password hashes, private keys, JWTs, cloud
// and Gatehouse tokens, card numbers) are redacted or blocked.
//
// Everything is compiled once per route at start-up (New); CheckRequest and
// FilterResponse are safe for concurrent use and allocate per call only what the
// body they judge needs.
//
// It must never echo what it refused: a Finding carries a kind, a field path, rule
// ids and at most a short masked excerpt, never the offending payload, so that an
// audit event or a 400 problem built from it cannot become the leak it stopped. It
// must never let a response through half-judged: a body it must rewrite but cannot
// read whole (too large, compressed, malformed) is blocked, not passed.
//
// It owns no I/O beyond the request and response bodies it is handed, writes no
// response and records no event: the gateway turns a Violation into a problem and
// an audit event.
package protect
