// Package password owns how Gatehouse stores and accepts passwords: argon2id
// hashing in the PHC string format, a cap on how many hashes run at once, and
// the NIST SP 800-63B password policy with a shipped common-password blocklist.
//
// It owns:
//   - Params and their bounds (the OWASP floor below, hostile values above);
//   - Hasher: Hash, Verify (constant-time, with a rehash signal when the stored
//     cost differs from the configured one) and VerifyDummy (the same cost for an
//     unknown account, so response time does not reveal whether it exists);
//   - ParsePHC, a strict parser for stored hashes;
//   - Policy, Normalize and Blocklist: which new passwords are acceptable.
//
// It must never:
//   - log, return or embed a password (or any part of it) in an error or message;
//   - compare secrets with anything but crypto/subtle;
//   - run more argon2id computations at once than the Hasher was given, or wait
//     longer for a slot than its QueueTimeout (a login flood must not starve the
//     proxied traffic of CPU);
//   - allocate or compute what an unbounded stored hash asks for: every parameter
//     read from storage is bounded before it reaches argon2;
//   - impose composition rules (NIST SP 800-63B forbids them);
//   - hold package-level mutable state: the blocklist is loaded per Policy.
//
// Normalisation: callers pass the result of Normalize (NFKC) to Hash and Verify,
// so that the same password typed on different keyboards hashes the same way.
// Policy.Check normalises by itself.
package password
