package tlsutil

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readAll(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, n := range []string{DevCAFile, DevCAKeyFile, DevCertFile, DevCertKeyFile} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		out[n] = b
	}
	return out
}

func TestEnsureDevCAFresh(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "demo")
	now := time.Now()
	dca, err := EnsureDevCA(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if dca.CAFile != filepath.Join(dir, "ca.pem") || dca.CertFile != filepath.Join(dir, "server.pem") || dca.KeyFile != filepath.Join(dir, "server-key.pem") {
		t.Errorf("paths = %+v", dca)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode = %v, %v; want 0700", st.Mode().Perm(), err)
	}
	for _, n := range []string{DevCAKeyFile, DevCertKeyFile} {
		st, err := os.Stat(filepath.Join(dir, n))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, %v; want 0600", n, st.Mode().Perm(), err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 4 {
		t.Errorf("dir holds %d entries, want exactly the 4 files (temp files left behind?)", len(ents))
	}

	ca := readPEMCert(t, dca.CAFile)
	if !strings.HasPrefix(ca.Subject.CommonName, "Gatehouse Demo CA ") || len(ca.Subject.CommonName) <= len("Gatehouse Demo CA ") {
		t.Errorf("CA name = %q", ca.Subject.CommonName)
	}
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
		t.Errorf("CA constraints: IsCA=%v MaxPathLen=%d zero=%v", ca.IsCA, ca.MaxPathLen, ca.MaxPathLenZero)
	}
	if ca.KeyUsage != x509.KeyUsageCertSign {
		t.Errorf("CA key usage = %v, want CertSign only", ca.KeyUsage)
	}
	if pub, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key = %T, want ECDSA P-256", ca.PublicKey)
	}
	if d := ca.NotAfter.Sub(now); d < 9*365*24*time.Hour || d > 11*365*24*time.Hour {
		t.Errorf("CA lifetime from now = %v, want about ten years", d)
	}

	leaf := readPEMCert(t, dca.CertFile)
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d > 397*24*time.Hour {
		t.Errorf("leaf lifetime = %v, want ≤ 397 days", d)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("leaf EKU = %v, want ServerAuth only", leaf.ExtKeyUsage)
	}
	if leaf.IsCA {
		t.Error("leaf is a CA")
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("leaf key = %T, want ECDSA P-256", leaf.PublicKey)
	}
	certPEM, _ := os.ReadFile(dca.CertFile)
	if n := bytes.Count(certPEM, []byte("BEGIN CERTIFICATE")); n != 1 {
		t.Errorf("server.pem holds %d certificates, want the leaf only", n)
	}

	// Two directories get two distinct CAs.
	other, err := EnsureDevCA(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	if readPEMCert(t, other.CAFile).Subject.CommonName == ca.Subject.CommonName {
		t.Error("two dev CAs share a name")
	}
}

// TestEnsureDevCAClientVerifies serves the dev certificate through ServerConfig and
// checks that a client trusting only ca.pem accepts it for every demo host name.
func TestEnsureDevCAClientVerifies(t *testing.T) {
	dca, err := EnsureDevCA(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fc, err := NewFileCerts(dca.CertFile, dca.KeyFile, FileCertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ServerConfig(fc, "")
	if err != nil {
		t.Fatal(err)
	}
	addr := startTLS(t, cfg)
	caPEM, err := os.ReadFile(dca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	for _, c := range []struct {
		host string
		ok   bool
	}{
		{"localhost", true}, {"127.0.0.1", true}, {"::1", true},
		{"example.com", false}, {"127.0.0.2", false}, {"localhost.example", false},
	} {
		t.Run(c.host, func(t *testing.T) {
			_, err := handshake(addr, &tls.Config{RootCAs: roots, ServerName: c.host})
			if c.ok && err != nil {
				t.Fatalf("verify %s: %v", c.host, err)
			}
			if !c.ok && err == nil {
				t.Fatalf("certificate accepted for %s", c.host)
			}
		})
	}
	// And over IPv6 loopback when the machine has it.
	if ln6, err := net.Listen("tcp", "[::1]:0"); err == nil {
		srv := tls.NewListener(ln6, cfg)
		go func() {
			c, err := srv.Accept()
			if err == nil {
				c.(*tls.Conn).Handshake()
				c.Close()
			}
		}()
		defer srv.Close()
		if _, err := handshake(ln6.Addr().String(), &tls.Config{RootCAs: roots}); err != nil {
			t.Errorf("verify over [::1]: %v", err)
		}
	} else {
		t.Logf("no IPv6 loopback (%v); ::1 verified by name only", err)
	}
}

func TestEnsureDevCAIdempotent(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	if _, err := EnsureDevCA(dir, now); err != nil {
		t.Fatal(err)
	}
	before := readAll(t, dir)
	for _, later := range []time.Duration{0, time.Hour, 300 * 24 * time.Hour} {
		if _, err := EnsureDevCA(dir, now.Add(later)); err != nil {
			t.Fatal(err)
		}
		after := readAll(t, dir)
		for name, b := range before {
			if !bytes.Equal(b, after[name]) {
				t.Errorf("+%v: %s changed on re-run", later, name)
			}
		}
	}
}

func TestEnsureDevCAReissuesLeaf(t *testing.T) {
	now := time.Now()
	foreign := newTestCA(t)
	cases := []struct {
		name    string
		at      time.Duration // when the second run happens, relative to now
		corrupt func(t *testing.T, dir string)
	}{
		{name: "within 30 days of expiry", at: (397 - 29) * 24 * time.Hour},
		{name: "expired", at: 400 * 24 * time.Hour},
		{name: "leaf missing", corrupt: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, DevCertFile)) }},
		{name: "key missing", corrupt: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, DevCertKeyFile)) }},
		{name: "leaf garbage", corrupt: func(t *testing.T, dir string) {
			replaceFile(t, filepath.Join(dir, DevCertFile), []byte("garbage"))
		}},
		{name: "key from another pair", corrupt: func(t *testing.T, dir string) {
			_, k := foreign.issue(t, leafSpec{})
			replaceFile(t, filepath.Join(dir, DevCertKeyFile), k)
		}},
		{name: "issued by another CA", corrupt: func(t *testing.T, dir string) {
			c, k := foreign.issue(t, leafSpec{dnsNames: []string{"localhost"}, ips: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}})
			replaceFile(t, filepath.Join(dir, DevCertKeyFile), k)
			replaceFile(t, filepath.Join(dir, DevCertFile), c)
		}},
		{name: "names do not cover ::1", corrupt: func(t *testing.T, dir string) {
			own := loadTestCAFrom(t, dir)
			c, k := own.issue(t, leafSpec{dnsNames: []string{"localhost"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}})
			replaceFile(t, filepath.Join(dir, DevCertKeyFile), k)
			replaceFile(t, filepath.Join(dir, DevCertFile), c)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := EnsureDevCA(dir, now); err != nil {
				t.Fatal(err)
			}
			if c.corrupt != nil {
				c.corrupt(t, dir)
			}
			before := readAll(t, dir)
			at := now.Add(c.at)
			dca, err := EnsureDevCA(dir, at)
			if err != nil {
				t.Fatal(err)
			}
			after := readAll(t, dir)
			if !bytes.Equal(before[DevCAFile], after[DevCAFile]) || !bytes.Equal(before[DevCAKeyFile], after[DevCAKeyFile]) {
				t.Fatal("CA changed; it must be reused")
			}
			if bytes.Equal(before[DevCertFile], after[DevCertFile]) || bytes.Equal(before[DevCertKeyFile], after[DevCertKeyFile]) {
				t.Fatal("leaf or its key was not re-issued")
			}
			// The new leaf verifies against the unchanged CA at the injected time.
			if _, err := NewFileCerts(dca.CertFile, dca.KeyFile, FileCertOptions{Now: func() time.Time { return at }}); err != nil {
				t.Fatalf("new pair unusable: %v", err)
			}
			roots := x509.NewCertPool()
			roots.AddCert(readPEMCert(t, dca.CAFile))
			leaf := readPEMCert(t, dca.CertFile)
			for _, h := range devHosts() {
				if _, err := leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: roots, CurrentTime: at}); err != nil {
					t.Errorf("re-issued leaf for %s: %v", h, err)
				}
			}
			if leaf.NotAfter.Sub(at) < 360*24*time.Hour {
				t.Errorf("re-issued leaf expires %v, want about 397 days after %v", leaf.NotAfter, at)
			}
		})
	}
}

// loadTestCAFrom turns a dev CA directory back into a testCA able to sign leaves.
func loadTestCAFrom(t *testing.T, dir string) *testCA {
	t.Helper()
	ca, err := loadCA(filepath.Join(dir, DevCAFile), filepath.Join(dir, DevCAKeyFile), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return &testCA{cert: ca.cert, key: ca.key, pool: pool}
}

func TestEnsureDevCANeverReplacesCA(t *testing.T) {
	now := time.Now()
	foreign := newTestCA(t)
	cases := []struct {
		name    string
		at      time.Duration
		corrupt func(t *testing.T, dir string)
	}{
		{name: "ca key garbage", corrupt: func(t *testing.T, dir string) {
			replaceFile(t, filepath.Join(dir, DevCAKeyFile), []byte("garbage"))
		}},
		{name: "ca key empty", corrupt: func(t *testing.T, dir string) {
			replaceFile(t, filepath.Join(dir, DevCAKeyFile), nil)
		}},
		{name: "ca cert missing", corrupt: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, DevCAFile)) }},
		{name: "ca key missing", corrupt: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, DevCAKeyFile)) }},
		{name: "ca cert from another key", corrupt: func(t *testing.T, dir string) {
			replaceFile(t, filepath.Join(dir, DevCAFile), []byte("-----BEGIN CERTIFICATE-----\n"+b64lines(foreign.cert.Raw)+"-----END CERTIFICATE-----\n"))
		}},
		{name: "ca is a leaf", corrupt: func(t *testing.T, dir string) {
			c, k := foreign.issue(t, leafSpec{})
			replaceFile(t, filepath.Join(dir, DevCAFile), c)
			replaceFile(t, filepath.Join(dir, DevCAKeyFile), k)
		}},
		{name: "ca expires within 30 days", at: 10*365*24*time.Hour - 10*24*time.Hour},
		{name: "ca expired", at: 11 * 365 * 24 * time.Hour},
		{name: "ca not yet valid", at: -2 * time.Hour},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := EnsureDevCA(dir, now); err != nil {
				t.Fatal(err)
			}
			if c.corrupt != nil {
				c.corrupt(t, dir)
			}
			before := readAll(t, dir)
			_, err := EnsureDevCA(dir, now.Add(c.at))
			if !errors.Is(err, ErrDevCAInvalid) {
				t.Fatalf("err = %v, want ErrDevCAInvalid", err)
			}
			after := readAll(t, dir)
			for name, b := range before {
				if !bytes.Equal(b, after[name]) {
					t.Errorf("%s changed although the CA was unusable", name)
				}
			}
		})
	}
}

func TestEnsureDevCAErrors(t *testing.T) {
	// A file where the directory should be.
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureDevCA(f, time.Now()); err == nil || !strings.HasPrefix(err.Error(), "tlsutil: ") {
		t.Errorf("EnsureDevCA on a file = %v, want a tlsutil error", err)
	}
}

func TestWriteNewRefusesExisting(t *testing.T) {
	name := filepath.Join(t.TempDir(), "ca-key.pem")
	if err := writeNew(name, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeNew(name, []byte("second"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second writeNew = %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(name); string(b) != "first" {
		t.Fatalf("content = %q, want the first write", b)
	}
	if ents, _ := os.ReadDir(filepath.Dir(name)); len(ents) != 1 {
		t.Errorf("%d entries left, want 1 (temp file not removed)", len(ents))
	}
}
