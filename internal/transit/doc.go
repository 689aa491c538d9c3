// Package transit is encryption as a service for the operator's own backend,
// like Vault's transit engine: named keys with versions, encrypt, decrypt and
// rewrap (single and batch), over the admin listener.
//
// Ciphertexts are "gh:v<version>:<base64>" where the base64 is nonce (12
// bytes) || AES-256-GCM ciphertext and tag, with the key name, the version and
// the caller's optional context as associated data. Each version's key is stored
// sealed by the envelope layer; old versions decrypt until retired by raising
// min_decryption_version.
//
// What it owns: the transit key lifecycle (create, rotate, retire versions), the
// ciphertext format and its parser, the HTTP handlers under
// /admin/v1/transit/, and their audit events.
//
// What it must never do: store, log or audit a plaintext or a context; return
// a key; decrypt with a version below min_decryption_version; answer an
// internal error with its cause (it is logged under the request id).
package transit
