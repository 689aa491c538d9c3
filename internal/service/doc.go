// Package service authenticates machine callers — the backends named in the
// config's services[] — by HTTP Basic credentials (service id and secret), and
// says which permissions they hold (introspect, admin, transit).
//
// What it owns: the credential check (argon2id secret_hash or a secret read from
// secret_env, both compared in constant time), a short-lived cache of successful
// argon2id checks keyed by a per-process HMAC, and the middleware that answers
// 401 (with a Basic challenge) or 403 as problem+json.
//
// What it must never do: log, echo or store a presented secret; tell an unknown
// service id apart from a wrong secret (same status, same work); let a failed
// check be cached; run more than a few argon2id computations at once (a flood of
// wrong secrets must not starve sign-ins, which have their own hasher).
package service
