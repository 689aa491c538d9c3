// Package revoke is the edge's list of revoked sessions: an access token whose
// session id is on it is refused even though its signature and expiry are fine.
//
// A revocation reaches every replica three ways: at once in-process; through
// Redis pub/sub when a Redis cache is configured (every replica within
// milliseconds); and by polling the store for recently revoked sessions (so a
// revocation made by the CLI or by a replica without Redis still arrives within
// the poll interval). Entries expire when no access token of the session can
// still be valid. It must never block a request on the network: lookups are
// in-memory only.
package revoke
