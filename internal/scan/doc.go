// Package scan is the engine of `gatehouse scan`: it owns the findings model
// (severity, rule, evidence, stable fingerprint), the budgeted HTTP client every
// check must use, the scan target with its baseline (valid token, no token,
// broken signature, soft-404 fingerprint), the runner that schedules checks in
// phases, and the baseline/suppression filters applied to a finished report.
//
// The checks themselves live in package checks and the renderers in package
// report; this package knows neither.
//
// It must never: send a request that is not counted against the budget, follow a
// redirect to another host, wait longer than the Retry-After bound, put a secret
// (password, bearer token, cookie) into evidence unmasked, or keep running past
// the total scan deadline.
package scan
