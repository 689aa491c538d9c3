package httpapi

import (
	"net/http"
	"strconv"
	"time"
)

// PinDocument publishes the signed SPKI pin set. When Deps.Keys also implements
// it, GET /.well-known/gatehouse/pins.json serves the document; otherwise that path
// is 404.
type PinDocument interface {
	// PinsJWS returns the compact JWS (typ "gatehouse-pins+jwt", signed by the
	// token key ring) of the current pin set and how long clients may cache it.
	PinsJWS() (jws string, maxAge time.Duration, err error)
}

// handlePins serves the pin set for apps that update their pins at run time. The
// document is signed by the same keys as access tokens (published in the JWKS), so
// an app verifies it with keys it already trusts; the TLS connection it arrives on
// is not what makes it trustworthy.
func handlePins(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pd, ok := d.Keys.(PinDocument)
		if !ok {
			ew.problem(w, r, newProblem(http.StatusNotFound, "not-found", "Not found", "no pin set is published"))
			return
		}
		jws, maxAge, err := pd.PinsJWS()
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		if maxAge <= 0 {
			maxAge = time.Hour
		}
		w.Header().Set("Content-Type", "application/jose")
		w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge/time.Second)))
		w.Header().Set("Content-Length", strconv.Itoa(len(jws)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(jws))
	})
}
