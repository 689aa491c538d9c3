package service

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/password"
)

// countingVerifier wraps a real hasher at the cheapest cost and counts calls.
type countingVerifier struct {
	h      *password.Hasher
	mu     sync.Mutex
	checks int
	dummy  int
}

func (v *countingVerifier) Verify(ctx context.Context, pw, enc string) (bool, bool, error) {
	v.mu.Lock()
	v.checks++
	v.mu.Unlock()
	return v.h.Verify(ctx, pw, enc)
}

func (v *countingVerifier) VerifyDummy(ctx context.Context, pw string) error {
	v.mu.Lock()
	v.dummy++
	v.mu.Unlock()
	return v.h.VerifyDummy(ctx, pw)
}

func setup(t *testing.T) (*Authenticator, *countingVerifier, *[]string, *time.Time) {
	t.Helper()
	h, err := password.NewHasher(password.DefaultParams(), password.HasherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hash, err := h.Hash(context.Background(), "hash-secret")
	if err != nil {
		t.Fatal(err)
	}
	v := &countingVerifier{h: h}
	var failures []string
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	a, err := New([]config.Service{
		{ID: "ops", SecretHash: hash, Permissions: []string{"admin"}},
		{ID: "notes", SecretEnv: "NOTES_SECRET", Permissions: []string{"transit"}},
		{ID: "intro", SecretEnv: "INTRO_SECRET", Permissions: []string{"introspect"}},
		{ID: "unset", SecretEnv: "UNSET_SECRET", Permissions: []string{"admin"}},
	}, Options{
		Getenv:    func(k string) string { return map[string]string{"NOTES_SECRET": "env-secret", "INTRO_SECRET": "i"}[k] },
		Verifier:  v,
		Now:       func() time.Time { return now },
		OnFailure: func(_ context.Context, id string) { failures = append(failures, id) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return a, v, &failures, &now
}

func TestAuthenticate(t *testing.T) {
	a, v, failures, _ := setup(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, id, secret string
		ok               bool
	}{
		{"hash", "ops", "hash-secret", true},
		{"env", "notes", "env-secret", true},
		{"wrong hash secret", "ops", "hash-secreT", false},
		{"wrong env secret", "notes", "env-secre", false},
		{"env secret with suffix", "notes", "env-secret\x00", false},
		{"unknown id", "ghost", "hash-secret", false},
		{"unset env: empty secret", "unset", "", false},
		{"empty id", "", "", false},
		{"case differs", "OPS", "hash-secret", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := a.Authenticate(ctx, tc.id, tc.secret)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("err = %v", err)
			}
			if tc.ok && p.ID != tc.id {
				t.Fatalf("principal %+v", p)
			}
		})
	}
	if v.dummy != 4 { // ghost, unset, empty, OPS
		t.Errorf("unknown ids cost a dummy hash each: %d", v.dummy)
	}
	if len(*failures) != 7 {
		t.Errorf("failures recorded: %v", *failures)
	}
}

func TestCache(t *testing.T) {
	a, v, _, now := setup(t)
	ctx := context.Background()
	for range 5 {
		if _, err := a.Authenticate(ctx, "ops", "hash-secret"); err != nil {
			t.Fatal(err)
		}
	}
	if v.checks != 1 {
		t.Fatalf("%d argon2id checks for 5 calls, want 1", v.checks)
	}
	// A wrong secret is never answered from the cache.
	if _, err := a.Authenticate(ctx, "ops", "wrong"); err == nil {
		t.Fatal("wrong secret accepted")
	}
	*now = now.Add(6 * time.Minute)
	a.Authenticate(ctx, "ops", "hash-secret")
	if v.checks != 3 {
		t.Fatalf("after the TTL: %d checks, want 3", v.checks)
	}
}

func TestRequire(t *testing.T) {
	a, _, _, _ := setup(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(FromContext(r.Context()).ID)) })
	h := a.Require(func(*http.Request) string { return "req-1" }, PermTransit, PermAdmin)(ok)
	basic := func(id, s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+s)) }
	for _, tc := range []struct {
		name, auth string
		status     int
	}{
		{"transit service", basic("notes", "env-secret"), 200},
		{"admin service", basic("ops", "hash-secret"), 200},
		{"introspect only", basic("intro", "i"), 403},
		{"wrong secret", basic("notes", "nope"), 401},
		{"no header", "", 401},
		{"bearer", "Bearer abc", 401},
		{"not base64", "Basic %%%", 401},
		{"no colon", "Basic " + base64.StdEncoding.EncodeToString([]byte("notes")), 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/admin/v1/transit/encrypt/k", nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if tc.status == 401 && w.Header().Get("WWW-Authenticate") != Challenge {
				t.Fatalf("challenge %q", w.Header().Get("WWW-Authenticate"))
			}
			if tc.status >= 400 && (!strings.Contains(w.Body.String(), `"request_id":"req-1"`) || strings.Contains(w.Body.String(), "env-secret") || strings.Contains(w.Body.String(), "nope")) {
				t.Fatalf("body %s", w.Body)
			}
		})
	}
}
