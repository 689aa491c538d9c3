// Package adminapi is the JSON admin API on the admin listener (/admin/v1/*):
// events, bans, alerts, live stats, users and their sessions, key and
// certificate status. It also owns the admin sessions that the dashboard signs
// in to (package dashboard), because both authenticate through it.
//
// Callers authenticate with a dashboard session cookie (state-changing requests
// also need the session's CSRF token in X-CSRF-Token) or with HTTP Basic
// credentials of a configured service that holds the "admin" permission
// (checked by package service).
// Everything else gets 401.
//
// It must never return a secret (password hashes, sealed values, refresh
// tokens, service secrets) and never act for an unauthenticated caller. Errors
// are problem+json; internal errors are logged under the request id, never shown.
package adminapi
