package gateway

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

// cors is a route's compiled cross-origin policy.
type cors struct {
	any         bool // "*": any origin, never with credentials (config refuses it)
	origins     []string
	headers     string
	credentials bool
	maxAge      string
}

func compileCORS(c *config.CORS) *cors {
	if c == nil {
		return nil
	}
	out := &cors{credentials: c.AllowCredentials}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			out.any = true
			continue
		}
		out.origins = append(out.origins, strings.ToLower(o))
	}
	h := c.AllowedHeaders
	if len(h) == 0 {
		h = []string{"Authorization", "Content-Type"}
	}
	out.headers = strings.Join(h, ", ")
	age := c.MaxAge.D()
	if age == 0 {
		age = 10 * time.Minute
	}
	out.maxAge = strconv.Itoa(int(age / time.Second))
	return out
}

// allowed reports whether origin may call the route. Origins are compared
// exactly (scheme, host, port): no suffix or pattern matching, which is how
// "evil-example.com" slips past a check for "example.com".
func (c *cors) allowed(origin string) bool {
	if c == nil || origin == "" {
		return false
	}
	return c.any || slices.Contains(c.origins, strings.ToLower(origin))
}

// setHeaders adds the CORS response headers for an allowed origin.
func (c *cors) setHeaders(h http.Header, origin string) {
	h.Add("Vary", "Origin")
	if c.any && !c.credentials {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	if c.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

// preflight answers a CORS preflight (OPTIONS with Access-Control-Request-Method)
// for the route the real request would take. It returns false when the request
// is not a preflight. A preflight is answered by Gatehouse itself and never
// reaches the upstream.
func (g *Gateway) preflight(w http.ResponseWriter, r *http.Request) (handled bool, routeName string) {
	if r.Method != http.MethodOptions {
		return false, ""
	}
	want := r.Header.Get("Access-Control-Request-Method")
	origin := r.Header.Get("Origin")
	if want == "" || origin == "" {
		return false, ""
	}
	rt, _, _ := g.table.lookup(want, r.URL.Path)
	if rt == nil || !rt.cors.allowed(origin) {
		// No CORS headers: the browser refuses the cross-origin call.
		w.WriteHeader(http.StatusNoContent)
		if rt != nil {
			return true, rt.name
		}
		return true, ""
	}
	h := w.Header()
	rt.cors.setHeaders(h, origin)
	h.Set("Access-Control-Allow-Methods", strings.Join(append([]string{want}, rt.methods...), ", "))
	h.Set("Access-Control-Allow-Headers", rt.cors.headers)
	h.Set("Access-Control-Max-Age", rt.cors.maxAge)
	w.WriteHeader(http.StatusNoContent)
	return true, rt.name
}
