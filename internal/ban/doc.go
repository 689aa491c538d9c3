// Package ban is the edge's list of temporary bans: client addresses, users and
// sessions that the gateway refuses (403) before doing any other work.
//
// A ban reaches every replica three ways, like a revocation (package revoke): at
// once in-process; through Redis pub/sub when a Redis cache is configured; and
// by polling the store for bans created or lifted since the last look (so a ban
// made by the CLI, or by a replica without Redis, still arrives within the poll
// interval). The store is the record; the in-memory list is a cache of it.
//
// It must never block a request on the network: Check reads memory only. It
// never decides whom to ban (detectors and operators do) and never bans an
// address on its own allow-list check — that is the caller's (package monitor).
package ban
