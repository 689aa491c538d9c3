package checks

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
)

var aeadOnly = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// selfSigned makes a certificate for 127.0.0.1 valid until notAfter.
func selfSigned(t *testing.T, notAfter time.Time) tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "expiring"},
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: notAfter,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k, Leaf: leaf}
}

type tlsCase struct {
	name       string
	serverTLS  *tls.Config
	vulns      []string
	host       string // replaces 127.0.0.1 in the target URL
	untrusted  bool
	plainPorts func(plain string) []string
	want       map[string]scan.Severity // id/param → severity
}

func TestTLS(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"notes":[{"id":"1"}]}`))
	}))
	defer plain.Close()
	plainPort := strings.TrimPrefix(plain.URL, "http://127.0.0.1:")
	cases := []tlsCase{
		{name: "secure: TLS 1.2+ AEAD only, HSTS, no plain HTTP",
			serverTLS: &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: aeadOnly}, want: map[string]scan.Severity{}},
		{name: "legacy versions and CBC/RSA suites",
			serverTLS: &tls.Config{MinVersion: tls.VersionTLS10, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}},
			want:      map[string]scan.Severity{"GH-TLS-001/TLS 1.0": scan.SeverityMedium, "GH-TLS-001/TLS 1.1": scan.SeverityMedium, "GH-TLS-002/": scan.SeverityMedium}},
		{name: "host name not in the certificate", host: "localhost",
			serverTLS: &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: aeadOnly},
			want:      map[string]scan.Severity{"GH-TLS-004/hostname": scan.SeverityHigh}},
		{name: "untrusted chain", untrusted: true,
			serverTLS: &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: aeadOnly},
			want:      map[string]scan.Severity{"GH-TLS-004/chain": scan.SeverityHigh}},
		{name: "certificate expires in 10 days",
			serverTLS: &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: aeadOnly, Certificates: []tls.Certificate{selfSigned(t, time.Now().Add(10*24*time.Hour))}},
			want:      map[string]scan.Severity{"GH-TLS-003/expiry": scan.SeverityMedium}},
		{name: "no HSTS", vulns: []string{"no-hsts"},
			serverTLS: &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: aeadOnly},
			want:      map[string]scan.Severity{"GH-TLS-005/missing": scan.SeverityHigh - 1}},
		{name: "plain HTTP on the same host answers with data",
			serverTLS:  &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: aeadOnly},
			plainPorts: func(p string) []string { return []string{p} },
			want:       map[string]scan.Severity{"GH-TLS-006/port-" + plainPort: scan.SeverityHigh}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(newAPI(t, tc.vulns...))
			srv.TLS = tc.serverTLS
			srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
			srv.StartTLS()
			defer srv.Close()
			u, _ := url.Parse(srv.URL)
			pool := x509.NewCertPool()
			if len(tc.serverTLS.Certificates) > 0 {
				pool.AddCert(tc.serverTLS.Certificates[0].Leaf)
			} else {
				pool.AddCert(srv.Certificate())
			}
			if tc.untrusted {
				pool = x509.NewCertPool()
			}
			if tc.host != "" {
				u.Host = net.JoinHostPort(tc.host, u.Port())
			}
			ports := []string{u.Port()}
			if tc.plainPorts != nil {
				ports = tc.plainPorts(plainPort)
			}
			tgt, err := scan.NewTarget(scan.TargetOptions{URL: u.String(), PlainPorts: ports,
				Client: scan.ClientOptions{TLS: &tls.Config{RootCAs: pool}}})
			if err != nil {
				t.Fatal(err)
			}
			fs := run(t, TLS{}, tgt)
			got := map[string]scan.Severity{}
			for _, f := range fs {
				got[f.ID+"/"+f.Param] = f.Severity
			}
			if len(got) != len(tc.want) {
				t.Fatalf("findings %v, want %v", ids(fs), tc.want)
			}
			for k, sev := range tc.want {
				if got[k] != sev {
					t.Fatalf("finding %s = %v, want %v (all: %v)", k, got[k], sev, ids(fs))
				}
			}
		})
	}
}

func TestTLSPlainTarget(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"notes":[]}`))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	tgt, err := scan.NewTarget(scan.TargetOptions{URL: srv.URL, PlainPorts: []string{u.Port()}})
	if err != nil {
		t.Fatal(err)
	}
	fs := run(t, TLS{}, tgt)
	if !has(fs, "GH-TLS-006", scan.SeverityHigh, "port-"+u.Port()) {
		t.Fatalf("an http:// API must be reported: %v", ids(fs))
	}
}

func TestHSTSMaxAge(t *testing.T) {
	for in, want := range map[string]int{
		"max-age=31536000; includeSubDomains": 31536000,
		`max-age="600"`:                       600,
		"includeSubDomains":                   -1,
		"max-age=abc":                         -1,
		" MAX-AGE=5 ":                         5,
	} {
		if got := hstsMaxAge(in); got != want {
			t.Errorf("hstsMaxAge(%q) = %d, want %d", in, got, want)
		}
	}
}
