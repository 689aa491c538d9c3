// Package tlsutil owns Gatehouse's transport security material: the server
// *tls.Config (TLS 1.2+ with AEAD-only suites), certificates loaded from files and
// reloaded when they change, the local development CA used by `gatehouse demo`, and
// SPKI pin computation for certificate pinning.
//
// It must never weaken a TLS setting on request (no CBC, no RSA key exchange, no TLS
// below 1.2), never overwrite an existing CA private key, never log private key
// material, and never take a listener down because a certificate file on disk is
// momentarily broken: the last good certificate keeps serving.
package tlsutil
