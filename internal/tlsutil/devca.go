package tlsutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// ErrDevCAInvalid reports a dev CA directory whose CA files exist but cannot be used.
// EnsureDevCA never repairs it by overwriting: the caller must remove the directory.
var ErrDevCAInvalid = errors.New("dev CA files are unusable")

// File names inside a dev CA directory.
const (
	DevCAFile      = "ca.pem"
	DevCAKeyFile   = "ca-key.pem"
	DevCertFile    = "server.pem"
	DevCertKeyFile = "server-key.pem"
)

const (
	devCAValidity   = 10 * 365 * 24 * time.Hour
	devLeafValidity = 397 * 24 * time.Hour // the longest lifetime browsers and Apple platforms accept
	devLeafRenew    = 30 * 24 * time.Hour  // re-issue a leaf this close to expiry
	devBackdate     = time.Hour            // tolerate small clock differences between machines
)

// devHostNames and devHostIPs are what the demo leaf must cover.
func devHostNames() []string { return []string{"localhost"} }

func devHostIPs() []net.IP { return []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback} }

// DevCA names the files of a local development CA and the server certificate it
// issued.
type DevCA struct {
	// CAFile is the CA certificate (PEM) clients trust, e.g. `curl --cacert`.
	CAFile string
	// CertFile is the server leaf certificate (PEM), leaf only.
	CertFile string
	// KeyFile is the server private key (PKCS#8 PEM, mode 0600).
	KeyFile string
}

// EnsureDevCA makes dir a working local CA for `gatehouse demo`, as of now:
//
//   - ca.pem / ca-key.pem: an ECDSA P-256 CA named "Gatehouse Demo CA <random>",
//     valid ten years, path length 0, key usage CertSign only;
//   - server.pem / server-key.pem: an ECDSA P-256 leaf for localhost, 127.0.0.1 and
//     ::1, ServerAuth only, valid 397 days.
//
// Existing valid files are reused. The leaf (with a new key) is re-issued by the same
// CA when it is missing, broken, not issued by that CA, does not cover the hosts, or
// expires within 30 days. An existing CA is never replaced: if its files are broken,
// mismatched or the CA expires within 30 days, EnsureDevCA returns ErrDevCAInvalid.
//
// server.pem holds the leaf only: clients that trust ca.pem need nothing more, and
// sending the root in the chain is wasted bytes on every handshake.
func EnsureDevCA(dir string, now time.Time) (DevCA, error) {
	out := DevCA{
		CAFile:   filepath.Join(dir, DevCAFile),
		CertFile: filepath.Join(dir, DevCertFile),
		KeyFile:  filepath.Join(dir, DevCertKeyFile),
	}
	caKeyFile := filepath.Join(dir, DevCAKeyFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return DevCA{}, fmt.Errorf("tlsutil: dev ca: %w", err)
	}
	ca, err := loadOrCreateCA(out.CAFile, caKeyFile, now)
	if err != nil {
		return DevCA{}, err
	}
	if leafUsable(out.CertFile, out.KeyFile, ca, now) {
		return out, nil
	}
	if err := issueLeaf(out.CertFile, out.KeyFile, ca, now); err != nil {
		return DevCA{}, err
	}
	return out, nil
}

type devCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func loadOrCreateCA(certFile, keyFile string, now time.Time) (*devCA, error) {
	certExists, err := exists(certFile)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: dev ca: %w", err)
	}
	keyExists, err := exists(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: dev ca: %w", err)
	}
	if certExists || keyExists {
		return loadCA(certFile, keyFile, now)
	}
	return createCA(certFile, keyFile, now)
}

func loadCA(certFile, keyFile string, now time.Time) (*devCA, error) {
	invalid := func(why string, args ...any) error {
		return fmt.Errorf("tlsutil: dev ca %s: %w: %s; remove the directory to start over",
			filepath.Dir(certFile), ErrDevCAInvalid, fmt.Sprintf(why, args...))
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, invalid("%v", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, invalid("%v", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, invalid("%v", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, invalid("%v", err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, invalid("%s is not a CA certificate", certFile)
	}
	if now.Before(cert.NotBefore) || cert.NotAfter.Sub(now) < devLeafRenew {
		return nil, invalid("CA is valid from %s to %s", cert.NotBefore.UTC().Format(time.RFC3339),
			cert.NotAfter.UTC().Format(time.RFC3339))
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, invalid("CA key type %T cannot sign", pair.PrivateKey)
	}
	return &devCA{cert: cert, key: signer}, nil
}

func createCA(certFile, keyFile string, now time.Time) (*devCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: dev ca: generate key: %w", err)
	}
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return nil, fmt.Errorf("tlsutil: dev ca: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("tlsutil: dev ca: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			// Why a random suffix: two demo CAs (two machines, two directories) must
			// not look identical in a trust store or a certificate viewer.
			CommonName:   "Gatehouse Demo CA " + hex.EncodeToString(suffix),
			Organization: []string{"Gatehouse Demo"},
		},
		NotBefore:             now.Add(-devBackdate),
		NotAfter:              now.Add(devCAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		// Why path length 0 and CertSign only: the demo CA may sign leaves and nothing
		// else, so a leaked demo key cannot mint intermediate CAs.
		MaxPathLen:     0,
		MaxPathLenZero: true,
		KeyUsage:       x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: dev ca: create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: dev ca: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: dev ca: %w", err)
	}
	// The key goes first and is created without ever replacing an existing file.
	if err := writeNew(keyFile, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("tlsutil: dev ca: write key: %w", err)
	}
	if err := writeReplace(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, fmt.Errorf("tlsutil: dev ca: write certificate: %w", err)
	}
	return &devCA{cert: cert, key: key}, nil
}

// leafUsable reports whether the existing leaf files can be served as they are.
func leafUsable(certFile, keyFile string, ca *devCA, now time.Time) bool {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return false
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return false
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return false
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return false
	}
	if leaf.NotAfter.Sub(now) < devLeafRenew {
		return false
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	for _, host := range devHosts() {
		_, err := leaf.Verify(x509.VerifyOptions{
			DNSName:     host,
			Roots:       roots,
			CurrentTime: now,
			KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			return false
		}
	}
	return true
}

func devHosts() []string {
	hosts := devHostNames()
	for _, ip := range devHostIPs() {
		hosts = append(hosts, ip.String())
	}
	return hosts
}

func issueLeaf(certFile, keyFile string, ca *devCA, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("tlsutil: dev leaf: generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return fmt.Errorf("tlsutil: dev leaf: %w", err)
	}
	notBefore := now.Add(-devBackdate)
	notAfter := notBefore.Add(devLeafValidity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"Gatehouse Demo"}},
		DNSNames:              devHostNames(),
		IPAddresses:           devHostIPs(),
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return fmt.Errorf("tlsutil: dev leaf: create certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return fmt.Errorf("tlsutil: dev leaf: %w", err)
	}
	// Key before certificate: a FileCerts watching these files may see the new key
	// with the old certificate for a moment; it rejects the mismatch and keeps
	// serving until the certificate lands.
	if err := writeReplace(keyFile, keyPEM, 0o600); err != nil {
		return fmt.Errorf("tlsutil: dev leaf: write key: %w", err)
	}
	if err := writeReplace(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("tlsutil: dev leaf: write certificate: %w", err)
	}
	return nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func randomSerial() (*big.Int, error) {
	// 128 random bits, as CA/B Forum baseline requirements ask for at least 64.
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

func exists(name string) (bool, error) {
	_, err := os.Lstat(name)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// writeTemp writes data to a new temporary file next to name and returns its path.
func writeTemp(name string, data []byte, perm fs.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// writeReplace atomically replaces name with data: readers see the old or the new
// file, never a half-written one.
func writeReplace(name string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(name, data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// writeNew atomically creates name with data and fails with fs.ErrExist if name
// already exists. Why a hard link: link(2) refuses to replace an existing path, so
// even a concurrent run cannot clobber a CA key, and readers never see a partial key.
func writeNew(name string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(name, data, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	return os.Link(tmp, name)
}
