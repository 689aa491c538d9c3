package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

func handleHealth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, "application/json", map[string]string{"status": "ok"})
	})
}

// handleReady reports whether the store and keys answer. The reason is logged,
// not shown: readiness is public and must not describe the infrastructure.
func handleReady(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := d.Ready(ctx); err != nil {
				ew.log.WarnContext(r.Context(), "not ready", "error", err.Error())
				writeJSON(w, http.StatusServiceUnavailable, "application/json", map[string]string{"status": "unavailable"})
				return
			}
		}
		writeJSON(w, http.StatusOK, "application/json", map[string]string{"status": "ready"})
	})
}

func handleJWKS(d *Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := d.Keys.JWKS()
		ttl := d.JWKSCacheTTL
		if ttl <= 0 {
			ttl = 5 * time.Minute
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(ttl/time.Second)))
		_, _ = w.Write(b)
	})
}

// handleDiscovery is the OpenID Provider Metadata subset that lets standard
// JWT/OIDC libraries find the keys and check the issuer.
func handleDiscovery(d *Deps) http.Handler {
	doc := map[string]any{
		"issuer":                                     d.Issuer,
		"jwks_uri":                                   d.Issuer + "/.well-known/jwks.json",
		"token_endpoint":                             d.Issuer + "/auth/v1/token",
		"revocation_endpoint":                        d.Issuer + "/auth/v1/revoke",
		"userinfo_endpoint":                          d.Issuer + "/auth/v1/user",
		"grant_types_supported":                      []string{"password", "refresh_token"},
		"response_types_supported":                   []string{"code"},
		"subject_types_supported":                    []string{"public"},
		"id_token_signing_alg_values_supported":      []string{d.Algorithm},
		"token_endpoint_auth_methods_supported":      []string{"none"},
		"revocation_endpoint_auth_methods_supported": []string{"none"},
		"code_challenge_methods_supported":           []string{"S256"},
		"scopes_supported":                           []string{d.Scope},
	}
	if d.MFA != nil {
		doc["grant_types_supported"] = append(doc["grant_types_supported"].([]string), mfaGrantType)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		writeJSON(w, http.StatusOK, "application/json", doc)
	})
}
