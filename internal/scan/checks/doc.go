// Package checks holds the scanner's checks, one small type per concern, each
// implementing scan.Check: transport (TLS), missing authentication, token
// forgery, brute force and rate limits, ownership (BOLA), data exposure,
// injection probes, CORS, security headers, exposed debug endpoints and verbose
// errors.
//
// It must never: send a request except through the target's budgeted client,
// send a payload that changes or destroys data (no DROP, DELETE statements,
// sleep, command substitution), delete an object the scan did not create,
// contact a host other than the target (forged jku/x5u URLs point at the
// unroutable attacker.invalid and are only ever sent as token headers), or
// put an unmasked secret into evidence.
package checks
