// Package httpapi is Gatehouse's own HTTP surface: the identity API (/auth/v1),
// the well-known documents, health checks, and the one error writer that turns
// domain errors into RFC 9457 problem details or RFC 6749 §5.2 token errors.
//
// NewServer lists every route in addRoutes (routes.go); handlers are makers
// (handleX(deps) http.Handler); middleware is func(http.Handler) http.Handler.
// It must never show an internal error to a client (they are logged under the
// request id) and never log a password, token or code.
package httpapi
