// Package identity owns accounts: sign-up, password sign-in with online-guessing
// defence, and account administration (lock, unlock, roles, plan).
//
// It must never reveal whether an account exists through a sign-in response or its
// timing, never store an email address or a password in plaintext, and never log
// either. Throttling counters live in the store (shared by every replica) and are
// incremented before a password is checked, so parallel guesses cannot overrun them.
package identity
