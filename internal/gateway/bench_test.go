package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// cannedTransport answers every request with the same small JSON body, so a
// benchmark measures the chain and the proxy, not a network.
type cannedTransport struct{ body []byte }

func (c cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(c.body))}},
		Body:          io.NopCloser(bytes.NewReader(c.body)),
		ContentLength: int64(len(c.body)),
		Request:       r,
	}, nil
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }

func benchGateway(b *testing.B, rc config.Route) *Gateway {
	b.Helper()
	env, err := policy.NewEnv(policy.Options{})
	if err != nil {
		b.Fatal(err)
	}
	// As cmd wires it: the memory store on time.Now.
	mem := ratelimit.NewMemory(ratelimit.MemoryOptions{})
	lim, err := ratelimit.New(mem, ratelimit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	gw, err := New(Options{
		Routes:    []config.Route{rc},
		Upstreams: map[string]config.Upstream{"up": {URL: "http://127.0.0.1:9"}},
		Plans:     map[string]string{"free": "100/h"},
		// The verified-token cache in front of a verifier: after the first
		// request every Verify is a cache hit, as in production.
		Verifier:    token.NewCache(testClaims(), token.CacheOptions{}),
		Revocations: &revokedSet{},
		Limiter:     lim,
		Policy:      env,
		Transport:   cannedTransport{body: []byte(`{"id":"7","title":"hello","owner_id":"alice"}` + "\n")},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(gw.Close)
	return gw
}

func runChain(b *testing.B, gw *Gateway, target, tok string) {
	tmpl, err := http.NewRequest("GET", target, nil)
	if err != nil {
		b.Fatal(err)
	}
	tmpl.RemoteAddr = "203.0.113.7:4711"
	tmpl.Host = "api.example.com"
	if tok != "" {
		tmpl.Header.Set("Authorization", "Bearer "+tok)
	}
	tmpl.Header.Set("Accept", "application/json")
	tmpl.Header.Set("User-Agent", "bench/1.0")
	one := func() int {
		// What the server and httpapi's request scope do per request.
		r := *tmpl
		ctx, _ := reqctx.New(context.Background(), "0123456789abcdef0123456789abcdef", "203.0.113.7")
		r2 := r.WithContext(ctx)
		w := &discardWriter{h: make(http.Header, 8)}
		gw.ServeHTTP(w, r2)
		return w.code
	}
	if code := one(); code != http.StatusOK {
		b.Fatalf("status %d", code)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		one()
	}
}

// BenchmarkChain: an authenticated request with a cached token, a CEL
// ownership rule and a per-user rate limit on the memory store, proxied to a
// canned upstream.
func BenchmarkChain(b *testing.B) {
	gw := benchGateway(b, config.Route{
		Name: "user", Methods: []string{"GET"}, Path: "/v1/users/{id}", Upstream: "up",
		Allow:      `request.path.id == token.sub || "admin" in token.roles`,
		RateLimits: []string{"1000000/s per user"},
	})
	runChain(b, gw, "http://api.example.com/v1/users/alice", "tok-alice")
}

// BenchmarkChainPublic: an anonymous request on a public route, proxied to a
// canned upstream: the floor under BenchmarkChain.
func BenchmarkChainPublic(b *testing.B) {
	gw := benchGateway(b, config.Route{Name: "health", Methods: []string{"GET"}, Path: "/v1/health", Upstream: "up", Access: "public"})
	runChain(b, gw, "http://api.example.com/v1/health", "")
}
