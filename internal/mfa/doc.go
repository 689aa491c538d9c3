// Package mfa owns second factors other than passkeys: TOTP (RFC 6238)
// enrolment and verification, recovery codes, and the mfa_token that carries a
// sign-in from its first factor to its second.
//
// It must never store a TOTP secret unsealed (secrets are sealed under
// envelope.PurposeTOTP, bound to their user_secrets row), never store a
// recovery code or an mfa_token in a reversible form (only SHA-256 hashes), never
// accept a TOTP code whose time step is not after the last one accepted, and
// never put a code, secret or token in a log line or an audit event. Every
// check of a guessable factor is counted before it is made: against the
// mfa_token (a fixed number of attempts) and against the user (a failure
// throttle shared by every mfa_token), so fetching new mfa_tokens cannot buy
// more guesses.
package mfa
