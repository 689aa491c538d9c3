package keys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"testing"
)

func benchVerify(b *testing.B, alg string) {
	r := newTestRing(b, &fakeStore{}, testSealer(), nil, RingOptions{Algorithm: alg})
	tok, err := r.Sign([]byte(`{"iss":"https://gatehouse.example","sub":"u_01J9Z3","aud":"api","exp":1900000000,"iat":1899999100,"jti":"j_8f2c","sid":"s_77","scope":"read write","roles":["user"],"plan":"pro","amr":["pwd","otp"]}`), "at+jwt")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := r.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyES256(b *testing.B) { benchVerify(b, "ES256") }
func BenchmarkVerifyEdDSA(b *testing.B) { benchVerify(b, "EdDSA") }

func benchSign(b *testing.B, alg string) {
	r := newTestRing(b, &fakeStore{}, testSealer(), nil, RingOptions{Algorithm: alg})
	payload := []byte(`{"iss":"https://gatehouse.example","sub":"u_01J9Z3","aud":"api","exp":1900000000}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Sign(payload, "at+jwt"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignES256(b *testing.B) { benchSign(b, "ES256") }
func BenchmarkSignEdDSA(b *testing.B) { benchSign(b, "EdDSA") }

func BenchmarkSeal(b *testing.B) {
	s := testSealer()
	pt := bytes.Repeat([]byte{'x'}, 1024)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Seal("email", pt, "users", "email", "u_01J9Z3"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	s := testSealer()
	pt := bytes.Repeat([]byte{'x'}, 1024)
	sealed, _ := s.Seal("email", pt, "users", "email", "u_01J9Z3")
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Open("email", sealed, "users", "email", "u_01J9Z3"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIndex(b *testing.B) {
	s := testSealer()
	v := []byte("alice@example.com")
	b.ReportAllocs()
	for b.Loop() {
		s.Index("email", v)
	}
}

// BenchmarkFloorECDSAVerify is the bare P-256 signature check: the floor that
// BenchmarkVerifyES256 is compared with (the difference is JWS parsing).
func BenchmarkFloorECDSAVerify(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h := sha256.Sum256([]byte("x"))
	r, s, _ := ecdsa.Sign(rand.Reader, k, h[:])
	b.ReportAllocs()
	for b.Loop() {
		hh := sha256.Sum256([]byte("x"))
		if !ecdsa.Verify(&k.PublicKey, hh[:], new(big.Int).Set(r), s) {
			b.Fatal("bad")
		}
	}
}

// BenchmarkFloorEd25519Verify is the floor for BenchmarkVerifyEdDSA.
func BenchmarkFloorEd25519Verify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sig := ed25519.Sign(priv, []byte("x"))
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, []byte("x"), sig) {
			b.Fatal("bad")
		}
	}
}
