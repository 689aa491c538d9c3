package tlsutil

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func writePair(t testing.TB, dir string, certPEM, keyPEM []byte) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	replaceFile(t, keyFile, keyPEM)
	replaceFile(t, certFile, certPEM)
	return certFile, keyFile
}

// servedSerial handshakes with addr and returns the leaf serial the server presented.
func servedSerial(t *testing.T, addr string, roots *x509.CertPool) int64 {
	t.Helper()
	st, err := handshake(addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return st.PeerCertificates[0].SerialNumber.Int64()
}

func TestFileCertsReloadOnLiveListener(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	clock := newFakeClock(time.Now())
	logs := &syncBuffer{}
	c1, k1 := ca.issue(t, leafSpec{serial: 1})
	certFile, keyFile := writePair(t, dir, c1, k1)

	fc, err := NewFileCerts(certFile, keyFile, FileCertOptions{
		CheckInterval: time.Minute,
		Now:           clock.Now,
		Logger:        slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ServerConfig(fc, "")
	if err != nil {
		t.Fatal(err)
	}
	addr := startTLS(t, cfg)

	if got := servedSerial(t, addr, ca.pool); got != 1 {
		t.Fatalf("initial serial = %d, want 1", got)
	}

	// A renewal lands on disk. Before the check interval passes the old one is served.
	c2, k2 := ca.issue(t, leafSpec{serial: 2})
	writePair(t, dir, c2, k2)
	if got := servedSerial(t, addr, ca.pool); got != 1 {
		t.Fatalf("serial before interval = %d, want 1", got)
	}
	clock.Advance(time.Minute)
	if got := servedSerial(t, addr, ca.pool); got != 2 {
		t.Fatalf("serial after interval = %d, want 2", got)
	}
	if fc.Leaf().SerialNumber.Int64() != 2 {
		t.Fatalf("Leaf serial = %d, want 2", fc.Leaf().SerialNumber.Int64())
	}

	c3, k3 := ca.issue(t, leafSpec{serial: 3})
	expiredC, expiredK := ca.issue(t, leafSpec{serial: 4, notBefore: time.Now().Add(-2 * time.Hour), notAfter: time.Now().Add(-time.Hour)})
	bad := []struct {
		name      string
		cert, key []byte
		remove    bool
		wantErr   error
	}{
		{name: "garbage certificate", cert: []byte("-----BEGIN CERTIFICATE-----\nnot base64!\n"), key: k2},
		{name: "half-written certificate", cert: c3[:len(c3)/2], key: k3},
		{name: "empty files", cert: []byte{}, key: []byte{}},
		{name: "key does not match", cert: c3, key: k2},
		{name: "key file is a certificate", cert: c3, key: c3},
		{name: "expired certificate", cert: expiredC, key: expiredK, wantErr: ErrCertExpired},
		{name: "files removed", remove: true, wantErr: fs.ErrNotExist},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			if b.remove {
				os.Remove(certFile)
				os.Remove(keyFile)
			} else {
				writePair(t, dir, b.cert, b.key)
			}
			// Handshake path: the check runs, fails, and the old certificate serves.
			clock.Advance(time.Minute)
			if got := servedSerial(t, addr, ca.pool); got != 2 {
				t.Fatalf("serial = %d after broken files, want 2 (the last good one)", got)
			}
			// Explicit reload reports the problem and still keeps the old certificate.
			err := fc.Reload()
			if err == nil {
				t.Fatal("Reload accepted broken files")
			}
			if b.wantErr != nil && !errors.Is(err, b.wantErr) {
				t.Errorf("Reload error = %v, want %v", err, b.wantErr)
			}
			if got := servedSerial(t, addr, ca.pool); got != 2 {
				t.Fatalf("serial = %d after failed Reload, want 2", got)
			}
			if fc.Leaf().SerialNumber.Int64() != 2 {
				t.Errorf("Leaf serial = %d, want 2", fc.Leaf().SerialNumber.Int64())
			}
		})
	}

	// Explicit Reload takes effect at once, without waiting for the interval.
	writePair(t, dir, c3, k3)
	if err := fc.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := servedSerial(t, addr, ca.pool); got != 3 {
		t.Fatalf("serial after Reload = %d, want 3", got)
	}

	out := logs.String()
	if !strings.Contains(out, "reload failed") || !strings.Contains(out, "certificate loaded") {
		t.Errorf("logs lack reload outcomes:\n%s", out)
	}
	// Why: private keys must never reach logs.
	for _, k := range [][]byte{k1, k2, k3} {
		if strings.Contains(out, "PRIVATE KEY") || bytes.Contains([]byte(out), k[40:80]) {
			t.Fatalf("key material in logs:\n%s", out)
		}
	}
}

func TestFileCertsBrokenFileLoggedOnce(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	clock := newFakeClock(time.Now())
	logs := &syncBuffer{}
	c1, k1 := ca.issue(t, leafSpec{serial: 1})
	certFile, keyFile := writePair(t, dir, c1, k1)
	fc, err := NewFileCerts(certFile, keyFile, FileCertOptions{Now: clock.Now, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	writePair(t, dir, []byte("junk"), k1)
	for range 5 {
		clock.Advance(2 * time.Second) // default interval is one second
		if _, err := fc.GetCertificate(nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "reload failed"); n != 1 {
		t.Errorf("broken pair logged %d times, want once:\n%s", n, logs.String())
	}
}

func TestNewFileCertsErrors(t *testing.T) {
	ca := newTestCA(t)
	good, goodKey := ca.issue(t, leafSpec{})
	_, otherKey := ca.issue(t, leafSpec{})
	future, futureKey := ca.issue(t, leafSpec{notBefore: time.Now().Add(time.Hour), notAfter: time.Now().Add(2 * time.Hour)})
	cases := []struct {
		name      string
		cert, key []byte
		missing   bool
		wantErr   error
	}{
		{name: "missing files", missing: true, wantErr: fs.ErrNotExist},
		{name: "garbage", cert: []byte("garbage"), key: []byte("garbage")},
		{name: "mismatched key", cert: good, key: otherKey},
		{name: "key and cert swapped", cert: goodKey, key: good},
		{name: "not yet valid", cert: future, key: futureKey, wantErr: ErrCertExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			if !c.missing {
				certFile, keyFile = writePair(t, dir, c.cert, c.key)
			}
			fc, err := NewFileCerts(certFile, keyFile, FileCertOptions{})
			if err == nil || fc != nil {
				t.Fatalf("NewFileCerts = %v, %v; want error", fc, err)
			}
			if c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Errorf("err = %v, want %v", err, c.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "tlsutil: ") {
				t.Errorf("err %q lacks the op prefix", err)
			}
		})
	}
}

func TestFileCertsChain(t *testing.T) {
	ca := newTestCA(t)
	leaf, key := ca.issue(t, leafSpec{serial: 9})
	caPEM := []byte("-----BEGIN CERTIFICATE-----\n" + b64lines(ca.cert.Raw) + "-----END CERTIFICATE-----\n")
	certFile, keyFile := writePair(t, t.TempDir(), append(leaf, caPEM...), key)
	fc, err := NewFileCerts(certFile, keyFile, FileCertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := fc.GetCertificate(nil)
	if len(cert.Certificate) != 2 || fc.Leaf().SerialNumber.Int64() != 9 {
		t.Errorf("chain length %d, leaf serial %d; want 2 and 9", len(cert.Certificate), fc.Leaf().SerialNumber.Int64())
	}
}

func TestFileCertsConcurrent(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	clock := newFakeClock(time.Now())
	pairs := make([][2][]byte, 3)
	for i := range pairs {
		c, k := ca.issue(t, leafSpec{serial: int64(i + 1)})
		pairs[i] = [2][]byte{c, k}
	}
	certFile, keyFile := writePair(t, dir, pairs[0][0], pairs[0][1])
	fc, err := NewFileCerts(certFile, keyFile, FileCertOptions{CheckInterval: time.Nanosecond, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				clock.Advance(time.Millisecond)
				cert, err := fc.GetCertificate(nil)
				if err != nil || cert == nil || cert.Leaf == nil {
					t.Errorf("GetCertificate = %v, %v", cert, err)
					return
				}
				if fc.Leaf() == nil {
					t.Error("nil Leaf")
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 30 {
			p := pairs[i%len(pairs)]
			// Not atomic on purpose: readers may see a mismatched pair in between.
			os.WriteFile(keyFile, p[1], 0o600)
			os.WriteFile(certFile, p[0], 0o600)
			fc.Reload()
		}
	})
	wg.Wait()
}

func FuzzParsePair(f *testing.F) {
	ca := newTestCA(f)
	c, k := ca.issue(f, leafSpec{})
	_, otherKey := ca.issue(f, leafSpec{})
	f.Add(c, k)                                                                    // a valid pair
	f.Add(c, otherKey)                                                             // mismatched key
	f.Add(k, c)                                                                    // swapped files
	f.Add(c[:len(c)/2], k)                                                         // truncated certificate
	f.Add([]byte(""), []byte(""))                                                  // empty files
	f.Add(append(c, c...), k)                                                      // duplicated chain
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n"), k) // empty block
	now := time.Now()
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		p, err := parsePair(certPEM, keyPEM, now)
		if err != nil {
			return
		}
		// Anything accepted must be a usable, currently valid pair.
		if p.leaf == nil || p.cert.Leaf != p.leaf || now.Before(p.leaf.NotBefore) || now.After(p.leaf.NotAfter) {
			t.Fatalf("accepted an unusable pair: %+v", p.leaf)
		}
		if !bytes.Equal(p.cert.Certificate[0], p.leaf.Raw) {
			t.Fatal("leaf does not match the first chain certificate")
		}
	})
}

func BenchmarkFileCertsGetCertificate(b *testing.B) {
	ca := newTestCA(b)
	c, k := ca.issue(b, leafSpec{})
	certFile, keyFile := writePair(b, b.TempDir(), c, k)
	fc, err := NewFileCerts(certFile, keyFile, FileCertOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := fc.GetCertificate(nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
