package social

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"golang.org/x/oauth2"
)

// Sentinel errors.
var (
	// ErrUnknownProvider: no provider of that name is configured.
	ErrUnknownProvider = errors.New("unknown provider")
	// ErrInvalidGrant: the Gatehouse code is unknown, used, expired, or the
	// redirect_uri or code_verifier does not match it.
	ErrInvalidGrant = errors.New("invalid authorization code")
)

// Error is a refused authorize or callback request. When RedirectURI is set
// the app's redirect URI is known and trusted, and the answer is a redirect to
// it with error=Code (RFC 6749 §4.1.2.1); otherwise the answer is a problem
// with Status and nothing is redirected anywhere.
type Error struct {
	Status      int    // HTTP status when there is no redirect
	Code        string // OAuth error code: invalid_request, access_denied, server_error, ...
	Description string
	Field       string // the parameter at fault, if one is
	RetryAfter  time.Duration

	RedirectURI string // the app's validated redirect URI, or ""
	State       string // the app's state, echoed with the error
}

func (e *Error) Error() string { return "social: " + e.Code + ": " + e.Description }

// Store is what social login needs from the store.
type Store interface {
	CreateCode(ctx context.Context, c *store.Code) error
	UseCode(ctx context.Context, kind, id string, now time.Time) (*store.Code, error)
	IdentityByProvider(ctx context.Context, provider, subject string) (*store.Identity, error)
	LinkIdentity(ctx context.Context, i *store.Identity) error
	SetEmailVerified(ctx context.Context, userID string, verified bool, now time.Time) error
	SetPasswordHash(ctx context.Context, userID, hash string, now time.Time) error
}

// Accounts finds and creates accounts (identity.Service).
type Accounts interface {
	User(ctx context.Context, id string) (*store.User, error)
	UserByEmail(ctx context.Context, email string) (*store.User, error)
	CreateFederated(ctx context.Context, email string, emailVerified bool, provider, subject string, m identity.Meta) (*store.User, error)
	RevokeSessions(ctx context.Context, userID, exceptID, reason string, m identity.Meta) ([]string, error)
}

// Sealer seals the pending sign-in's secrets (envelope.Keyring).
type Sealer interface {
	Seal(purpose string, plaintext []byte, aad ...string) ([]byte, error)
	Open(purpose string, sealed []byte, aad ...string) ([]byte, error)
}

// Recorder records audit events.
type Recorder interface {
	Record(ctx context.Context, e store.Event)
}

// ProviderConfig is one provider, resolved from the config (secret read).
type ProviderConfig struct {
	Name         string
	Issuer       string
	ClientID     string
	ClientSecret string // "" for a public client
	Scopes       []string
	RedirectURIs []string // the app's, matched exactly (loopback without port: any port)
	LinkByEmail  bool
	AuthStyle    oauth2.AuthStyle
}

// Options configure the service. Zero values are usable unless noted.
type Options struct {
	// Issuer is Gatehouse's public issuer URL (required): the callback is
	// Issuer + "/auth/v1/oidc/<name>/callback" and the app gets it as "iss".
	Issuer string
	// HTTPClient talks to providers. nil: a client with a 15s timeout.
	HTTPClient *http.Client
	// StateTTL bounds a sign-in at the provider. 0: 10m.
	StateTTL time.Duration
	// CodeTTL bounds the app's Gatehouse code. 0: 60s.
	CodeTTL time.Duration
	// MinBackoff and MaxBackoff bound the discovery retry delay. 0: 1s and 5m.
	MinBackoff, MaxBackoff time.Duration
	Now                    func() time.Time
	Logger                 *slog.Logger
}

// Service runs social login.
type Service struct {
	st        Store
	accounts  Accounts
	sealer    Sealer
	audit     Recorder
	opts      Options
	providers map[string]*provider
}

type provider struct {
	cfg   ProviderConfig
	ready atomic.Pointer[discovered]
}

// discovered is a provider whose discovery document has been read.
type discovered struct {
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// New returns the service. Providers are unusable (ErrUnavailable answers)
// until Run has discovered them.
func New(st Store, accounts Accounts, sealer Sealer, rec Recorder, providers []ProviderConfig, opts Options) (*Service, error) {
	if opts.Issuer == "" {
		return nil, errors.New("social: the issuer is required")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if opts.StateTTL <= 0 {
		opts.StateTTL = 10 * time.Minute
	}
	if opts.CodeTTL <= 0 {
		opts.CodeTTL = 60 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(5*time.Minute, opts.MinBackoff)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{st: st, accounts: accounts, sealer: sealer, audit: rec, opts: opts, providers: map[string]*provider{}}
	for _, p := range providers {
		if _, dup := s.providers[p.Name]; dup || p.Name == "" {
			return nil, fmt.Errorf("social: provider name %q is empty or repeated", p.Name)
		}
		s.providers[p.Name] = &provider{cfg: p}
	}
	return s, nil
}

// Providers lists the configured provider names, sorted.
func (s *Service) Providers() []string {
	out := make([]string, 0, len(s.providers))
	for n := range s.providers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Ready reports whether the provider has been discovered.
func (s *Service) Ready(name string) bool {
	p := s.providers[name]
	return p != nil && p.ready.Load() != nil
}

// Run discovers every provider, retrying each one that fails with
// exponential backoff and jitter, until all are discovered or ctx ends. A
// provider that is down delays nothing but itself.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range s.providers {
		wg.Go(func() { s.discoverLoop(ctx, p) })
	}
	wg.Wait()
}

func (s *Service) discoverLoop(ctx context.Context, p *provider) {
	delay := s.opts.MinBackoff
	for attempt := 1; ; attempt++ {
		err := s.discover(ctx, p)
		if err == nil {
			s.opts.Logger.InfoContext(ctx, "oidc provider discovered", "provider", p.cfg.Name, "issuer", p.cfg.Issuer, "attempts", attempt)
			return
		}
		if ctx.Err() != nil {
			return
		}
		wait := delay/2 + rand.N(delay/2+1)
		s.opts.Logger.WarnContext(ctx, "oidc provider discovery failed; its sign-ins answer 503 until it succeeds",
			"provider", p.cfg.Name, "issuer", p.cfg.Issuer, "attempt", attempt, "retry_in", wait.String(), "error", err.Error())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, s.opts.MaxBackoff)
	}
}

// discover reads the provider's discovery document once.
func (s *Service) discover(ctx context.Context, p *provider) error {
	cctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, s.opts.HTTPClient), 30*time.Second)
	defer cancel()
	// The context only bounds this fetch: go-oidc keeps the HTTP client (not
	// the context) for later JWKS fetches.
	op, err := oidc.NewProvider(cctx, p.cfg.Issuer)
	if err != nil {
		return err
	}
	var meta struct {
		Methods []string `json:"code_challenge_methods_supported"`
	}
	if err := op.Claims(&meta); err == nil && len(meta.Methods) > 0 && !contains(meta.Methods, "S256") {
		// Gatehouse never falls back to plain PKCE (RFC 9700 §2.1.1).
		return fmt.Errorf("provider does not support PKCE S256 (code_challenge_methods_supported: %v)", meta.Methods)
	}
	ep := op.Endpoint()
	ep.AuthStyle = p.cfg.AuthStyle
	d := &discovered{
		oauth: &oauth2.Config{
			ClientID:     p.cfg.ClientID,
			ClientSecret: p.cfg.ClientSecret,
			Endpoint:     ep,
			RedirectURL:  s.callbackURL(p.cfg.Name),
			Scopes:       p.cfg.Scopes,
		},
		verifier: op.Verifier(&oidc.Config{ClientID: p.cfg.ClientID, Now: s.opts.Now}),
	}
	p.ready.Store(d)
	return nil
}

func (s *Service) callbackURL(name string) string {
	return s.opts.Issuer + "/auth/v1/oidc/" + name + "/callback"
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
