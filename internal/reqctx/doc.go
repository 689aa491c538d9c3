// Package reqctx is the request scope: the request id, the client IP and, once
// authenticated, the verified token claims, carried in the context under a typed key.
//
// It also decides who the client is: X-Forwarded-For and X-Request-Id are believed
// only from configured trusted proxies. It must never trust a header from an
// untrusted peer.
package reqctx
