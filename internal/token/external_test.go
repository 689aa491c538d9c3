package token_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/go-jose/go-jose/v4"
)

type idp struct {
	srv     *httptest.Server
	fetches atomic.Int32
	keys    []jose.JSONWebKey
}

func newIDP(t *testing.T, keys ...jose.JSONWebKey) *idp {
	p := &idp{keys: keys}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		var pub []jose.JSONWebKey
		for _, k := range p.keys {
			pub = append(pub, k.Public())
		}
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: pub})
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func sign(t *testing.T, k jose.JSONWebKey, alg jose.SignatureAlgorithm, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	obj, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := obj.CompactSerialize()
	return out
}

func TestExternalIssuer(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey := jose.JSONWebKey{Key: rk, KeyID: "rsa-1", Algorithm: "RS256", Use: "sig"}
	ecKey := jose.JSONWebKey{Key: ek, KeyID: "ec-1", Algorithm: "ES256", Use: "sig"}
	p := newIDP(t, rsaKey)
	now := time.Unix(1_800_000_000, 0)
	clk := func() time.Time { return now }
	x, err := token.NewExternal(token.ExternalOptions{Issuer: "https://idp.example", JWKSURL: p.srv.URL + "/jwks", Audience: []string{"api"}, Client: p.srv.Client(), Now: clk, MinRefresh: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	good := map[string]any{"iss": "https://idp.example", "sub": "u1", "aud": "api", "exp": now.Add(time.Hour).Unix()}
	c, err := x.Verify(sign(t, rsaKey, jose.RS256, good))
	if err != nil || c.Subject != "u1" {
		t.Fatalf("valid RS256 token: %v", err)
	}
	bad := func(name string, tok string) {
		t.Helper()
		if _, err := x.Verify(tok); !errors.Is(err, token.ErrInvalidToken) {
			t.Errorf("%s: %v, want ErrInvalidToken", name, err)
		}
	}
	withClaim := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range good {
			m[a] = b
		}
		m[k] = v
		return m
	}
	bad("wrong issuer", sign(t, rsaKey, jose.RS256, withClaim("iss", "https://evil.example")))
	bad("wrong audience", sign(t, rsaKey, jose.RS256, withClaim("aud", "other")))
	bad("expired", sign(t, rsaKey, jose.RS256, withClaim("exp", now.Add(-time.Hour).Unix())))
	bad("HS256 with a shared secret", sign(t, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "rsa-1"}, jose.HS256, good))
	bad("PS256 on an RS256 key", sign(t, rsaKey, jose.PS256, good))

	// Unknown kids: the first triggers one fetch; more within MinRefresh none.
	before := p.fetches.Load()
	for range 20 {
		bad("unknown kid", sign(t, ecKey, jose.ES256, good))
	}
	if got := p.fetches.Load() - before; got > 1 {
		t.Fatalf("%d JWKS fetches for unknown kids within the interval, want at most 1", got)
	}
	// The issuer rotates in a new key; after MinRefresh it is picked up.
	p.keys = append(p.keys, ecKey)
	now = now.Add(2 * time.Minute)
	good["exp"] = now.Add(time.Hour).Unix()
	if _, err := x.Verify(sign(t, ecKey, jose.ES256, good)); err != nil {
		t.Fatalf("rotated-in key: %v", err)
	}

	// Issuers routes by iss and falls back to the local verifier.
	local := &countingVerifier{exp: now.Add(time.Hour).Unix()}
	is := token.NewIssuers("https://gatehouse.example", local, x)
	if c, err := is.Verify(sign(t, ecKey, jose.ES256, good)); err != nil || c.Subject != "u1" {
		t.Fatalf("routed to external: %v", err)
	}
	localTok := sign(t, ecKey, jose.ES256, withClaim("iss", "https://gatehouse.example"))
	if _, err := is.Verify(localTok); err != nil || local.calls.Load() != 1 {
		t.Fatalf("local issuer not routed locally: %v", err)
	}
	if _, err := is.Verify("not.a.jwt!"); !errors.Is(err, token.ErrInvalidToken) {
		t.Fatalf("garbage: %v", err)
	}
}

func TestExternalOptionsValidated(t *testing.T) {
	for _, o := range []token.ExternalOptions{
		{JWKSURL: "https://x/jwks", Audience: []string{"a"}},
		{Issuer: "https://x", JWKSURL: "http://x/jwks", Audience: []string{"a"}},
		{Issuer: "https://x", JWKSURL: "https://x/jwks"},
	} {
		if _, err := token.NewExternal(o); err == nil {
			t.Errorf("NewExternal(%+v) accepted", o)
		}
	}
}
