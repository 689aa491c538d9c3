package service

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/problem"
)

// Permissions a service can hold.
const (
	PermIntrospect = "introspect"
	PermAdmin      = "admin"
	PermTransit    = "transit"
)

// ErrUnauthorized means the credentials are missing, malformed, unknown or wrong.
// Which one is deliberately not said.
var ErrUnauthorized = errors.New("service credentials rejected")

// Verifier checks argon2id PHC hashes; *password.Hasher is one.
type Verifier interface {
	Verify(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error)
	VerifyDummy(ctx context.Context, password string) error
}

// Options configures an Authenticator. Zero values are the documented defaults.
type Options struct {
	// Getenv reads secret_env variables. Nil: every secret_env service is
	// unusable (and a warning is logged).
	Getenv func(string) string
	// Verifier checks secret_hash. Nil: a password.Hasher of its own that runs
	// at most 2 argon2id computations at once.
	Verifier Verifier
	// CacheTTL is how long a successful argon2id check is remembered, so a
	// backend calling many times a second pays for one hash per TTL. 0: 5m.
	// Negative: no cache.
	CacheTTL time.Duration
	// OnFailure, if set, is called after each rejected attempt with the claimed
	// service id (clipped to 64 bytes), for auditing.
	OnFailure func(ctx context.Context, claimedID string)
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Logger receives configuration warnings, never secrets. Nil: discarded.
	Logger *slog.Logger
}

// Principal is an authenticated service.
type Principal struct {
	ID          string
	Permissions []string
}

// Has reports whether p holds any of perms.
func (p *Principal) Has(perms ...string) bool {
	for _, want := range perms {
		if slices.Contains(p.Permissions, want) {
			return true
		}
	}
	return false
}

type credential struct {
	id     string
	hash   string   // argon2id PHC, or
	plain  [32]byte // SHA-256 of the secret from secret_env
	usable bool
	perms  []string
}

const maxCache = 1024

// Authenticator checks service credentials. It is safe for concurrent use.
type Authenticator struct {
	creds    map[string]*credential
	verifier Verifier
	ttl      time.Duration
	onFail   func(context.Context, string)
	now      func() time.Time
	cacheKey [32]byte // per-process HMAC key for cache entries

	mu    sync.Mutex
	cache map[[32]byte]time.Time // HMAC(id, secret) → expiry
}

// New returns an Authenticator for the configured services.
func New(services []config.Service, opts Options) (*Authenticator, error) {
	a := &Authenticator{creds: map[string]*credential{}, verifier: opts.Verifier, ttl: opts.CacheTTL,
		onFail: opts.OnFailure, now: opts.Now, cache: map[[32]byte]time.Time{}}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.ttl == 0 {
		a.ttl = 5 * time.Minute
	}
	if a.verifier == nil {
		h, err := password.NewHasher(password.DefaultParams(), password.HasherOptions{MaxConcurrent: 2, QueueTimeout: 2 * time.Second})
		if err != nil {
			return nil, err
		}
		a.verifier = h
	}
	rand.Read(a.cacheKey[:])
	for _, s := range services {
		c := &credential{id: s.ID, hash: s.SecretHash, perms: slices.Clone(s.Permissions), usable: true}
		if s.SecretEnv != "" {
			var v string
			if opts.Getenv != nil {
				v = opts.Getenv(s.SecretEnv)
			}
			if v == "" {
				// Fail closed for this service only: the rest of the server works.
				log.Warn("service: secret_env variable is unset or empty; the service cannot authenticate", "service", s.ID, "variable", s.SecretEnv)
				c.usable = false
			}
			c.plain = sha256.Sum256([]byte(v))
		}
		a.creds[s.ID] = c
	}
	return a, nil
}

// Authenticate checks id and secret and returns the service.
func (a *Authenticator) Authenticate(ctx context.Context, id, secret string) (*Principal, error) {
	c := a.creds[id]
	if c == nil || !c.usable {
		// Why the dummy hash: an unknown id must cost what a wrong secret costs,
		// so response times do not reveal which service ids exist.
		_ = a.verifier.VerifyDummy(ctx, secret)
		a.failed(ctx, id)
		return nil, ErrUnauthorized
	}
	if c.hash == "" {
		got := sha256.Sum256([]byte(secret))
		if subtle.ConstantTimeCompare(got[:], c.plain[:]) != 1 {
			a.failed(ctx, id)
			return nil, ErrUnauthorized
		}
		return &Principal{ID: c.id, Permissions: c.perms}, nil
	}
	key := a.entry(id, secret)
	if a.cached(key) {
		return &Principal{ID: c.id, Permissions: c.perms}, nil
	}
	ok, _, err := a.verifier.Verify(ctx, secret, c.hash)
	if err != nil || !ok {
		a.failed(ctx, id)
		return nil, ErrUnauthorized
	}
	a.remember(key)
	return &Principal{ID: c.id, Permissions: c.perms}, nil
}

// entry is the cache key of a credential pair. Why an HMAC under a per-process
// random key: the cache then holds nothing from which a secret could be guessed
// offline, and map lookups on it leak nothing useful through timing.
func (a *Authenticator) entry(id, secret string) [32]byte {
	m := hmac.New(sha256.New, a.cacheKey[:])
	m.Write([]byte(id))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

func (a *Authenticator) cached(k [32]byte) bool {
	if a.ttl < 0 {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.cache[k]
	if ok && a.now().Before(exp) {
		return true
	}
	delete(a.cache, k)
	return false
}

func (a *Authenticator) remember(k [32]byte) {
	if a.ttl < 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= maxCache {
		clear(a.cache) // bounded; successful callers re-verify once
	}
	a.cache[k] = a.now().Add(a.ttl)
}

func (a *Authenticator) failed(ctx context.Context, id string) {
	if a.onFail == nil {
		return
	}
	if len(id) > 64 {
		id = id[:64]
	}
	a.onFail(ctx, id)
}

type ctxKey struct{}

// FromContext returns the service that Require authenticated, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p
}

// Challenge is the WWW-Authenticate value of a 401 (RFC 7617).
const Challenge = `Basic realm="gatehouse admin", charset="UTF-8"`

// Require returns middleware that admits only requests carrying HTTP Basic
// credentials of a service holding one of perms: 401 with a Basic challenge
// otherwise, 403 if the service lacks the permission. requestID names the
// request in problem bodies.
func (a *Authenticator) Require(requestID func(*http.Request) string, perms ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, secret, ok := r.BasicAuth()
			var p *Principal
			err := ErrUnauthorized
			if ok {
				p, err = a.Authenticate(r.Context(), id, secret)
			}
			if err != nil {
				w.Header().Set("WWW-Authenticate", Challenge)
				problem.Write(w, problem.New(http.StatusUnauthorized, "unauthorized", "Unauthorized",
					"valid service credentials are required (HTTP Basic: service id and secret)"), requestID(r))
				return
			}
			if !p.Has(perms...) {
				problem.Write(w, problem.New(http.StatusForbidden, "forbidden", "Forbidden",
					"this service lacks the permission for this endpoint"), requestID(r))
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)))
		})
	}
}
