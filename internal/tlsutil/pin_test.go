package tlsutil

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pinKAT is the pin of testdata/pin-kat.pem as computed by OpenSSL 3.0 when the file
// was made:
//
//	openssl x509 -in pin-kat.pem -pubkey -noout | openssl pkey -pubin -outform der |
//	    openssl dgst -sha256 -binary | base64
const pinKAT = "ndOOvJnZf9au3ImjBNdzHPH/SSeNtKha6i5dB+Jra+Q="

func TestSPKIPinKnownAnswer(t *testing.T) {
	cert := readPEMCert(t, filepath.Join("testdata", "pin-kat.pem"))
	if got := SPKIPin(cert); got != pinKAT {
		t.Errorf("SPKIPin = %s, want %s", got, pinKAT)
	}
}

// spkiFromCertDER extracts the SubjectPublicKeyInfo by walking the certificate's ASN.1
// itself, independently of crypto/x509's parsed fields.
func spkiFromCertDER(t *testing.T, der []byte) []byte {
	t.Helper()
	var cert struct {
		TBS asn1.RawValue
		Alg asn1.RawValue
		Sig asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &cert); err != nil {
		t.Fatal(err)
	}
	var tbs struct {
		Version   asn1.RawValue `asn1:"optional,explicit,tag:0"`
		Serial    asn1.RawValue
		Alg       asn1.RawValue
		Issuer    asn1.RawValue
		Validity  asn1.RawValue
		Subject   asn1.RawValue
		SPKI      asn1.RawValue
		Remaining asn1.RawValue `asn1:"optional,explicit,tag:3"`
	}
	if _, err := asn1.Unmarshal(cert.TBS.FullBytes, &tbs); err != nil {
		t.Fatal(err)
	}
	return tbs.SPKI.FullBytes
}

func TestSPKIPinPureGo(t *testing.T) {
	ca := newTestCA(t)
	ecC, _ := ca.issue(t, leafSpec{})
	rsaC, _ := ca.issue(t, leafSpec{rsa: true})
	dca, err := EnsureDevCA(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certs := map[string][]byte{"ecdsa": ecC, "rsa": rsaC}
	for _, f := range []string{dca.CAFile, dca.CertFile, filepath.Join("testdata", "pin-kat.pem")} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		certs[filepath.Base(f)] = b
	}
	for name, p := range certs {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.pem")
			os.WriteFile(path, p, 0o600)
			cert := readPEMCert(t, path)
			sum := sha256.Sum256(spkiFromCertDER(t, cert.Raw))
			want := base64.StdEncoding.EncodeToString(sum[:])
			if got := SPKIPin(cert); got != want {
				t.Errorf("SPKIPin = %s, independent ASN.1 walk = %s", got, want)
			}
			viaKey, err := PublicKeyPin(cert.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if viaKey != want {
				t.Errorf("PublicKeyPin = %s, want %s", viaKey, want)
			}
			if raw, _ := base64.StdEncoding.DecodeString(want); len(raw) != sha256.Size {
				t.Errorf("pin decodes to %d bytes", len(raw))
			}
		})
	}
}

func TestSPKIPinOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not on PATH; the pure-Go and known-answer tests still cover SPKIPin")
	}
	dca, err := EnsureDevCA(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{dca.CAFile, dca.CertFile} {
		t.Run(filepath.Base(f), func(t *testing.T) {
			pub, err := exec.Command(openssl, "x509", "-in", f, "-pubkey", "-noout").Output()
			if err != nil {
				t.Fatal(err)
			}
			der := exec.Command(openssl, "pkey", "-pubin", "-outform", "der")
			der.Stdin = bytes.NewReader(pub)
			derOut, err := der.Output()
			if err != nil {
				t.Fatal(err)
			}
			dgst := exec.Command(openssl, "dgst", "-sha256", "-binary")
			dgst.Stdin = bytes.NewReader(derOut)
			sum, err := dgst.Output()
			if err != nil {
				t.Fatal(err)
			}
			want := base64.StdEncoding.EncodeToString(sum)
			if got := SPKIPin(readPEMCert(t, f)); got != want {
				t.Errorf("SPKIPin = %s, openssl = %s", got, want)
			}
		})
	}
}

func TestPublicKeyPin(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	a, err := PublicKeyPin(ec.Public())
	if err != nil {
		t.Fatal(err)
	}
	b, err := PublicKeyPin(rk.Public())
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Error("different keys, same pin")
	}
	for _, bad := range []any{nil, "a string", ec /* a private key */, 42} {
		if _, err := PublicKeyPin(bad); err == nil || !strings.HasPrefix(err.Error(), "tlsutil: ") {
			t.Errorf("PublicKeyPin(%T) = %v, want a tlsutil error", bad, err)
		}
	}
}

func BenchmarkSPKIPin(b *testing.B) {
	ca := newTestCA(b)
	cert := ca.cert
	b.ReportAllocs()
	for b.Loop() {
		SPKIPin(cert)
	}
}
