// Package keys owns Gatehouse's key material: the key-encryption key (KEK), sealing
// of sensitive values at rest with associated data, keyed blind indexes, and the
// token-signing key ring with its JWKS document.
//
// What it owns:
//   - KEK: loaded from file:// or env://, or held by a KMS (hashivault://,
//     awskms://, gcpkms://, azurekeyvault://, base64key:// for tests) through
//     gocloud.dev/secrets; never printed, never logged, never stored. Every KEK is
//     a Wrapper: it wraps and unwraps the envelope layer's data keys.
//   - Sealer (version 1, 0x01): the pre-envelope format, kept so that databases
//     sealed before data keys existed still open; new values are sealed by
//     internal/envelope.
//     Sealer: AES-256-GCM under per-purpose subkeys derived from the KEK by HKDF,
//     with every ciphertext bound to its purpose and to caller-supplied associated
//     data (table, column, row id), and HMAC blind indexes under their own subkeys.
//   - Ring: the signing keys (next → active → retiring → retired), kept in the store
//     with their private halves sealed, rotated with conditional transitions so that
//     replicas racing to rotate cannot both win; JWS signing and verification; JWKS.
//
// What it must never do:
//   - write a KEK, a subkey or a private key to a log, an error or the store
//     (other than sealed);
//   - trust the store: a key row is used only if its private half opens under the
//     KEK with the row's key id as associated data and matches the row's public key;
//   - accept a token whose header chooses its own key (jwk, jku, x5u, x5c), declares
//     critical extensions, names an algorithm other than its key's, or is signed by a
//     retired key;
//   - take a lock on the verification path.
package keys
