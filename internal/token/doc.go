// Package token mints and verifies access tokens (JWTs, RFC 9068 profile) and runs
// refresh-token families: rotation on every use, the reuse leeway, and family
// revocation on reuse.
//
// It owns the token rules of DESIGN.md ("Tokens"). It must never store or log a
// refresh token in plaintext: only SHA-256 hashes reach the store, and a rotated
// token's successor is kept sealed for the reuse leeway only.
package token
