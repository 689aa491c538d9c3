// Package envelope is Gatehouse's envelope encryption: per-purpose data keys
// (DEKs) wrapped by the key-encryption key (KEK), sealing values at rest under
// them, keyed blind indexes, and the rotations of both — re-wrapping every DEK
// under a new KEK, and re-sealing stored values under new DEKs in bounded,
// resumable batches.
//
// Format of a sealed value, version 2:
//
//	0x02 | DEK id (8 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext + tag (16)
//
// with the header, the purpose and the caller's associated data (table, column,
// row id) authenticated, so a value copied to another row, column or purpose
// does not open. Version 1 values (sealed under KEK-derived subkeys by
// internal/keys before data keys existed) still open while the KEK that sealed
// them is configured.
//
// What it owns: the data_keys rows (through a small store interface), the
// in-memory unwrapped DEKs, the closed set of sealing and indexing purposes.
//
// What it must never do: write a DEK anywhere but wrapped; log or print key
// material (dataKey and Keyring print masks); seal under a retired DEK; rotate a
// blind-index key (that would break every lookup); open a value for a purpose
// other than its DEK's; start with a KEK that does not unwrap every DEK.
package envelope
