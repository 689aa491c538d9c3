package store

import (
	"errors"
	"time"
)

// Domain errors. Driver errors never cross this package's boundary: every method
// maps them to one of these (wrapped with the operation name) or returns a wrapped
// internal error.
var (
	// ErrNotFound means the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a uniqueness rule or a conditional update failed: the email
	// index is taken, or another writer changed the row first (a lost race).
	ErrConflict = errors.New("conflict")
)

// User is an account. Email is never stored in plaintext: EmailSealed holds it
// sealed by the caller (bound to the row id) and EmailIndex is a keyed blind index
// (HMAC of the normalised address) used for lookup and uniqueness.
type User struct {
	ID            string
	EmailIndex    []byte
	EmailSealed   []byte
	PasswordHash  string // argon2id PHC string; empty for accounts without a password
	Roles         []string
	Plan          string
	EmailVerified bool
	LockedAt      *time.Time // nil when the account is not locked
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Session is one signed-in device: the family of refresh tokens that descend from
// one login. Generation is the number of the family's current (live) refresh token.
type Session struct {
	ID            string
	UserID        string
	Generation    int64
	AMR           []string // authentication methods used at login, e.g. ["pwd"]
	UserAgent     string
	IP            string
	CreatedAt     time.Time
	LastUsedAt    time.Time
	IdleExpiresAt time.Time // the family dies if unused until then
	ExpiresAt     time.Time // absolute end of the family
	RevokedAt     *time.Time
	RevokeReason  string
}

// Active reports whether the session can still be used at now.
func (s *Session) Active(now time.Time) bool {
	return s.RevokedAt == nil && now.Before(s.IdleExpiresAt) && now.Before(s.ExpiresAt)
}

// RefreshToken is one member of a session's refresh-token family. Only the SHA-256
// hash of the token is stored. When a token is rotated its successor is kept sealed
// (SuccessorSealed) for the reuse leeway only, so that a client that lost the
// response can be given the same successor; it is erased at the next rotation.
type RefreshToken struct {
	Hash            []byte
	SessionID       string
	Generation      int64
	CreatedAt       time.Time
	RotatedAt       *time.Time
	SuccessorSealed []byte
}

// Rotation is one atomic refresh-token rotation.
type Rotation struct {
	SessionID       string
	OldHash         []byte
	OldGeneration   int64
	SuccessorSealed []byte // the new token sealed, kept on the old row for the leeway
	New             RefreshToken
	Now             time.Time
	IdleExpiresAt   time.Time // the session's new idle expiry
}

// Signing-key states, in the order a key passes through them.
const (
	KeyNext     = "next"     // published in JWKS, not yet signing
	KeyActive   = "active"   // signs new tokens (exactly one)
	KeyRetiring = "retiring" // no longer signs; published until its tokens expire
	KeyRetired  = "retired"  // unpublished; kept for the record
)

// SigningKey is a token-signing key pair. PrivateSealed is the private key sealed
// by the KEK and bound to the key id; the private half is never stored in plaintext.
type SigningKey struct {
	ID            string // the JWS "kid"
	Algorithm     string // "ES256" or "EdDSA"
	State         string
	PublicJWK     []byte // JSON Web Key of the public half
	PrivateSealed []byte
	CreatedAt     time.Time
	ActivatedAt   *time.Time
	RetiringAt    *time.Time
	RetiredAt     *time.Time
}

// KeyTransition moves one signing key from one state to another. It is applied only
// if the key is still in From (a conditional update), so that two replicas rotating
// at once cannot both succeed.
type KeyTransition struct {
	ID   string
	From string
	To   string
	At   time.Time
}

// Event is one audit event. Detail holds event-specific fields and must never hold
// a secret (password, token, key, code).
type Event struct {
	ID        string
	Type      string
	Time      time.Time
	UserID    string
	SessionID string
	IP        string
	RequestID string
	Detail    map[string]string
}

// EventFilter selects events, newest first. Zero values do not filter.
type EventFilter struct {
	Type   string
	UserID string
	Since  time.Time
	Before time.Time // exclusive; used for paging
	Limit  int       // 0 means 100; capped at 1000
}
