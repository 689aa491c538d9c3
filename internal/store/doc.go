// Package store is Gatehouse's persistence layer: accounts, sessions and their
// refresh-token families, signing keys, audit events and login-throttling counters,
// kept in SQLite (the embedded default) or PostgreSQL (scale-out).
//
// One package serves both dialects over database/sql. The SQL is written once with
// "?" placeholders and rewritten to "$n" for PostgreSQL when the DB is opened;
// the schema lives in embedded, per-dialect goose migrations. Every method is one
// statement or one transaction, and driver errors are turned into the domain errors
// ErrNotFound and ErrConflict (wrapped with the operation name) at this boundary, so
// callers never branch on a driver. Times are stored as UTC unix microseconds in
// both dialects; see docs/decisions/0001-one-sql-store.md.
//
// Personal data it keeps on the callers' behalf — sessions' IP and user agent,
// events' IP, throttle counter keys — is sealed (or blind-indexed) through an
// injected FieldSealer (WithFieldSealer) before it is written; the package holds
// no key and implements no cryptography itself.
//
// What it must never do: see a secret in plaintext (callers pass password hashes,
// refresh-token hashes and sealed bytes), log a value
// it stores, let driver error text carrying data values escape, or decide policy
// (expiry, leeway, lockout thresholds). Those belong to the callers; the store only
// makes the state changes they ask for atomic.
package store
