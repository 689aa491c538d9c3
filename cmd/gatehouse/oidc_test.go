package main

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gatehouse-dev/gatehouse/internal/config"
)

// TestOIDCVerifiesGatehouseTokens: an independent OIDC library (go-oidc),
// given only the issuer URL, discovers the provider, fetches the JWKS and
// verifies access tokens from a real sign-in, for both signing algorithms.
// Across a key rotation the signing key turns retiring and tokens still
// verify; once it is retired (after access TTL + JWKS cache TTL on the
// injected clock) a fresh verifier refuses them, for the key and not the
// expiry.
func TestOIDCVerifiesGatehouseTokens(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			s := startLiveApp(t, "", liveOptions{mutate: func(c *config.Config) { c.Tokens.Algorithm = alg }})
			ctx := oidc.ClientContext(context.Background(), s.c)
			aud := s.cfg.Tokens.Audience[0]
			// fresh discovers the provider anew, so no key cached by an earlier
			// verifier can hide what the JWKS says now.
			fresh := func(cfg oidc.Config) *oidc.IDTokenVerifier {
				t.Helper()
				p, err := oidc.NewProvider(ctx, s.issuer)
				if err != nil {
					t.Fatalf("discovery: %v", err)
				}
				return p.Verifier(&cfg)
			}
			strict := oidc.Config{ClientID: aud, SupportedSigningAlgs: []string{alg}, Now: s.clk.Now}

			checkDiscovery(t, s, alg)

			wantStatus(t, s.signup(t, "oidc@example.com", pw), http.StatusCreated)
			r := s.login(t, "oidc@example.com", pw)
			wantStatus(t, r, http.StatusOK)
			access, refresh := r.str(t, "access_token"), r.str(t, "refresh_token")
			hdr, claims := jwtParts(t, access)
			kid := hdr["kid"].(string)
			if hdr["alg"] != alg {
				t.Fatalf("token alg %v, want %s", hdr["alg"], alg)
			}

			idt, err := fresh(strict).Verify(ctx, access)
			if err != nil {
				t.Fatalf("go-oidc refuses a fresh Gatehouse token: %v", err)
			}
			if idt.Issuer != s.issuer || idt.Subject != claims["sub"] || !slices.Equal(idt.Audience, []string{aud}) {
				t.Fatalf("verified claims: iss %q sub %q aud %v", idt.Issuer, idt.Subject, idt.Audience)
			}
			var got struct {
				SID   string   `json:"sid"`
				Scope string   `json:"scope"`
				AMR   []string `json:"amr"`
			}
			if err := idt.Claims(&got); err != nil || got.SID == "" || got.Scope != "api" || !slices.Equal(got.AMR, []string{"pwd"}) {
				t.Fatalf("claims %+v, %v", got, err)
			}

			// The checks go-oidc makes are real ones: another audience, another
			// algorithm and a later clock are all refused.
			negatives := map[string]oidc.Config{
				"another audience":  {ClientID: "someone-else", SupportedSigningAlgs: []string{alg}, Now: s.clk.Now},
				"another algorithm": {ClientID: aud, SupportedSigningAlgs: []string{map[string]string{"ES256": "EdDSA", "EdDSA": "ES256"}[alg]}, Now: s.clk.Now},
				"after expiry": {ClientID: aud, SupportedSigningAlgs: []string{alg}, Now: func() time.Time {
					return s.clk.Now().Add(s.cfg.Tokens.AccessTTL.D() + time.Minute)
				}},
			}
			for name, cfg := range negatives {
				if _, err := fresh(cfg).Verify(ctx, access); err == nil {
					t.Errorf("%s: go-oidc accepted the token", name)
				}
			}

			// Rotation 1: the key that signed the token becomes retiring. It is
			// still published, so a verifier that has never seen it accepts it.
			res, err := s.app.ring.Rotate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if res.Retiring != kid {
				t.Fatalf("rotation made %s retiring, want the token's key %s", res.Retiring, kid)
			}
			if !slices.Contains(jwksKids(t, s), kid) {
				t.Fatal("the retiring key left the JWKS")
			}
			if _, err := fresh(strict).Verify(ctx, access); err != nil {
				t.Fatalf("a token signed by a retiring key is refused: %v", err)
			}
			// A token minted now is signed by the newly active key and verifies too.
			r = s.refresh(t, refresh)
			wantStatus(t, r, http.StatusOK)
			access2 := r.str(t, "access_token")
			if h, _ := jwtParts(t, access2); h["kid"] != res.Activated {
				t.Fatalf("new token signed by %v, want the activated key %s", h["kid"], res.Activated)
			}
			if _, err := fresh(strict).Verify(ctx, access2); err != nil {
				t.Fatalf("a token from the new active key is refused: %v", err)
			}

			// Rotation 2, after the retiring key's publication period: it is retired.
			s.clk.Advance(s.cfg.Tokens.AccessTTL.D() + s.cfg.Keys.JWKSCacheTTL.D() + time.Second)
			res, err = s.app.ring.Rotate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(res.Retired, kid) {
				t.Fatalf("rotation retired %v, want %s among them", res.Retired, kid)
			}
			if slices.Contains(jwksKids(t, s), kid) {
				t.Fatal("a retired key is still published")
			}
			noExpiry := oidc.Config{ClientID: aud, SupportedSigningAlgs: []string{alg}, SkipExpiryCheck: true}
			v := fresh(noExpiry)
			_, err = v.Verify(ctx, access)
			if err == nil {
				t.Fatal("go-oidc accepted a token signed by a retired key")
			}
			if !strings.Contains(err.Error(), "failed to verify signature") {
				t.Fatalf("refused, but not for its key: %v", err)
			}
			// The same verifier still accepts the (as old, equally expired) token
			// of the now retiring key: the refusal above is about the key alone.
			if _, err := v.Verify(ctx, access2); err != nil {
				t.Fatalf("the control token is refused: %v", err)
			}
		})
	}
}

// checkDiscovery asserts the discovery document and the JWKS headers.
func checkDiscovery(t *testing.T, s *liveApp, alg string) {
	t.Helper()
	r := do(t, s.c, "GET", s.issuer+"/.well-known/openid-configuration", "", "")
	wantStatus(t, r, http.StatusOK)
	var doc struct {
		Issuer        string   `json:"issuer"`
		JWKSURI       string   `json:"jwks_uri"`
		TokenEndpoint string   `json:"token_endpoint"`
		Revocation    string   `json:"revocation_endpoint"`
		Userinfo      string   `json:"userinfo_endpoint"`
		Algs          []string `json:"id_token_signing_alg_values_supported"`
		Grants        []string `json:"grant_types_supported"`
		PKCE          []string `json:"code_challenge_methods_supported"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Issuer != s.issuer || doc.JWKSURI != s.issuer+"/.well-known/jwks.json" || doc.TokenEndpoint != s.issuer+"/auth/v1/token" ||
		doc.Revocation != s.issuer+"/auth/v1/revoke" || doc.Userinfo != s.issuer+"/auth/v1/user" {
		t.Errorf("discovery endpoints: %s", r.body)
	}
	if !slices.Equal(doc.Algs, []string{alg}) {
		t.Errorf("id_token_signing_alg_values_supported %v, want [%s]", doc.Algs, alg)
	}
	if !slices.Equal(doc.Grants, []string{"password", "refresh_token", mfaGrantType}) || slices.Contains(doc.PKCE, "plain") {
		t.Errorf("grants %v, PKCE %v", doc.Grants, doc.PKCE)
	}

	r = do(t, s.c, "GET", s.issuer+"/.well-known/jwks.json", "", "")
	wantStatus(t, r, http.StatusOK)
	if cc, want := r.header.Get("Cache-Control"), "public, max-age=300"; cc != want {
		t.Errorf("JWKS Cache-Control %q, want %q (keys.jwks_cache_ttl 5m)", cc, want)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("JWKS content type %q", ct)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(r.body, &set); err != nil || len(set.Keys) != 2 {
		t.Fatalf("JWKS: want the active and the next key: %s", r.body)
	}
	for _, k := range set.Keys {
		if k["alg"] != alg || k["kid"] == "" {
			t.Errorf("JWK without alg %s or kid: %v", alg, k)
		}
		// A private JWK member in a public document would give away the key.
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[private]; ok {
				t.Errorf("JWK publishes private member %q", private)
			}
		}
	}
}

func jwksKids(t *testing.T, s *liveApp) []string {
	t.Helper()
	r := do(t, s.c, "GET", s.issuer+"/.well-known/jwks.json", "", "")
	wantStatus(t, r, http.StatusOK)
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(r.body, &set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}
