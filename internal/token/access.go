package token

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// AccessType is the JWS "typ" of access tokens (RFC 9068 §2.1). Verification
// requires it, so no other JWT signed by the same keys passes as an access token.
const AccessType = "at+jwt"

// Errors returned by Verify. All of them mean "invalid_token" to a client.
var (
	ErrInvalidToken = errors.New("invalid token")
	ErrExpired      = errors.New("token expired")
)

// Claims are the access-token claims (DESIGN.md "Tokens").
type Claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  Audience `json:"aud"`
	Expiry    int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf,omitempty"`
	ID        string   `json:"jti"`
	SessionID string   `json:"sid"`
	ClientID  string   `json:"client_id,omitempty"`
	Scope     string   `json:"scope,omitempty"`
	Roles     []string `json:"roles"`
	Plan      string   `json:"plan,omitempty"`
	AMR       []string `json:"amr,omitempty"`
	AuthTime  int64    `json:"auth_time,omitempty"`
	Cnf       *Cnf     `json:"cnf,omitempty"`
}

// Cnf is the confirmation claim of a sender-constrained (DPoP) token.
type Cnf struct {
	JKT string `json:"jkt,omitempty"`
}

// ExpiresAt is the expiry as a time.
func (c *Claims) ExpiresAt() time.Time { return time.Unix(c.Expiry, 0) }

// Audience is "aud": a string or an array of strings (RFC 7519 §4.1.3).
type Audience []string

// MarshalJSON writes a single audience as a string.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON accepts a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = Audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

// Signer signs a payload as a compact JWS with the active key; the key ring is one.
type Signer interface {
	Sign(payload []byte, typ string) (string, error)
}

// KeyVerifier checks a compact JWS against the published keys; the key ring is one.
type KeyVerifier interface {
	Verify(compact string) (payload []byte, kid string, err error)
}

// AccessOptions configure access tokens.
type AccessOptions struct {
	Issuer   string        // required: the "iss" claim and the only one accepted
	Audience []string      // required: the "aud" claim; a token must carry one of these
	TTL      time.Duration // lifetime; 0 → 15 minutes
	// Leeway tolerates clock skew between replicas on exp/nbf/iat. 0 → 30s.
	Leeway time.Duration
	Now    func() time.Time // nil → time.Now
}

// Access mints and verifies access tokens.
type Access struct {
	signer   Signer
	verifier KeyVerifier
	opts     AccessOptions
}

// NewAccess returns an access-token minter/verifier.
func NewAccess(s Signer, v KeyVerifier, opts AccessOptions) (*Access, error) {
	if opts.Issuer == "" || len(opts.Audience) == 0 {
		return nil, errors.New("token: issuer and audience are required")
	}
	if opts.TTL <= 0 {
		opts.TTL = 15 * time.Minute
	}
	if opts.Leeway <= 0 {
		opts.Leeway = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Access{signer: s, verifier: v, opts: opts}, nil
}

// TTL is the access-token lifetime.
func (a *Access) TTL() time.Duration { return a.opts.TTL }

// Subject is who an access token is minted for.
type Subject struct {
	UserID    string
	SessionID string
	Roles     []string
	Plan      string
	AMR       []string
	AuthTime  time.Time
	Scope     string
}

// Mint signs a new access token for s.
func (a *Access) Mint(s Subject) (string, *Claims, error) {
	now := a.opts.Now()
	jti, err := randomID()
	if err != nil {
		return "", nil, err
	}
	roles := s.Roles
	if roles == nil {
		roles = []string{}
	}
	c := &Claims{
		Issuer:    a.opts.Issuer,
		Subject:   s.UserID,
		Audience:  Audience(a.opts.Audience),
		Expiry:    now.Add(a.opts.TTL).Unix(),
		IssuedAt:  now.Unix(),
		ID:        jti,
		SessionID: s.SessionID,
		Scope:     s.Scope,
		Roles:     roles,
		Plan:      s.Plan,
		AMR:       s.AMR,
	}
	if !s.AuthTime.IsZero() {
		c.AuthTime = s.AuthTime.Unix()
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", nil, fmt.Errorf("token: mint: %w", err)
	}
	tok, err := a.signer.Sign(payload, AccessType)
	if err != nil {
		return "", nil, fmt.Errorf("token: mint: %w", err)
	}
	return tok, c, nil
}

// maxTokenLen bounds what Verify will even look at; real tokens are < 2 KiB.
const maxTokenLen = 8 << 10

// Verify checks an access token's signature, type, issuer, audience and times.
// Every failure wraps ErrInvalidToken (ErrExpired as well for expiry) and never
// says more than a client needs.
func (a *Access) Verify(tok string) (*Claims, error) {
	if len(tok) == 0 || len(tok) > maxTokenLen || strings.Count(tok, ".") != 2 {
		return nil, fmt.Errorf("%w: malformed", ErrInvalidToken)
	}
	if err := checkType(tok); err != nil {
		return nil, err
	}
	payload, _, err := a.verifier.Verify(tok)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: claims: not JSON", ErrInvalidToken)
	}
	if err := a.checkClaims(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

func (a *Access) checkClaims(c *Claims) error {
	now := a.opts.Now()
	lw := a.opts.Leeway
	switch {
	case c.Issuer != a.opts.Issuer:
		return fmt.Errorf("%w: wrong issuer", ErrInvalidToken)
	case !slices.ContainsFunc(c.Audience, func(s string) bool { return slices.Contains(a.opts.Audience, s) }):
		return fmt.Errorf("%w: wrong audience", ErrInvalidToken)
	case c.Subject == "" || c.SessionID == "" || c.Expiry == 0:
		return fmt.Errorf("%w: missing claims", ErrInvalidToken)
	case now.After(time.Unix(c.Expiry, 0).Add(lw)):
		return fmt.Errorf("%w: %w", ErrInvalidToken, ErrExpired)
	case c.NotBefore != 0 && now.Add(lw).Before(time.Unix(c.NotBefore, 0)):
		return fmt.Errorf("%w: not yet valid", ErrInvalidToken)
	case c.IssuedAt != 0 && now.Add(lw).Before(time.Unix(c.IssuedAt, 0)):
		return fmt.Errorf("%w: issued in the future", ErrInvalidToken)
	}
	return nil
}

// checkType requires the protected header's typ to be at+jwt (RFC 9068 §4),
// before any signature work is spent on the token.
func checkType(tok string) error {
	hdr, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(hdr)
	if err != nil {
		return fmt.Errorf("%w: header", ErrInvalidToken)
	}
	var h struct {
		Typ string `json:"typ"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return fmt.Errorf("%w: header", ErrInvalidToken)
	}
	if !strings.EqualFold(h.Typ, AccessType) && !strings.EqualFold(h.Typ, "application/"+AccessType) {
		return fmt.Errorf("%w: not an access token", ErrInvalidToken)
	}
	return nil
}

func randomID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("token: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
