package token

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/google/uuid"
)

// RefreshPrefix starts every refresh token so that secret scanners (ours included)
// recognise one that leaked into a log or a response.
const RefreshPrefix = "ghr_"

// Errors from Families. Both mean "invalid_grant" to a client.
var (
	// ErrInvalidGrant: unknown, expired or revoked refresh token.
	ErrInvalidGrant = errors.New("invalid refresh token")
	// ErrReused: an already-rotated token was presented outside the leeway; the
	// whole family has been revoked.
	ErrReused = errors.New("refresh token reused")
)

// RefreshStore is what refresh-token families need from the store.
type RefreshStore interface {
	CreateSession(ctx context.Context, s *store.Session, first *store.RefreshToken) error
	RefreshToken(ctx context.Context, hash []byte) (*store.RefreshToken, *store.Session, error)
	RotateRefreshToken(ctx context.Context, r store.Rotation) error
	RevokeSession(ctx context.Context, id, reason string, at time.Time) (bool, error)
}

// Sealer seals the successor token for the leeway window.
type Sealer interface {
	Seal(purpose string, plaintext []byte, aad ...string) ([]byte, error)
	Open(purpose string, sealed []byte, aad ...string) ([]byte, error)
}

// FamilyOptions configure refresh-token families.
type FamilyOptions struct {
	IdleTTL     time.Duration    // 0 → 30 days
	AbsoluteTTL time.Duration    // 0 → 90 days
	Leeway      time.Duration    // reuse leeway; negative disables; 0 → 10s
	Now         func() time.Time // nil → time.Now
	Logger      *slog.Logger     // nil → discard
}

// Families issues and rotates refresh tokens.
type Families struct {
	st     RefreshStore
	sealer Sealer
	opts   FamilyOptions
}

// NewFamilies returns a refresh-token family manager.
func NewFamilies(st RefreshStore, s Sealer, opts FamilyOptions) *Families {
	if opts.IdleTTL <= 0 {
		opts.IdleTTL = 30 * 24 * time.Hour
	}
	if opts.AbsoluteTTL <= 0 {
		opts.AbsoluteTTL = 90 * 24 * time.Hour
	}
	if opts.Leeway == 0 {
		opts.Leeway = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Families{st: st, sealer: s, opts: opts}
}

// Login describes the sign-in that starts a family.
type Login struct {
	UserID    string
	AMR       []string
	UserAgent string
	IP        string
}

// Start opens a new session (family) and returns its first refresh token.
func (f *Families) Start(ctx context.Context, l Login) (*store.Session, string, error) {
	now := f.opts.Now().UTC()
	tok, hash, err := newRefresh()
	if err != nil {
		return nil, "", err
	}
	s := &store.Session{
		ID:            uuid.NewString(),
		UserID:        l.UserID,
		Generation:    1,
		AMR:           l.AMR,
		UserAgent:     truncate(l.UserAgent, 256),
		IP:            l.IP,
		CreatedAt:     now,
		LastUsedAt:    now,
		ExpiresAt:     now.Add(f.opts.AbsoluteTTL),
		IdleExpiresAt: minTime(now.Add(f.opts.IdleTTL), now.Add(f.opts.AbsoluteTTL)),
	}
	rt := &store.RefreshToken{Hash: hash, SessionID: s.ID, Generation: 1, CreatedAt: now}
	if err := f.st.CreateSession(ctx, s, rt); err != nil {
		return nil, "", fmt.Errorf("token: start session: %w", err)
	}
	return s, tok, nil
}

// Refreshed is the outcome of a refresh.
type Refreshed struct {
	Session *store.Session
	Token   string // the refresh token the client must use next
	// Replayed is true when the presented token was the immediately previous one
	// inside the leeway and the existing successor was returned.
	Replayed bool
}

// Refresh rotates presented. On reuse outside the leeway it revokes the family
// and returns ErrReused with the session, so the caller can record the event.
func (f *Families) Refresh(ctx context.Context, presented string) (*Refreshed, error) {
	if !wellFormedRefresh(presented) {
		return nil, ErrInvalidGrant
	}
	hash := hashRefresh(presented)
	// A lost race (another request rotated the same token between our read and
	// our conditional update) is retried once: the second read sees the token
	// rotated moments ago and takes the leeway path, so 20 concurrent refreshes of
	// one token produce exactly one successor and no errors.
	for attempt := 0; ; attempt++ {
		res, err := f.refreshOnce(ctx, hash)
		if errors.Is(err, store.ErrConflict) && attempt < 3 {
			continue
		}
		return res, err
	}
}

func (f *Families) refreshOnce(ctx context.Context, hash []byte) (*Refreshed, error) {
	now := f.opts.Now().UTC()
	rt, sess, err := f.st.RefreshToken(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalidGrant
	}
	if err != nil {
		return nil, fmt.Errorf("token: refresh: %w", err)
	}
	if !sess.Active(now) {
		return nil, ErrInvalidGrant
	}
	if rt.RotatedAt != nil {
		return f.rotatedPresented(ctx, rt, sess, now)
	}
	if rt.Generation != sess.Generation {
		// Unrotated but not current cannot happen through this package; treat
		// it as tampering and kill the family.
		return f.reuse(ctx, sess, now)
	}
	tok, newHash, err := newRefresh()
	if err != nil {
		return nil, err
	}
	var sealed []byte
	if f.opts.Leeway > 0 {
		sealed, err = f.sealer.Seal("refresh_successor", []byte(tok), "refresh_tokens", "successor_sealed", base64.RawURLEncoding.EncodeToString(hash))
		if err != nil {
			return nil, fmt.Errorf("token: refresh: %w", err)
		}
	}
	next := store.RefreshToken{Hash: newHash, SessionID: sess.ID, Generation: rt.Generation + 1, CreatedAt: now}
	idle := minTime(now.Add(f.opts.IdleTTL), sess.ExpiresAt)
	err = f.st.RotateRefreshToken(ctx, store.Rotation{
		SessionID:       sess.ID,
		OldHash:         hash,
		OldGeneration:   rt.Generation,
		SuccessorSealed: sealed,
		New:             next,
		Now:             now,
		IdleExpiresAt:   idle,
	})
	if err != nil {
		return nil, fmt.Errorf("token: refresh: %w", err)
	}
	sess.Generation = next.Generation
	sess.LastUsedAt = now
	sess.IdleExpiresAt = idle
	return &Refreshed{Session: sess, Token: tok}, nil
}

// rotatedPresented handles a token that was already rotated.
//
// Why the leeway: a phone on a bad network often loses the response to a refresh,
// or fires two refreshes at once from two threads. Revoking the family then would
// sign real users out. So the immediately previous token, presented within the
// leeway of its rotation, gets the current successor (the same one, never a new
// sibling, so there is still exactly one live token). Anything older, or later,
// is treated as theft: the whole family is revoked (RFC 9700 §4.14.2).
func (f *Families) rotatedPresented(ctx context.Context, rt *store.RefreshToken, sess *store.Session, now time.Time) (*Refreshed, error) {
	inLeeway := f.opts.Leeway > 0 &&
		rt.Generation == sess.Generation-1 &&
		len(rt.SuccessorSealed) > 0 &&
		!now.After(rt.RotatedAt.Add(f.opts.Leeway))
	if !inLeeway {
		return f.reuse(ctx, sess, now)
	}
	succ, err := f.sealer.Open("refresh_successor", rt.SuccessorSealed, "refresh_tokens", "successor_sealed", base64.RawURLEncoding.EncodeToString(rt.Hash))
	if err != nil {
		return nil, fmt.Errorf("token: refresh: open successor: %w", err)
	}
	return &Refreshed{Session: sess, Token: string(succ), Replayed: true}, nil
}

func (f *Families) reuse(ctx context.Context, sess *store.Session, now time.Time) (*Refreshed, error) {
	if _, err := f.st.RevokeSession(ctx, sess.ID, "refresh_token_reused", now); err != nil {
		return nil, fmt.Errorf("token: revoke reused family: %w", err)
	}
	sess.RevokedAt = &now
	sess.RevokeReason = "refresh_token_reused"
	return &Refreshed{Session: sess}, ErrReused
}

// Lookup returns the session a refresh token belongs to, without rotating it
// (for RFC 7009 revocation). ErrInvalidGrant when unknown.
func (f *Families) Lookup(ctx context.Context, presented string) (*store.Session, error) {
	if !wellFormedRefresh(presented) {
		return nil, ErrInvalidGrant
	}
	_, sess, err := f.st.RefreshToken(ctx, hashRefresh(presented))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalidGrant
	}
	if err != nil {
		return nil, fmt.Errorf("token: lookup: %w", err)
	}
	return sess, nil
}

// refreshBytes is the entropy of a refresh token: 256 bits.
const refreshBytes = 32

func newRefresh() (string, []byte, error) {
	var b [refreshBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, fmt.Errorf("token: random: %w", err)
	}
	tok := RefreshPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return tok, hashRefresh(tok), nil
}

// hashRefresh is SHA-256: refresh tokens carry 256 random bits, so a fast hash is
// enough (no dictionary to attack) and lookups stay one index probe.
func hashRefresh(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

var refreshLen = len(RefreshPrefix) + base64.RawURLEncoding.EncodedLen(refreshBytes)

func wellFormedRefresh(s string) bool {
	return len(s) == refreshLen && strings.HasPrefix(s, RefreshPrefix)
}

// LooksLikeRefresh reports whether s has the shape of a Gatehouse refresh token.
func LooksLikeRefresh(s string) bool { return wellFormedRefresh(s) }

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// cut on a rune boundary
	for n > 0 && n < len(s) && s[n]>>6 == 2 {
		n--
	}
	return s[:n]
}

// Mask returns a loggable form of a token: its kind and length only.
func Mask(tok string) string {
	if tok == "" {
		return ""
	}
	return "[redacted " + strconv.Itoa(len(tok)) + " bytes]"
}
