package load

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// server is a TLS test server on 127.0.0.1 whose handler counts requests.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64, *tls.Config) {
	t.Helper()
	var n atomic.Int64
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	cfg := s.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	return s, &n, cfg
}

func ok(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true}`))
}

func request(t *testing.T, s *httptest.Server, kv ...string) []byte {
	t.Helper()
	req, err := GET(s.Listener.Addr().String(), "/x", kv...)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestDialRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"", "10.0.0.1:443", "192.168.1.1:80", "8.8.8.8:443", "example.com:443", "localhost:443", "[::ffff:10.0.0.1]:443", "127.0.0.1"} {
		t.Run(addr, func(t *testing.T) {
			_, err := Dial(context.Background(), addr, []byte("GET / HTTP/1.1\r\n\r\n"), Options{Conns: 1})
			if !errors.Is(err, ErrNotLoopback) {
				t.Fatalf("err = %v, want ErrNotLoopback", err)
			}
		})
	}
}

func TestGET(t *testing.T) {
	tests := []struct {
		name string
		host string
		path string
		kv   []string
		want string // a line the request must hold; "" means an error
	}{
		{"plain", "127.0.0.1:1", "/v1/a?b=c", nil, "GET /v1/a?b=c HTTP/1.1\r\n"},
		{"header", "127.0.0.1:1", "/", []string{"Authorization", "Bearer x"}, "\r\nAuthorization: Bearer x\r\n\r\n"},
		{"CRLF in value", "127.0.0.1:1", "/", []string{"X", "a\r\nGET /admin HTTP/1.1"}, ""},
		{"LF in host", "127.0.0.1:1\nX: y", "/", nil, ""},
		{"CR in path", "127.0.0.1:1", "/a\rb", nil, ""},
		{"space in path", "127.0.0.1:1", "/a b", nil, ""},
		{"relative path", "127.0.0.1:1", "a", nil, ""},
		{"odd header list", "127.0.0.1:1", "/", []string{"X"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := GET(tt.host, tt.path, tt.kv...)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("GET accepted: %q", b)
				}
				return
			}
			if err != nil || !bytes.Contains(b, []byte(tt.want)) {
				t.Fatalf("GET = %q, %v; want it to hold %q", b, err, tt.want)
			}
			if _, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b))); err != nil {
				t.Fatalf("not a valid request: %v", err)
			}
		})
	}
}

func TestClosedStopsAtMaxRequests(t *testing.T) {
	const conns, maxReq = 8, 200
	tests := []struct {
		name   string
		h      http.HandlerFunc // after the warm-up requests
		ok     uint64
		non2xx uint64
		status string
	}{
		{"keep-alive", ok, maxReq, 0, "200×200"},
		{"server closes every connection", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			ok(w, r)
		}, maxReq, 0, "200×200"},
		{"refusals are counted, not hidden", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusTooManyRequests)
		}, 0, maxReq, "429×200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen atomic.Int64
			s, n, cfg := server(t, func(w http.ResponseWriter, r *http.Request) {
				if seen.Add(1) <= conns {
					ok(w, r) // Dial's warm-up
					return
				}
				tt.h(w, r)
			})
			p, err := Dial(context.Background(), s.Listener.Addr().String(), request(t, s), Options{Conns: conns, TLS: cfg})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			r := p.Closed(context.Background(), time.Minute, maxReq)
			if r.OK != tt.ok || r.Non2xx != tt.non2xx || r.Errors != 0 || r.StatusSummary() != tt.status {
				t.Fatalf("ok %d non2xx %d errors %d statuses %q; want %d %d 0 %q", r.OK, r.Non2xx, r.Errors, r.StatusSummary(), tt.ok, tt.non2xx, tt.status)
			}
			if r.Latency.Count() != maxReq || n.Load() != conns+maxReq {
				t.Fatalf("latency count %d, server saw %d; want %d, %d", r.Latency.Count(), n.Load(), maxReq, conns+maxReq)
			}
		})
	}
}

func TestOpenSendsEveryScheduledRequest(t *testing.T) {
	s, n, cfg := server(t, ok)
	p, err := Dial(context.Background(), s.Listener.Addr().String(), request(t, s), Options{Conns: 4, TLS: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	warm := n.Load()
	r, err := p.Open(context.Background(), 2000, 100*time.Millisecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Every scheduled request is accounted for, whatever the machine's speed.
	if got := r.OK + r.Non2xx + r.Errors + r.Dropped; got != 200 {
		t.Fatalf("accounted %d requests, want 200 (%+v)", got, r)
	}
	if uint64(n.Load()-warm) != r.OK+r.Non2xx {
		t.Fatalf("server saw %d, result says %d answered", n.Load()-warm, r.OK+r.Non2xx)
	}
	if r.Service.Count() != r.Latency.Count() || r.Service.Quantile(1) > r.Latency.Quantile(1) {
		t.Fatalf("service time (%v max) exceeds latency from the schedule (%v max)", r.Service.Quantile(1), r.Latency.Quantile(1))
	}
}

func TestOpenBadArguments(t *testing.T) {
	p := &Pool{}
	for _, c := range []struct {
		rate float64
		d    time.Duration
	}{{0, time.Second}, {-1, time.Second}, {10, 0}} {
		if _, err := p.Open(context.Background(), c.rate, c.d, 0); err == nil {
			t.Errorf("Open(%v, %v) accepted", c.rate, c.d)
		}
	}
}

func TestOpenCancelledDropsTheRest(t *testing.T) {
	s, _, cfg := server(t, ok)
	p, err := Dial(context.Background(), s.Listener.Addr().String(), request(t, s), Options{Conns: 2, TLS: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, err := p.Open(ctx, 100, 10*time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Dropped != 1000 || r.OK != 0 {
		t.Fatalf("dropped %d ok %d, want 1000 0", r.Dropped, r.OK)
	}
}

func TestDialFailsOnBadWarmUp(t *testing.T) {
	s, _, cfg := server(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	if _, err := Dial(context.Background(), s.Listener.Addr().String(), request(t, s), Options{Conns: 2, TLS: cfg}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v, want a 401 warm-up failure", err)
	}
	// A TLS client that does not trust the server fails the handshake.
	if _, err := Dial(context.Background(), s.Listener.Addr().String(), request(t, s), Options{Conns: 1, TLS: &tls.Config{}}); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
}

func FuzzGET(f *testing.F) {
	f.Add("127.0.0.1:8443", "/v1/bench", "Authorization", "Bearer abc") // ordinary
	f.Add("127.0.0.1:1", "/a\r\n\r\nGET /b", "X", "y")                  // request smuggling attempt
	f.Add("h", "/", "X", "a\nb")                                        // bare LF in a value
	f.Fuzz(func(t *testing.T, host, path, k, v string) {
		b, err := GET(host, path, k, v)
		if err != nil {
			return
		}
		if n := bytes.Count(b, []byte("\r\n\r\n")); n != 1 || !bytes.HasSuffix(b, []byte("\r\n\r\n")) {
			t.Fatalf("request has %d header ends: %q", n, b)
		}
	})
}

func TestReadResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		raw       string
		status    int
		closeNext bool
		rest      string // what must be left unread
		wantErr   bool
	}{
		{name: "content-length", raw: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhelloNEXT", status: 200, rest: "NEXT"},
		{name: "case-insensitive names", raw: "HTTP/1.1 429 Too Many Requests\r\ncontent-length:  2\r\nRateLimit: \"x\";r=0;t=1\r\n\r\n{}NEXT", status: 429, rest: "NEXT"},
		{name: "chunked", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\nNEXT", status: 200, rest: "NEXT"},
		{name: "connection close", raw: "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", status: 503, closeNext: true},
		{name: "no length reads to the end", raw: "HTTP/1.1 200 OK\r\n\r\nall of it", status: 200, closeNext: true},
		{name: "bad status line", raw: "HTTP/1.1 2x0 OK\r\n\r\n", wantErr: true},
		{name: "bad length", raw: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", wantErr: true},
		{name: "truncated body", raw: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			br := bufio.NewReader(strings.NewReader(tc.raw))
			st, closeNext, err := readResponse(br)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			rest, _ := io.ReadAll(br)
			if st != tc.status || closeNext != tc.closeNext || string(rest) != tc.rest {
				t.Errorf("got %d close=%v rest %q, want %d close=%v rest %q", st, closeNext, rest, tc.status, tc.closeNext, tc.rest)
			}
		})
	}
}
