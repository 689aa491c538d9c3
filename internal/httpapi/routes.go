package httpapi

import "net/http"

// addRoutes is the whole public surface on one screen.
func addRoutes(mux *http.ServeMux, d *Deps) {
	ew := errorWriter{d.Logger}
	auth := func(h http.Handler) http.Handler { return requireToken(d, ew, h) }
	// Every identity response is uncacheable and every identity body is capped.
	authResponse := func(h http.Handler) http.Handler { return noStoreResponse(limitBody(d.MaxBodyBytes, h)) }

	mux.Handle("GET /healthz", handleHealth())
	mux.Handle("GET /readyz", handleReady(d, ew))
	mux.Handle("GET /.well-known/jwks.json", handleJWKS(d))
	mux.Handle("GET /.well-known/openid-configuration", handleDiscovery(d))

	mux.Handle("POST /auth/v1/signup", authResponse(handleSignup(d, ew)))
	mux.Handle("POST /auth/v1/token", authResponse(handleToken(d, ew)))
	mux.Handle("POST /auth/v1/revoke", authResponse(handleRevoke(d, ew)))
	mux.Handle("POST /auth/v1/logout", authResponse(auth(handleLogout(d, ew))))
	mux.Handle("GET /auth/v1/sessions", authResponse(auth(handleSessions(d, ew))))
	mux.Handle("DELETE /auth/v1/sessions/{id}", authResponse(auth(handleDeleteSession(d, ew))))
	mux.Handle("GET /auth/v1/user", authResponse(auth(handleUser(d, ew))))
	mux.Handle("/auth/v1/", authResponse(notFound(ew)))

	if d.Fallback != nil {
		mux.Handle("/", d.Fallback)
	} else {
		mux.Handle("/", notFound(ew))
	}
}

// noStoreResponse marks identity responses uncacheable: they carry tokens or
// personal data.
func noStoreResponse(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		next.ServeHTTP(w, r)
	})
}

func notFound(ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ew.problem(w, r, newProblem(http.StatusNotFound, "not-found", "Not found", "no such endpoint"))
	})
}
