package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

var b64 = base64.RawURLEncoding

func decodeHeader(t testing.TB, tok string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	raw, err := b64.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// forge builds a compact JWS by hand: header as given, signature computed by sign
// over the signing input (nil sign → empty signature).
func forge(t testing.TB, header map[string]any, payload string, sign func(input []byte) []byte) string {
	t.Helper()
	hj, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	input := b64.EncodeToString(hj) + "." + b64.EncodeToString([]byte(payload))
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + b64.EncodeToString(sig)
}

func signES256(priv *ecdsa.PrivateKey) func([]byte) []byte {
	return func(input []byte) []byte {
		h := sha256.Sum256(input)
		r, s, err := ecdsa.Sign(rand.Reader, priv, h[:])
		if err != nil {
			panic(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

func signEd(priv ed25519.PrivateKey) func([]byte) []byte {
	return func(input []byte) []byte { return ed25519.Sign(priv, input) }
}

func signWith(priv crypto.Signer) func([]byte) []byte {
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		return signES256(k)
	case ed25519.PrivateKey:
		return signEd(k)
	}
	panic("unsupported key")
}

func hs256(secret []byte) func([]byte) []byte {
	return func(input []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(input)
		return m.Sum(nil)
	}
}

func selfSignedCert(t testing.TB, priv *ecdsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "attacker"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestVerifyRejectsHostileTokens(t *testing.T) {
	st := &fakeStore{}
	r := newTestRing(t, st, testSealer(), nil, RingOptions{})
	ring := r.snap.Load().signer
	kid := ring.kid
	ourSign := signWith(ring.priv)
	payload := `{"sub":"admin","roles":["admin"]}`

	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	attackerKid, _ := thumbprint(&attacker.PublicKey)
	_, attackerEd, _ := ed25519.GenerateKey(rand.Reader)
	attackerJWK := jose.JSONWebKey{Key: &attacker.PublicKey, KeyID: kid}
	attackerJWKJSON, _ := attackerJWK.MarshalJSON()

	// The public key in every form an HS256 confusion attack might use as secret.
	pubJWK := r.JWKS()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(pubJWK, &set); err != nil {
		t.Fatal(err)
	}
	onePub, _ := set.Keys[0].MarshalJSON()
	spki, _ := x509.MarshalPKIXPublicKey(ring.priv.Public())
	pemPub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})

	cert := selfSignedCert(t, attacker)

	h := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}

	genuine := forge(t, h("alg", "ES256", "kid", kid, "typ", "at+jwt"), payload, ourSign)
	mustVerify(t, r, genuine, payload, kid) // the forge helper itself is sound
	parts := strings.Split(genuine, ".")

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"alg none", forge(t, h("alg", "none", "kid", kid), payload, nil), ErrMalformed},
		{"alg None", forge(t, h("alg", "None", "kid", kid), payload, nil), ErrMalformed},
		{"alg NONE with signature", forge(t, h("alg", "NONE", "kid", kid), payload, ourSign), ErrMalformed},
		{"alg empty", forge(t, h("alg", "", "kid", kid), payload, ourSign), ErrMalformed},
		{"alg missing", forge(t, h("kid", kid), payload, ourSign), ErrMalformed},
		{"alg none, genuine signature kept", b64.EncodeToString([]byte(`{"alg":"none","kid":"`+kid+`"}`)) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"HS256 with public JWK as secret", forge(t, h("alg", "HS256", "kid", kid), payload, hs256(onePub)), ErrMalformed},
		{"HS256 with JWKS as secret", forge(t, h("alg", "HS256", "kid", kid), payload, hs256(pubJWK)), ErrMalformed},
		{"HS256 with SPKI DER as secret", forge(t, h("alg", "HS256", "kid", kid), payload, hs256(spki)), ErrMalformed},
		{"HS256 with PEM as secret", forge(t, h("alg", "HS256", "kid", kid), payload, hs256(pemPub)), ErrMalformed},
		{"RS256", forge(t, h("alg", "RS256", "kid", kid), payload, ourSign), ErrMalformed},
		{"ES384", forge(t, h("alg", "ES384", "kid", kid), payload, ourSign), ErrMalformed},
		{"embedded jwk of attacker", forge(t, h("alg", "ES256", "kid", kid, "jwk", json.RawMessage(attackerJWKJSON)), payload, signES256(attacker)), ErrMalformed},
		{"embedded jwk, our signature", forge(t, h("alg", "ES256", "kid", kid, "jwk", json.RawMessage(onePub)), payload, ourSign), ErrMalformed},
		{"jku", forge(t, h("alg", "ES256", "kid", kid, "jku", "https://evil.example/jwks.json"), payload, ourSign), ErrMalformed},
		{"x5u", forge(t, h("alg", "ES256", "kid", kid, "x5u", "https://evil.example/cert.pem"), payload, ourSign), ErrMalformed},
		{"x5c", forge(t, h("alg", "ES256", "kid", kid, "x5c", []string{base64.StdEncoding.EncodeToString(cert)}), payload, ourSign), ErrMalformed},
		{"x5c garbage", forge(t, h("alg", "ES256", "kid", kid, "x5c", []string{"!!"}), payload, ourSign), ErrMalformed},
		{"crit", forge(t, h("alg", "ES256", "kid", kid, "crit", []string{"exp"}, "exp", 1), payload, ourSign), ErrMalformed},
		{"b64 false", forge(t, h("alg", "ES256", "kid", kid, "b64", false, "crit", []string{"b64"}), payload, ourSign), ErrMalformed},
		{"nonce", forge(t, h("alg", "ES256", "kid", kid, "nonce", "n"), payload, ourSign), ErrMalformed},
		{"unknown header", forge(t, h("alg", "ES256", "kid", kid, "zip", "DEF"), payload, ourSign), ErrMalformed},
		{"no kid", forge(t, h("alg", "ES256"), payload, ourSign), ErrMalformed},
		{"empty kid", forge(t, h("alg", "ES256", "kid", ""), payload, ourSign), ErrMalformed},
		{"kid not a string", forge(t, h("alg", "ES256", "kid", 7), payload, ourSign), ErrMalformed},
		{"unknown kid", forge(t, h("alg", "ES256", "kid", attackerKid), payload, signES256(attacker)), ErrUnknownKey},
		{"kid injection", forge(t, h("alg", "ES256", "kid", "../../dev/null"), payload, ourSign), ErrUnknownKey},
		{"kid sql", forge(t, h("alg", "ES256", "kid", "x' OR '1'='1"), payload, ourSign), ErrUnknownKey},
		{"alg differs from key (EdDSA on ES256 key)", forge(t, h("alg", "EdDSA", "kid", kid), payload, signEd(attackerEd)), ErrBadSignature},
		{"attacker signature on our kid", forge(t, h("alg", "ES256", "kid", kid), payload, signES256(attacker)), ErrBadSignature},
		{"psychic signature", forge(t, h("alg", "ES256", "kid", kid), payload, func([]byte) []byte { return make([]byte, 64) }), ErrBadSignature},
		{"empty signature", forge(t, h("alg", "ES256", "kid", kid), payload, nil), ErrBadSignature},
		{"short signature", forge(t, h("alg", "ES256", "kid", kid), payload, func(in []byte) []byte { return ourSign(in)[:63] }), ErrBadSignature},
		{"payload swapped", parts[0] + "." + b64.EncodeToString([]byte(`{"sub":"other"}`)) + "." + parts[2], ErrBadSignature},
		{"header swapped", b64.EncodeToString([]byte(`{"alg":"ES256","kid":"`+kid+`","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2], ErrBadSignature},
		{"two parts", parts[0] + "." + parts[1], ErrMalformed},
		{"four parts", genuine + "." + parts[2], ErrMalformed},
		{"empty", "", ErrMalformed},
		{"dots", "..", ErrMalformed},
		{"bad base64 header", "!!!." + parts[1] + "." + parts[2], ErrMalformed},
		{"bad base64 signature", parts[0] + "." + parts[1] + ".***", ErrMalformed},
		{"header not json", b64.EncodeToString([]byte("nope")) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"header json array", b64.EncodeToString([]byte(`["alg","ES256"]`)) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"json serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, ErrMalformed},
		{"oversized", forge(t, h("alg", "ES256", "kid", kid), strings.Repeat("a", maxTokenSize), ourSign), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, gotKid, err := r.Verify(tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify err = %v, want %v", err, tt.want)
			}
			if pl != nil || gotKid != "" {
				t.Fatalf("Verify returned payload %q kid %q with an error", pl, gotKid)
			}
		})
	}
}

func TestVerifyAlgMustMatchKeyEdDSA(t *testing.T) {
	r := newTestRing(t, &fakeStore{}, testSealer(), nil, RingOptions{Algorithm: "EdDSA"})
	sk := r.snap.Load().signer
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tok := forge(t, map[string]any{"alg": "ES256", "kid": sk.kid}, "p", signES256(attacker))
	if _, _, err := r.Verify(tok); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("ES256 header on an EdDSA key: err = %v, want ErrBadSignature", err)
	}
	good := forge(t, map[string]any{"alg": "EdDSA", "kid": sk.kid}, "p", signWith(sk.priv))
	mustVerify(t, r, good, "p", sk.kid)
}

func TestVerifyTyp(t *testing.T) {
	r := newTestRing(t, &fakeStore{}, testSealer(), nil, RingOptions{})
	at := mustSign(t, r, "p")
	plain, err := r.Sign([]byte("p"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := decodeHeader(t, plain)["typ"]; ok {
		t.Fatal("typ set when not asked for")
	}
	sk := r.snap.Load().signer
	appTyp := forge(t, map[string]any{"alg": "ES256", "kid": sk.kid, "typ": "application/AT+JWT"}, "p", signWith(sk.priv))
	numTyp := forge(t, map[string]any{"alg": "ES256", "kid": sk.kid, "typ": 1}, "p", signWith(sk.priv))
	tests := []struct {
		token, typ string
		ok         bool
	}{
		{at, "at+jwt", true},
		{at, "application/at+jwt", true},
		{appTyp, "at+jwt", true},
		{at, "JWT", false},
		{at, "", false},
		{plain, "at+jwt", false},
		{numTyp, "at+jwt", false},
	}
	for _, tt := range tests {
		_, _, err := r.VerifyTyp(tt.token, tt.typ)
		if (err == nil) != tt.ok {
			t.Fatalf("VerifyTyp(typ %q, want %q) err = %v", decodeHeader(t, tt.token)["typ"], tt.typ, err)
		}
		if !tt.ok && !errors.Is(err, ErrMalformed) {
			t.Fatalf("err = %v, want ErrMalformed", err)
		}
	}
}

// fixedRing is a ring with fixed keys, an ES256 active key and an EdDSA next key,
// so that a token signed in one process verifies in another (fuzz workers rebuild
// it). It returns the private keys too.
func fixedRing(tb testing.TB) (r *Ring, es *ecdsa.PrivateKey, ed ed25519.PrivateKey) {
	tb.Helper()
	es, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{7}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	ed = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	s := testSealer()
	st := &fakeStore{}
	now := time.Unix(1767225600, 0)
	for _, k := range []struct {
		priv  crypto.Signer
		alg   string
		state string
	}{{es, "ES256", store.KeyActive}, {ed, "EdDSA", store.KeyNext}} {
		row, err := (&Ring{sealer: s, alg: jose.SignatureAlgorithm(k.alg)}).keyRow(k.priv, k.state, now)
		if err != nil {
			tb.Fatal(err)
		}
		if err := st.CreateSigningKey(context.Background(), row); err != nil {
			tb.Fatal(err)
		}
	}
	return newTestRing(tb, st, s, nil, RingOptions{}), es, ed
}

// FuzzVerify: no input panics, and nothing verifies except what was signed by a
// key of the ring.
func FuzzVerify(f *testing.F) {
	r, es, ed := fixedRing(f)
	esKid, _ := thumbprint(&es.PublicKey)
	edKid, _ := thumbprint(ed.Public())
	signed := map[string]bool{`{"sub":"u1"}`: true, "": true, "x": true}

	genuine, err := r.Sign([]byte(`{"sub":"u1"}`), "at+jwt")
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(genuine, ".")
	f.Add(genuine)                                                                                                           // genuine ES256 token
	f.Add(forge(f, map[string]any{"alg": "ES256", "kid": esKid}, "", signES256(es)))                                         // empty payload
	f.Add(forge(f, map[string]any{"alg": "EdDSA", "kid": edKid, "typ": "at+jwt"}, "x", signEd(ed)))                          // genuine EdDSA (next key)
	f.Add(forge(f, map[string]any{"alg": "EdDSA", "kid": esKid}, "x", signEd(ed)))                                           // alg of the other key
	f.Add(forge(f, map[string]any{"alg": "ES256", "kid": edKid}, "x", signES256(es)))                                        // kid of the other key
	f.Add(forge(f, map[string]any{"alg": "none", "kid": esKid}, "x", nil))                                                   // alg none
	f.Add(forge(f, map[string]any{"alg": "HS256", "kid": esKid}, "x", hs256([]byte("secret"))))                              // HMAC
	f.Add(forge(f, map[string]any{"alg": "ES256", "kid": esKid, "jku": "https://e"}, "x", signES256(es)))                    // jku
	f.Add(forge(f, map[string]any{"alg": "ES256", "kid": esKid, "x5c": []string{"AAAA"}}, "x", signES256(es)))               // x5c
	f.Add(forge(f, map[string]any{"alg": "ES256", "kid": esKid, "crit": []string{"b64"}, "b64": false}, "x", signES256(es))) // crit
	f.Add(parts[0] + "." + parts[1] + "." + b64.EncodeToString(make([]byte, 64)))                                            // psychic signature
	f.Add(parts[0] + ".." + parts[2])                                                                                        // payload removed
	f.Add(`{"protected":"` + parts[0] + `","payload":"` + parts[1] + `","signature":"` + parts[2] + `"}`)                    // JSON serialization
	f.Add("....")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		payload, kid, err := r.Verify(tok)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("unclassified error %v", err)
			}
			if payload != nil || kid != "" {
				t.Fatal("payload or kid returned with an error")
			}
			return
		}
		if !signed[string(payload)] || (kid != esKid && kid != edKid) {
			t.Fatalf("forged token verified: %q → %q kid %q", tok, payload, kid)
		}
	})
}

// Keys that are not next, active or retiring never verify, whatever the token.
func TestVerifyRetiredKeyNeverAccepted(t *testing.T) {
	st := &fakeStore{}
	c := newClock()
	r := newTestRing(t, st, testSealer(), c, RingOptions{RetireAfter: time.Minute})
	tok := mustSign(t, r, "p")
	kid := r.snap.Load().signer.kid
	if _, err := r.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, r, tok, "p", kid)
	c.Advance(time.Minute)
	if _, err := r.MaybeRotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st.states()[kid] != store.KeyRetired {
		t.Fatalf("key not retired: %v", st.states())
	}
	if _, _, err := r.Verify(tok); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("retired key: err = %v", err)
	}
	if strings.Contains(string(r.JWKS()), kid) {
		t.Fatal("retired key still in JWKS")
	}
}
