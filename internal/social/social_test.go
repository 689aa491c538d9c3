package social

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
)

// TestDiscoveryRetries: a provider that fails discovery is retried with
// backoff and becomes usable once it answers; until then it is not ready.
func TestDiscoveryRetries(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= 3 {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": srv.URL, "authorization_endpoint": srv.URL + "/auth", "token_endpoint": srv.URL + "/token",
			"jwks_uri": srv.URL + "/jwks", "code_challenge_methods_supported": []string{"S256"},
		})
	}))
	t.Cleanup(srv.Close)
	s, err := New(nil, nil, nil, nil, []ProviderConfig{{Name: "p", Issuer: srv.URL, ClientID: "c", RedirectURIs: []string{"com.example.app:/cb"}}},
		Options{Issuer: "https://gatehouse.example", MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if s.Ready("p") {
		t.Fatal("ready before discovery")
	}
	_, err = s.Authorize(t.Context(), "p", AuthorizeRequest{RedirectURI: "com.example.app:/cb"}, meta0)
	if e, ok := err.(*Error); !ok || e.Status != http.StatusServiceUnavailable || e.RedirectURI != "" {
		t.Fatalf("authorize before discovery: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s.Run(ctx) // returns once every provider is discovered
	if !s.Ready("p") || hits.Load() != 4 {
		t.Fatalf("ready %v after %d discovery requests", s.Ready("p"), hits.Load())
	}
}

// A provider whose metadata lists PKCE methods without S256 is never used.
func TestDiscoveryRefusesProviderWithoutS256(t *testing.T) {
	t.Parallel()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": srv.URL, "authorization_endpoint": srv.URL + "/auth", "token_endpoint": srv.URL + "/token",
			"jwks_uri": srv.URL + "/jwks", "code_challenge_methods_supported": []string{"plain"},
		})
	}))
	t.Cleanup(srv.Close)
	s, err := New(nil, nil, nil, nil, []ProviderConfig{{Name: "p", Issuer: srv.URL, ClientID: "c"}}, Options{Issuer: "https://g.example"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.discover(t.Context(), s.providers["p"]); err == nil || s.Ready("p") {
		t.Fatalf("discovered a plain-only provider: %v", err)
	}
}

func TestUnknownProvider(t *testing.T) {
	t.Parallel()
	s, err := New(nil, nil, nil, nil, nil, Options{Issuer: "https://g.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authorize(t.Context(), "nope", AuthorizeRequest{}, meta0); err != ErrUnknownProvider {
		t.Fatalf("authorize: %v", err)
	}
	if _, err := s.Callback(t.Context(), "nope", CallbackRequest{}, meta0); err != ErrUnknownProvider {
		t.Fatalf("callback: %v", err)
	}
	if _, err := New(nil, nil, nil, nil, []ProviderConfig{{Name: "a"}, {Name: "a"}}, Options{Issuer: "https://g.example"}); err == nil {
		t.Fatal("duplicate provider names accepted")
	}
}

var meta0 = identity.Meta{RequestID: "test"}
