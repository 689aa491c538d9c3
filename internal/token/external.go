package token

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// ExternalOptions describe another issuer whose JWTs the gateway accepts.
type ExternalOptions struct {
	Issuer   string   // exact "iss"
	JWKSURL  string   // https URL of its JSON Web Key Set
	Audience []string // a token must carry one of these
	// MinRefresh is the least time between two JWKS fetches: an unknown kid
	// triggers at most one fetch per MinRefresh, so forged kids cannot make us
	// hammer the issuer. 0 → 30s.
	MinRefresh time.Duration
	Leeway     time.Duration    // clock skew on exp/nbf; 0 → 30s
	Client     *http.Client     // nil → a client with a 5s timeout
	Now        func() time.Time // nil → time.Now
}

// External verifies tokens of one external issuer against its JWKS.
type External struct {
	opts ExternalOptions

	mu        sync.Mutex
	keys      map[string]jose.JSONWebKey
	lastFetch time.Time
}

// externalAlgs are the signature algorithms accepted from other issuers; never
// "none" and never HMAC (a JWKS cannot safely publish a shared secret).
var externalAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.ES384, jose.EdDSA}

// NewExternal returns a verifier for one external issuer. Keys are fetched
// lazily, on the first token.
func NewExternal(opts ExternalOptions) (*External, error) {
	if opts.Issuer == "" || !strings.HasPrefix(opts.JWKSURL, "https://") || len(opts.Audience) == 0 {
		return nil, errors.New("token: external issuer needs issuer, an https jwks_url and an audience")
	}
	if opts.MinRefresh <= 0 {
		opts.MinRefresh = 30 * time.Second
	}
	if opts.Leeway <= 0 {
		opts.Leeway = 30 * time.Second
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &External{opts: opts, keys: map[string]jose.JSONWebKey{}}, nil
}

// Issuer is the issuer this verifier accepts.
func (e *External) Issuer() string { return e.opts.Issuer }

// Verify checks signature, issuer, audience and times.
func (e *External) Verify(tok string) (*Claims, error) {
	if len(tok) == 0 || len(tok) > maxTokenLen {
		return nil, fmt.Errorf("%w: malformed", ErrInvalidToken)
	}
	jws, err := jose.ParseSignedCompact(tok, externalAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: malformed", ErrInvalidToken)
	}
	h := jws.Signatures[0].Header
	if h.KeyID == "" || h.JSONWebKey != nil || len(h.ExtraHeaders) > 0 && hasDangerousHeader(h.ExtraHeaders) {
		return nil, fmt.Errorf("%w: header", ErrInvalidToken)
	}
	key, ok := e.key(h.KeyID)
	if !ok {
		return nil, fmt.Errorf("%w: unknown key", ErrInvalidToken)
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return nil, fmt.Errorf("%w: algorithm does not match the key", ErrInvalidToken)
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: signature", ErrInvalidToken)
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: claims", ErrInvalidToken)
	}
	now := e.opts.Now()
	switch {
	case c.Issuer != e.opts.Issuer:
		return nil, fmt.Errorf("%w: wrong issuer", ErrInvalidToken)
	case !slices.ContainsFunc(c.Audience, func(s string) bool { return slices.Contains(e.opts.Audience, s) }):
		return nil, fmt.Errorf("%w: wrong audience", ErrInvalidToken)
	case c.Subject == "" || c.Expiry == 0:
		return nil, fmt.Errorf("%w: missing claims", ErrInvalidToken)
	case now.After(time.Unix(c.Expiry, 0).Add(e.opts.Leeway)):
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, ErrExpired)
	case c.NotBefore != 0 && now.Add(e.opts.Leeway).Before(time.Unix(c.NotBefore, 0)):
		return nil, fmt.Errorf("%w: not yet valid", ErrInvalidToken)
	}
	return &c, nil
}

func hasDangerousHeader(extra map[jose.HeaderKey]any) bool {
	for _, k := range []jose.HeaderKey{"jku", "x5u", "x5c", "crit"} {
		if _, ok := extra[k]; ok {
			return true
		}
	}
	return false
}

// key returns the key for kid, fetching the JWKS at most once per MinRefresh
// when the kid is unknown.
func (e *External) key(kid string) (jose.JSONWebKey, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if k, ok := e.keys[kid]; ok {
		return k, true
	}
	if now := e.opts.Now(); e.lastFetch.IsZero() || now.Sub(e.lastFetch) >= e.opts.MinRefresh {
		e.lastFetch = now
		if keys, err := e.fetch(); err == nil {
			e.keys = keys
		}
	}
	k, ok := e.keys[kid]
	return k, ok
}

const maxJWKSBytes = 256 << 10

func (e *External) fetch() (map[string]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.opts.JWKSURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.opts.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("token: jwks: status %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJWKSBytes)).Decode(&set); err != nil {
		return nil, fmt.Errorf("token: jwks: %w", err)
	}
	out := map[string]jose.JSONWebKey{}
	for _, k := range set.Keys {
		if k.KeyID == "" || !k.Valid() || !k.IsPublic() || k.Use == "enc" {
			continue
		}
		out[k.KeyID] = k
	}
	return out, nil
}

// Issuers routes a token to the verifier of its (unverified) "iss" claim: the
// local key ring or one of the configured external issuers. The claim only
// selects which keys to try; the chosen verifier then checks it for real.
type Issuers struct {
	local    Verifier
	localIss string
	external map[string]Verifier
}

// NewIssuers returns a verifier that accepts the local issuer and externals.
func NewIssuers(localIssuer string, local Verifier, externals ...*External) *Issuers {
	m := map[string]Verifier{}
	for _, x := range externals {
		m[x.Issuer()] = x
	}
	return &Issuers{local: local, localIss: localIssuer, external: m}
}

// Verify picks the verifier by issuer.
func (is *Issuers) Verify(tok string) (*Claims, error) {
	if len(is.external) == 0 {
		return is.local.Verify(tok)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || len(parts[1]) > maxTokenLen {
		return nil, fmt.Errorf("%w: malformed", ErrInvalidToken)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: malformed", ErrInvalidToken)
	}
	var peek struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(raw, &peek); err != nil {
		return nil, fmt.Errorf("%w: malformed", ErrInvalidToken)
	}
	if v, ok := is.external[peek.Iss]; ok {
		return v.Verify(tok)
	}
	return is.local.Verify(tok)
}
