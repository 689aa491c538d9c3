package tlsutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// pebble is an in-process Pebble ACME CA on loopback whose validation authority
// really connects to the given ports on "localhost" (no DNS, no always-valid
// shortcut: the challenges are solved by the listeners under test).
type pebble struct {
	directory string
	apiRoots  *x509.CertPool // trusts Pebble's own HTTPS endpoint
	roots     *x509.CertPool // trusts the certificates Pebble issues
	stop      func()
}

func startPebble(t *testing.T, httpPort, tlsPort int) *pebble {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")      // no random validation delay
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0") // no deliberately rejected nonces
	logger := log.New(io.Discard, "", 0)
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validator := va.New(logger, httpPort, tlsPort, false, "", store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewTLSServer(front.Handler())
	t.Cleanup(srv.Close)
	p := &pebble{directory: srv.URL + wfe.DirectoryPath, apiRoots: x509.NewCertPool(), roots: x509.NewCertPool(), stop: srv.Close}
	p.apiRoots.AddCert(srv.Certificate())
	p.roots.AddCert(authority.GetRootCert(0).Cert)
	return p
}

// serveOn serves h on ln until the test ends.
func serveOn(t *testing.T, ln net.Listener, h http.Handler) {
	t.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
}

// TestACMEIssuanceAgainstPebble obtains a certificate end to end for each
// challenge type: the plain-HTTP listener (PlainHTTPHandler) answers HTTP-01, the
// HTTPS listener (ACME.ServerConfig) answers TLS-ALPN-01, and afterwards serves
// the issued certificate, which chains to Pebble's root.
func TestACMEIssuanceAgainstPebble(t *testing.T) {
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) {
			httpLn, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			tcpLn, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			p := startPebble(t, ListenPort(httpLn.Addr().String()), ListenPort(tcpLn.Addr().String()))

			var mu sync.Mutex
			var events []ACMEEvent
			a, err := NewACME(ACMEOptions{
				Domains:      []string{"localhost"},
				Email:        "ops@example.com",
				CA:           p.directory,
				TrustedRoots: p.apiRoots,
				StorageDir:   t.TempDir(),
				HTTP01:       challenge == "http-01",
				TLSALPN01:    challenge == "tls-alpn-01",
				ListenHost:   "127.0.0.1",
				HTTPPort:     ListenPort(httpLn.Addr().String()),
				TLSPort:      ListenPort(tcpLn.Addr().String()),
				OnEvent: func(e ACMEEvent) {
					mu.Lock()
					events = append(events, e)
					mu.Unlock()
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(a.Stop)
			cfg, err := a.ServerConfig("")
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Contains(cfg.NextProtos, "acme-tls/1"); got != (challenge == "tls-alpn-01") {
				t.Errorf("acme-tls/1 offered = %v with %s", got, challenge)
			}
			serveOn(t, httpLn, PlainHTTPHandler(PlainHTTPOptions{Challenge: a.HandleHTTPChallenge}))
			serveOn(t, tls.NewListener(tcpLn, cfg), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "ok")
			}))
			if a.Leaf() != nil {
				t.Fatal("a certificate before Manage")
			}

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := a.Manage(ctx); err != nil {
				t.Fatalf("manage: %v", err)
			}
			leaf := a.Leaf()
			if leaf == nil || !slices.Contains(leaf.DNSNames, "localhost") {
				t.Fatalf("no certificate for localhost after Manage: %v", leaf)
			}
			mu.Lock()
			var obtained bool
			for _, e := range events {
				obtained = obtained || (e.Name == "cert_obtained" && e.Identifier == "localhost")
			}
			mu.Unlock()
			if !obtained {
				t.Errorf("no cert_obtained event: %+v", events)
			}

			// A client that trusts only Pebble's root gets the issued certificate.
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.roots, ServerName: "localhost"}}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get("https://" + tcpLn.Addr().String() + "/")
			if err != nil {
				t.Fatalf("HTTPS with the issued certificate: %v", err)
			}
			resp.Body.Close()
			if got := resp.TLS.PeerCertificates[0]; !got.Equal(leaf) {
				t.Error("served certificate is not the managed one")
			}
			if Expiry(leaf, time.Now()) <= 0 {
				t.Error("issued certificate already expired")
			}

			// A second manager on the same storage (another replica) loads the
			// certificate without asking the CA (Pebble is gone).
			p.stop()
			b, err := NewACME(ACMEOptions{Domains: []string{"localhost"}, CA: p.directory,
				StorageDir: a.storageDir(), TLSALPN01: true})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Stop()
			if err := b.Load(ctx); err != nil {
				t.Fatalf("replica load: %v", err)
			}
			if b.Leaf() == nil || SPKIPin(b.Leaf()) != SPKIPin(leaf) {
				t.Fatal("replica does not serve the shared certificate")
			}
		})
	}
}

func TestNewACMEErrors(t *testing.T) {
	tests := []struct {
		name string
		opts ACMEOptions
	}{
		{"no domains", ACMEOptions{StorageDir: "x", HTTP01: true}},
		{"no storage", ACMEOptions{Domains: []string{"a.example"}, HTTP01: true}},
		{"no challenge", ACMEOptions{Domains: []string{"a.example"}, StorageDir: "x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewACME(tc.opts); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	a, err := NewACME(ACMEOptions{Domains: []string{"a.example"}, StorageDir: t.TempDir(), HTTP01: true, CA: "https://127.0.0.1:1/dir"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	if err := a.Load(context.Background()); err == nil {
		t.Error("Load succeeded on empty storage")
	}
	if a.Leaf() != nil || Expiry(nil, time.Now()) != 0 {
		t.Error("leaf before any certificate")
	}
}
