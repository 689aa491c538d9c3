package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An upstream that requires a client certificate from clientCA is reached with
// ClientConfig's pinned CA and client certificate, and refused without them.
func TestClientConfigMTLS(t *testing.T) {
	serverCA, clientCA, otherCA := newTestCA(t), newTestCA(t), newTestCA(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("server-ca.pem", pemCert(serverCA.cert))
	otherCAFile := write("other-ca.pem", pemCert(otherCA.cert))
	cc, ck := clientCA.issue(t, leafSpec{client: true})
	certFile, keyFile := write("client.pem", cc), write("client-key.pem", ck)
	oc, ok := otherCA.issue(t, leafSpec{client: true})
	otherCert, otherKey := write("other.pem", oc), write("other-key.pem", ok)

	srvCfg, err := ServerConfig(staticCerts{serverCA.tlsCert(t, leafSpec{})}, "")
	if err != nil {
		t.Fatal(err)
	}
	srvCfg.ClientAuth = tls.RequireAndVerifyClientCert
	srvCfg.ClientCAs = clientCA.pool
	addr := startTLS(t, srvCfg)

	tests := []struct {
		name   string
		opts   ClientOptions
		wantOK bool
	}{
		{"pinned CA and client certificate", ClientOptions{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}, true},
		{"no client certificate", ClientOptions{CAFile: caFile}, false},
		{"client certificate from another CA", ClientOptions{CAFile: caFile, CertFile: otherCert, KeyFile: otherKey}, false},
		{"pinned CA is not the server's", ClientOptions{CAFile: otherCAFile, CertFile: certFile, KeyFile: keyFile}, false},
		{"system roots do not know the server", ClientOptions{CertFile: certFile, KeyFile: keyFile}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ClientConfig(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			tr := &http.Transport{TLSClientConfig: cfg}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get("https://" + addr + "/")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if (err == nil) != tc.wantOK {
				t.Fatalf("err = %v, want ok=%v", err, tc.wantOK)
			}
		})
	}

	bad := []struct {
		name string
		opts ClientOptions
	}{
		{"missing ca file", ClientOptions{CAFile: filepath.Join(dir, "nope.pem")}},
		{"ca file without certificates", ClientOptions{CAFile: keyFile}},
		{"cert without key", ClientOptions{CertFile: certFile}},
		{"key without cert", ClientOptions{KeyFile: keyFile}},
		{"mismatched pair", ClientOptions{CertFile: certFile, KeyFile: otherKey}},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			if _, err := ClientConfig(b.opts); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	cfg, _ := ClientConfig(ClientOptions{})
	if cfg.MinVersion != tls.VersionTLS12 || len(cfg.CipherSuites) == 0 || strings.Contains(tls.CipherSuiteName(cfg.CipherSuites[0]), "CBC") {
		t.Errorf("client config is weaker than the server's: %+v", cfg)
	}
}

func pemCert(c *x509.Certificate) []byte {
	return []byte("-----BEGIN CERTIFICATE-----\n" + b64lines(c.Raw) + "-----END CERTIFICATE-----\n")
}
