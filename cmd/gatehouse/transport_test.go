package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/tlsutil"
)

// transportEnv is a config like newTestEnv's with room for transport settings:
// server lines (indented two spaces), server.tls lines (four) and top-level YAML.
type transportOpts struct {
	server, tls, extra string
	admin              bool // enable the admin listener on a free port
}

func newTransportEnv(t testing.TB, o transportOpts) *testEnv {
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
	admin := "admin:\n  disabled: true\n"
	if o.admin {
		admin = "admin:\n  listen: " + freePort(t) + "\n"
	}
	cfg := fmt.Sprintf(`issuer: %s
store: sqlite://%s
kek: file://%s
server:
  listen: %s
  shutdown_timeout: 10s
%s  tls:
    cert_file: %s
    key_file: %s
%s%stokens:
  audience: [gatehouse-test]
limits:
  per_ip: 100000/s
  auth: {signup: 100000/h, token: 100000/m}
%s`, e.issuer, e.db, kek, addr, o.server, ca.CertFile, ca.KeyFile, o.tls, admin, o.extra)
	e.cfg = filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// stdoutAddr waits for "prefix ADDR" on the server's stdout.
func (s *server) stdoutAddr(t testing.TB, prefix string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(s.stdout.String()))
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return a
		}
	}
	t.Fatalf("no %q line on stdout:\n%s", prefix, s.stdout.String())
	return ""
}

func (e *testEnv) roots(t testing.TB) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(e.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return pool
}

// The policy of tlsutil.ServerConfig holds on the listener run() builds: old
// protocol versions, CBC and RSA key exchange are refused; TLS 1.2 with AEAD and
// TLS 1.3 work; every HTTPS response carries HSTS.
func TestServeTLSPolicy(t *testing.T) {
	s := startServer(t, newTransportEnv(t, transportOpts{}), nil)
	roots := s.roots(t)
	tests := []struct {
		name   string
		client *tls.Config
		wantOK bool
	}{
		{"TLS 1.0", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, false},
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}, false},
		{"TLS 1.2 CBC only", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}}, false},
		{"TLS 1.2 RSA key exchange only", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_RSA_WITH_AES_128_CBC_SHA}}, false},
		{"TLS 1.2 3DES", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA}}, false},
		{"TLS 1.2 P-384 only", &tls.Config{MaxVersion: tls.VersionTLS12, CurvePreferences: []tls.CurveID{tls.CurveP384}}, false},
		{"TLS 1.2 AEAD", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, true},
		{"TLS 1.2 P-256", &tls.Config{MaxVersion: tls.VersionTLS12, CurvePreferences: []tls.CurveID{tls.CurveP256}}, true},
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.client.Clone()
			c.RootCAs, c.ServerName = roots, "127.0.0.1"
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", s.addr, c)
			if err == nil {
				conn.Close()
			}
			if (err == nil) != tc.wantOK {
				t.Fatalf("handshake err = %v, want ok=%v", err, tc.wantOK)
			}
		})
	}
	for _, path := range []string{"/healthz", "/.well-known/jwks.json", "/auth/v1/user", "/no/such/route", "/.well-known/gatehouse/pins.json"} {
		r := do(t, s.c, "GET", s.issuer+path, "", "")
		if got := r.header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=63072000") {
			t.Errorf("%s (%d): Strict-Transport-Security = %q", path, r.status, got)
		}
	}
	// Without a backup key there is no pin set to publish: pinning one key alone
	// would lock apps out the day it changes.
	wantStatus(t, do(t, s.c, "GET", s.issuer+"/.well-known/gatehouse/pins.json", "", ""), http.StatusNotFound)
}

// Nothing sent to the plain-HTTP listener reaches the upstream or the identity
// API, whatever the method, path or headers; browsers are redirected.
func TestPlainHTTPListenerNeverReachesUpstream(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()
	env := newTransportEnv(t, transportOpts{
		server: "  http_listen: " + freePort(t) + "\n",
		extra: fmt.Sprintf(`upstreams:
  api:
    url: %s
routes:
  - name: public
    path: /v1/public
    upstream: api
    access: public
`, up.URL),
	})
	s := startServer(t, env, nil)
	httpAddr := s.stdoutAddr(t, "http http://")
	plain := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	_, httpsPort, _ := net.SplitHostPort(s.addr)
	tests := []struct {
		name, method, path, accept, body string
		want                             int
		location                         string
	}{
		{"browser navigation", "GET", "/v1/public?q=1", "text/html,*/*", "", 301, "https://127.0.0.1:" + httpsPort + "/v1/public?q=1"},
		{"browser HEAD", "HEAD", "/v1/public", "text/html", "", 301, "https://127.0.0.1:" + httpsPort + "/v1/public"},
		{"API GET on a public route", "GET", "/v1/public", "application/json", "", 403, ""},
		{"API GET without Accept", "GET", "/v1/public", "", "", 403, ""},
		{"sign-up", "POST", "/auth/v1/signup", "application/json", `{"email":"a@example.com","password":"correct horse battery"}`, 403, ""},
		{"token", "POST", "/auth/v1/token", "text/html", "grant_type=password&username=a&password=b", 403, ""},
		{"PUT", "PUT", "/v1/public", "text/html", "{}", 403, ""},
		{"jwks", "GET", "/.well-known/jwks.json", "application/json", "", 403, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://"+httpAddr+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "127.0.0.1:80"
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			req.Header.Set("Authorization", "Bearer leaked")
			resp, err := plain.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			if got := resp.Header.Get("Location"); got != tc.location {
				t.Errorf("Location %q, want %q", got, tc.location)
			}
			if tc.want == 403 && (resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(body), "https-required")) {
				t.Errorf("not an https-required problem: %s %s", resp.Header.Get("Content-Type"), body)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the upstream saw %d requests sent over plain HTTP", n)
	}
	// The same route over HTTPS does reach it: the zero above is not a broken route.
	wantStatus(t, do(t, s.c, "GET", s.issuer+"/v1/public", "", ""), 200)
	if hits.Load() != 1 {
		t.Fatalf("upstream hits over HTTPS = %d, want 1", hits.Load())
	}
}

// Replacing the certificate files while clients keep connections open and send
// continuously loses no request, and new handshakes get the new certificate.
func TestCertificateHotReloadUnderLoad(t *testing.T) {
	env := newTransportEnv(t, transportOpts{})
	s := startServer(t, env, nil)
	roots := s.roots(t)
	servedSerial := func() string {
		conn, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := servedSerial()

	// One pool for HTTP/1.1 keep-alive, one for HTTP/2, each with several senders.
	clients := []*http.Client{
		{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, MaxIdleConnsPerHost: 8}, Timeout: 30 * time.Second},
		{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}, Timeout: 30 * time.Second},
	}
	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for _, c := range clients {
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					resp, err := c.Get(s.issuer + "/healthz")
					if err == nil {
						_, err = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if err == nil && resp.StatusCode != 200 {
							err = fmt.Errorf("status %d", resp.StatusCode)
						}
					}
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						continue
					}
					ok.Add(1)
				}
			})
		}
	}
	for ok.Load() < 50 {
		runtimeGosched()
	}

	// Issue a new leaf from the same CA elsewhere, then swap it in atomically, key
	// first (as a careful renewal tool does).
	next := t.TempDir()
	for _, f := range []string{tlsutil.DevCAFile, tlsutil.DevCAKeyFile} {
		data, err := os.ReadFile(filepath.Join(env.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(next, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tlsutil.EnsureDevCA(next, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{tlsutil.DevCertKeyFile, tlsutil.DevCertFile} {
		if err := os.Rename(filepath.Join(next, f), filepath.Join(env.dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	after := servedSerial()
	for after == before && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		after = servedSerial()
	}
	mark := ok.Load()
	for ok.Load() < mark+50 {
		runtimeGosched()
	}
	close(stop)
	wg.Wait()
	for _, c := range clients {
		c.CloseIdleConnections()
	}
	if after == before {
		t.Fatal("new handshakes still get the old certificate")
	}
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed during the reload; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	t.Logf("%d requests, 0 failed; serial %s → %s", ok.Load(), before, after)
}

// runtimeGosched yields briefly while waiting for load goroutines to progress.
func runtimeGosched() { time.Sleep(5 * time.Millisecond) }

// pins.json is a JWS by the token keys (verifiable with the JWKS) holding the
// served key's pin and the backup pin; the admin metrics show the certificate's
// expiry and flag a serving key outside the published pins.
func TestPinsDocumentAndTLSMetrics(t *testing.T) {
	const otherPin = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	env := newTransportEnv(t, transportOpts{admin: true, tls: fmt.Sprintf(`    backup_key_file: %s
    pins:
      published: [%q]
      validity: 30d
`, "BACKUP", otherPin)})
	backup := filepath.Join(env.dir, "backup", "backup-key.pem")
	data, _ := os.ReadFile(env.cfg)
	if err := os.WriteFile(env.cfg, []byte(strings.Replace(string(data), "BACKUP", backup, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, env, nil)
	if st, err := os.Stat(backup); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup key not created 0600 by serve: %v %v", st, err)
	}

	r := do(t, s.c, "GET", s.issuer+"/.well-known/gatehouse/pins.json", "", "")
	wantStatus(t, r, 200)
	if ct := r.header.Get("Content-Type"); ct != "application/jose" {
		t.Errorf("Content-Type %q", ct)
	}
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(do(t, s.c, "GET", s.issuer+"/.well-known/jwks.json", "", "").body, &jwks); err != nil {
		t.Fatal(err)
	}
	obj, err := jose.ParseSignedCompact(string(r.body), []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	hdr := obj.Signatures[0].Header
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); typ != "gatehouse-pins+jwt" {
		t.Errorf("typ = %q", typ)
	}
	keysFor := jwks.Key(hdr.KeyID)
	if len(keysFor) != 1 {
		t.Fatalf("signing key %q not in the JWKS", hdr.KeyID)
	}
	payload, err := obj.Verify(keysFor[0])
	if err != nil {
		t.Fatalf("pins.json does not verify with the JWKS: %v", err)
	}
	var ps tlsutil.PinSet
	if err := json.Unmarshal(payload, &ps); err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.roots(t), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	pub, _, err := tlsutil.EnsureBackupKey(backup)
	if err != nil {
		t.Fatal(err)
	}
	backupPin, _ := tlsutil.PublicKeyPin(pub)
	if ps.Version != 1 || len(ps.Pins) != 2 || ps.Pins[0] != tlsutil.SPKIPin(leaf) || ps.Pins[1] != otherPin ||
		len(ps.Backups) != 1 || ps.Backups[0] != backupPin || len(ps.Hosts) != 1 || ps.Hosts[0] != "127.0.0.1" {
		t.Errorf("pin set = %+v; serving %s, backup %s", ps, tlsutil.SPKIPin(leaf), backupPin)
	}
	if d := time.Until(ps.NotAfter); d < 29*24*time.Hour || d > 30*24*time.Hour {
		t.Errorf("not_after %s is not about 30 days away", ps.NotAfter)
	}

	metrics := do(t, s.c, "GET", "https://"+s.stdoutAddr(t, "admin https://")+"/metrics", "", "")
	wantStatus(t, metrics, 200)
	expiry := metricValue(t, string(metrics.body), "gatehouse_certificate_expiry_seconds")
	if want := time.Until(leaf.NotAfter).Seconds(); expiry < want-3600 || expiry > want+3600 {
		t.Errorf("gatehouse_certificate_expiry_seconds = %v, want about %v", expiry, want)
	}
	if v := metricValue(t, string(metrics.body), "gatehouse_tls_serving_key_unpinned"); v != 1 {
		t.Errorf("gatehouse_tls_serving_key_unpinned = %v with the serving key outside the published pins", v)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(s.stderr.String(), eventServingKeyUnpinned) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(s.stderr.String(), eventServingKeyUnpinned) || !strings.Contains(s.stderr.String(), "not in the published pin set") {
		t.Errorf("no log line and audit event for the unpinned serving key:\n%s", s.stderr.String())
	}
}

func metricValue(t testing.TB, text, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("metric %s missing", name)
	return 0
}

// The transport keys of the config are checked before anything starts.
func TestTransportConfigValidation(t *testing.T) {
	base := `issuer: https://api.example.com
store: sqlite:///tmp/x.db
kek: env://K
`
	files := "server:\n  tls: {cert_file: c.pem, key_file: k.pem}\n"
	tests := []struct {
		name, yaml, wantPath, wantMsg string
	}{
		{"files", files, "", ""},
		{"acme", "server:\n  http_listen: :80\n  tls:\n    acme: {domains: [api.example.com], storage: /var/lib/g}\n", "", ""},
		{"acme tls-alpn only", "server:\n  tls:\n    acme: {domains: [api.example.com], storage: /s, challenges: [tls-alpn-01]}\n", "", ""},
		{"acme and files", "server:\n  tls:\n    cert_file: c.pem\n    key_file: k.pem\n    acme: {domains: [api.example.com], storage: /s}\n", "server.tls.cert_file", "ACME"},
		{"neither", "server:\n  tls: {}\n", "server.tls.cert_file", "never serves plain HTTP"},
		{"acme without storage", "server:\n  tls:\n    acme: {domains: [api.example.com]}\n", "server.tls.acme.storage", "required"},
		{"acme email without domains", "server:\n  tls:\n    cert_file: c.pem\n    key_file: k.pem\n    acme: {email: a@example.com}\n", "server.tls.acme.domains", "turn ACME on"},
		{"http-01 without http_listen", "server:\n  tls:\n    acme: {domains: [api.example.com], storage: /s, challenges: [http-01]}\n", "server.tls.acme.challenges[0]", "http_listen"},
		{"unknown challenge", "server:\n  tls:\n    acme: {domains: [api.example.com], storage: /s, challenges: [dns-01]}\n", "server.tls.acme.challenges[0]", "tls-alpn-01"},
		{"wildcard domain", "server:\n  tls:\n    acme: {domains: ['*.example.com'], storage: /s}\n", "server.tls.acme.domains[0]", "DNS-01"},
		{"ip domain", "server:\n  tls:\n    acme: {domains: [10.0.0.1], storage: /s}\n", "server.tls.acme.domains[0]", "IP"},
		{"http ca", "server:\n  tls:\n    acme: {domains: [api.example.com], storage: /s, ca: 'http://ca/dir'}\n", "server.tls.acme.ca", "https://"},
		{"bad email", "server:\n  tls:\n    acme: {domains: [api.example.com], storage: /s, email: nope}\n", "server.tls.acme.email", "email"},
		{"http_listen same as listen", "server:\n  listen: 127.0.0.1:8443\n  http_listen: 127.0.0.1:8443\n  tls: {cert_file: c.pem, key_file: k.pem}\n", "server.http_listen", "differ"},
		{"bad published pin", "server:\n  tls:\n    cert_file: c.pem\n    key_file: k.pem\n    pins: {published: ['sha256/abc']}\n", "server.tls.pins.published[0]", "SPKI"},
		{"pin validity too long", "server:\n  tls:\n    cert_file: c.pem\n    key_file: k.pem\n    pins: {validity: 400d}\n", "server.tls.pins.validity", ""},
		{"bad pin host", "server:\n  tls:\n    cert_file: c.pem\n    key_file: k.pem\n    pins: {hosts: ['a b']}\n", "server.tls.pins.hosts[0]", "host"},
		{"upstream tls on http", files + "upstreams:\n  a:\n    url: http://127.0.0.1:9000\n    tls: {ca_file: ca.pem}\n", "upstreams.a.tls", "https://"},
		{"upstream cert without key", files + "upstreams:\n  a:\n    url: https://127.0.0.1:9000\n    tls: {cert_file: c.pem}\n", "upstreams.a.tls", "together"},
		{"upstream mtls", files + "upstreams:\n  a:\n    url: https://127.0.0.1:9000\n    tls: {ca_file: ca.pem, cert_file: c.pem, key_file: k.pem}\n", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(base+tc.yaml), "gatehouse.yaml", func(string) string { return "" })
			if tc.wantPath == "" {
				if err != nil {
					t.Fatalf("unexpected problems: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantPath+":") || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("err = %v, want a problem at %s mentioning %q", err, tc.wantPath, tc.wantMsg)
			}
		})
	}
}
