// Package tlsutil owns Gatehouse's transport security material: the server
// *tls.Config (TLS 1.2+ with AEAD-only suites), certificates loaded from files and
// reloaded when they change or obtained and renewed through ACME (certmagic),
// session-ticket keys derived from the KEK so replicas share them, the plain-HTTP
// handler that only redirects and refuses, the client TLS configuration for
// upstreams (pinned CA, mTLS), the local development CA used by `gatehouse demo`,
// the pre-generated backup key, and SPKI pins with the pin-set snippets apps use.
//
// It must never weaken a TLS setting on request (no CBC, no RSA key exchange, no TLS
// below 1.2), never overwrite an existing CA or backup private key, never log
// private key material, never let the plain-HTTP handler forward anything, and
// never take a listener down because a certificate file on disk is momentarily
// broken: the last good certificate keeps serving.
package tlsutil
