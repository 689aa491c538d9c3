package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/tlsutil"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader in two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// testEnv is a directory with a dev CA, a KEK file and a config file.
type testEnv struct {
	dir    string
	cfg    string
	addr   string
	issuer string
	ca     string
	db     string
}

// newTestEnv writes a config for a server on a free loopback port. extra is YAML
// appended at the top level (it may override nothing already set).
func newTestEnv(t testing.TB, extra string) *testEnv {
	t.Helper()
	dir := t.TempDir()
	ca, err := tlsutil.EnsureDevCA(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kek := filepath.Join(dir, "kek.key")
	if err := keys.GenerateKEKFile(kek); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	e := &testEnv{dir: dir, addr: addr, issuer: "https://" + addr, ca: ca.CAFile, db: filepath.Join(dir, "gatehouse.db")}
	store := "sqlite://" + e.db
	if !strings.Contains(extra, "limits:") {
		// Tests send many requests from one IP; the edge limits have their own tests.
		extra += "limits:\n  per_ip: 100000/s\n  auth: {signup: 100000/h, token: 100000/m}\n"
	}
	cfg := fmt.Sprintf(`issuer: %s
store: %s
kek: file://%s
server:
  listen: %s
  tls: {cert_file: %s, key_file: %s}
  shutdown_timeout: 10s
admin:
  disabled: true
tokens:
  audience: [gatehouse-test]
%s`, e.issuer, store, kek, addr, ca.CertFile, ca.KeyFile, extra)
	e.cfg = filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *testEnv) client(t testing.TB) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(e.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: 64, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// server is a gatehouse started through run(), as the binary would be.
type server struct {
	*testEnv
	c      *http.Client
	stdout *syncBuffer
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// startServer runs `gatehouse serve --config F` in-process and waits for /readyz.
func startServer(t *testing.T, e *testEnv, getenv func(string) string) *server {
	t.Helper()
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{testEnv: e, c: e.client(t), stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		s.done <- run(ctx, []string{"gatehouse", "serve", "--config", e.cfg}, getenv, strings.NewReader(""), s.stdout, s.stderr)
	}()
	t.Cleanup(func() { s.stop(t) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("server exited: %v\n%s", err, s.stderr.String())
		default:
		}
		resp, err := s.c.Get(e.issuer + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v\n%s", err, s.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) stop(t testing.TB) error {
	s.cancel()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(30 * time.Second):
		t.Errorf("server did not stop")
		return nil
	}
}

// response is a decoded reply.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("not JSON (%d): %s", r.status, r.body)
	}
	return m
}

func (r *response) str(t testing.TB, k string) string {
	t.Helper()
	v, _ := r.json(t)[k].(string)
	return v
}

func do(t testing.TB, c *http.Client, method, u, contentType, body string, hdr ...string) *response {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

const formType = "application/x-www-form-urlencoded"
const jsonType = "application/json"

func (s *server) signup(t testing.TB, email, pw string) *response {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"email": email, "password": pw})
	return do(t, s.c, "POST", s.issuer+"/auth/v1/signup", jsonType, string(b))
}

func (s *server) login(t testing.TB, email, pw string) *response {
	t.Helper()
	return do(t, s.c, "POST", s.issuer+"/auth/v1/token", formType, form("grant_type", "password", "username", email, "password", pw))
}

func (s *server) refresh(t testing.TB, rt string) *response {
	t.Helper()
	return do(t, s.c, "POST", s.issuer+"/auth/v1/token", formType, form("grant_type", "refresh_token", "refresh_token", rt))
}

func (s *server) get(t testing.TB, path, access string) *response {
	t.Helper()
	return do(t, s.c, "GET", s.issuer+path, "", "", "Authorization", "Bearer "+access)
}

func wantStatus(t testing.TB, r *response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
}
