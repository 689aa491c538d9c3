package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

func corsTestGateway(t *testing.T, c *config.CORS) *Gateway {
	t.Helper()
	p, err := compilePattern("/v1/notes/{id}")
	if err != nil {
		t.Fatal(err)
	}
	rt := &route{name: "note", methods: []string{"GET", "PUT"}, pattern: p, cors: compileCORS(c)}
	return &Gateway{table: table{routes: []*route{rt}}}
}

func TestCORSPreflight(t *testing.T) {
	g := corsTestGateway(t, &config.CORS{AllowedOrigins: []string{"https://app.example.com"}, AllowCredentials: true})
	cases := []struct {
		name, origin, method string
		wantOrigin           string
	}{
		{"allowed origin", "https://app.example.com", "PUT", "https://app.example.com"},
		{"case-insensitive host", "https://APP.example.com", "GET", "https://APP.example.com"},
		{"suffix attack", "https://evil-app.example.com", "GET", ""},
		{"prefix attack", "https://app.example.com.evil.net", "GET", ""},
		{"null origin", "null", "GET", ""},
		{"method not on route", "https://app.example.com", "DELETE", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("OPTIONS", "/v1/notes/7", nil)
			r.Header.Set("Origin", c.origin)
			r.Header.Set("Access-Control-Request-Method", c.method)
			w := httptest.NewRecorder()
			ok, _ := g.preflight(w, r)
			if !ok || w.Code != http.StatusNoContent {
				t.Fatalf("preflight handled=%v status=%d", ok, w.Code)
			}
			if got := w.Header().Get("Access-Control-Allow-Origin"); got != c.wantOrigin {
				t.Fatalf("Allow-Origin %q, want %q", got, c.wantOrigin)
			}
			if c.wantOrigin != "" && w.Header().Get("Access-Control-Allow-Credentials") != "true" {
				t.Fatal("credentials header missing")
			}
		})
	}
	// Not a preflight: a plain OPTIONS falls through to the route table.
	r := httptest.NewRequest("OPTIONS", "/v1/notes/7", nil)
	if ok, _ := g.preflight(httptest.NewRecorder(), r); ok {
		t.Fatal("plain OPTIONS treated as preflight")
	}
}

func TestCORSWildcardWithoutCredentials(t *testing.T) {
	c := compileCORS(&config.CORS{AllowedOrigins: []string{"*"}})
	h := http.Header{}
	if !c.allowed("https://anything.example") {
		t.Fatal("wildcard refused an origin")
	}
	c.setHeaders(h, "https://anything.example")
	if h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("headers %v", h)
	}
	var none *cors
	if none.allowed("https://a.example") {
		t.Fatal("a route without CORS allowed an origin")
	}
}
