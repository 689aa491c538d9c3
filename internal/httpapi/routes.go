package httpapi

import (
	"net/http"
	"strings"
)

// addRoutes is the whole public surface on one screen.
func addRoutes(mux *http.ServeMux, d *Deps) {
	ew := errorWriter{d.Logger}
	auth := func(h http.Handler) http.Handler { return requireToken(d, ew, h) }
	// Every identity response is uncacheable and every identity body is capped.
	authResponse := func(h http.Handler) http.Handler { return noStoreResponse(limitBody(d.MaxBodyBytes, h)) }
	r := newRouter(mux, ew)

	r.handle("GET", "/healthz", handleHealth())
	r.handle("GET", "/readyz", handleReady(d, ew))
	r.handle("GET", "/.well-known/jwks.json", handleJWKS(d))
	r.handle("GET", "/.well-known/openid-configuration", handleDiscovery(d))
	r.handle("GET", "/.well-known/gatehouse/pins.json", handlePins(d, ew))

	r.handle("POST", "/auth/v1/signup", authResponse(handleSignup(d, ew)))
	r.handle("POST", "/auth/v1/token", authResponse(handleToken(d, ew)))
	r.handle("POST", "/auth/v1/revoke", authResponse(handleRevoke(d, ew)))
	r.handle("POST", "/auth/v1/logout", authResponse(auth(handleLogout(d, ew))))
	r.handle("GET", "/auth/v1/sessions", authResponse(auth(handleSessions(d, ew))))
	r.handle("DELETE", "/auth/v1/sessions/{id}", authResponse(auth(handleDeleteSession(d, ew))))
	r.handle("GET", "/auth/v1/user", authResponse(auth(handleUser(d, ew))))
	r.handle("GET", "/auth/v1/oidc/{provider}/authorize", authResponse(handleOIDCAuthorize(d, ew)))
	r.handle("GET", "/auth/v1/oidc/{provider}/callback", authResponse(handleOIDCCallback(d, ew)))
	if d.Passkeys != nil { // passkeys off: these paths fall through to 404
		r.handle("POST", "/auth/v1/webauthn/register/begin", authResponse(auth(handleWebAuthnRegisterBegin(d, ew))))
		r.handle("POST", "/auth/v1/webauthn/register/finish", authResponse(auth(handleWebAuthnRegisterFinish(d, ew))))
		r.handle("POST", "/auth/v1/webauthn/login/begin", authResponse(handleWebAuthnLoginBegin(d, ew)))
		r.handle("POST", "/auth/v1/webauthn/login/finish", authResponse(handleWebAuthnLoginFinish(d, ew)))
		r.handle("GET", "/auth/v1/webauthn/credentials", authResponse(auth(handleWebAuthnCredentials(d, ew))))
		r.handle("DELETE", "/auth/v1/webauthn/credentials/{id}", authResponse(auth(handleWebAuthnDeleteCredential(d, ew))))
	}
	if d.MFAFactors != nil {
		r.handle("GET", "/auth/v1/mfa", authResponse(auth(handleMFAStatus(d, ew))))
		r.handle("POST", "/auth/v1/mfa/totp", authResponse(auth(handleTOTPEnrol(d, ew))))
		r.handle("DELETE", "/auth/v1/mfa/totp", authResponse(auth(handleTOTPDisable(d, ew))))
		r.handle("POST", "/auth/v1/mfa/totp/confirm", authResponse(auth(handleTOTPConfirm(d, ew))))
		r.handle("POST", "/auth/v1/mfa/recovery-codes", authResponse(auth(handleRecoveryCodes(d, ew))))
	}
	r.handle("POST", "/auth/v1/email/verify/send", authResponse(handleVerifySend(d, ew)))
	r.handle("POST", "/auth/v1/email/verify", authResponse(handleVerify(d, ew)))
	r.handle("POST", "/auth/v1/password/forgot", authResponse(handleForgot(d, ew)))
	r.handle("POST", "/auth/v1/password/reset", authResponse(handleReset(d, ew)))
	r.finish()
	mux.Handle("/auth/v1/", authResponse(notFound(ew)))

	if d.Fallback != nil {
		mux.Handle("/", d.Fallback)
	} else {
		mux.Handle("/", notFound(ew))
	}
}

// router registers method-specific routes and, for each path, a catch-all that
// answers 405 with Allow (problem+json) instead of falling through to a 404.
type router struct {
	mux     *http.ServeMux
	ew      errorWriter
	methods map[string][]string
	order   []string
}

func newRouter(mux *http.ServeMux, ew errorWriter) *router {
	return &router{mux: mux, ew: ew, methods: map[string][]string{}}
}

func (rt *router) handle(method, path string, h http.Handler) {
	rt.mux.Handle(method+" "+path, h)
	if _, ok := rt.methods[path]; !ok {
		rt.order = append(rt.order, path)
	}
	rt.methods[path] = append(rt.methods[path], method)
	if method == http.MethodGet {
		rt.methods[path] = append(rt.methods[path], http.MethodHead)
	}
}

func (rt *router) finish() {
	for _, path := range rt.order {
		allow := strings.Join(rt.methods[path], ", ")
		rt.mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			rt.ew.problem(w, r, newProblem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", "use "+allow))
		}))
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
