package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/google/uuid"
)

// Errors returned by the service.
var (
	// ErrInvalidCredentials is the one answer to a wrong email or a wrong password:
	// the two must be indistinguishable.
	ErrInvalidCredentials = errors.New("invalid email or password")
	// ErrInvalidEmail: the address is not a plain email address.
	ErrInvalidEmail = errors.New("invalid email address")
	// ErrEmailTaken: sign-up with an address that already has an account.
	ErrEmailTaken = errors.New("email unavailable")
	// ErrLocked: the account was locked by an administrator.
	ErrLocked = errors.New("account locked")
	// ErrSignupDisabled: sign-up is turned off in the config.
	ErrSignupDisabled = errors.New("signup disabled")
	// ErrNotFound: no such user (administration only; sign-in never says this).
	ErrNotFound = errors.New("user not found")
)

// ThrottledError means too many failed sign-ins for the account or the client IP.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string { return "too many failed sign-in attempts" }

// UserStore is what accounts need from the store.
type UserStore interface {
	CreateUser(ctx context.Context, u *store.User) error
	UserByID(ctx context.Context, id string) (*store.User, error)
	UserByEmailIndex(ctx context.Context, idx []byte) (*store.User, error)
	ListUsers(ctx context.Context, afterID string, limit int) ([]store.User, error)
	SetPasswordHash(ctx context.Context, userID, hash string, now time.Time) error
	SetLocked(ctx context.Context, userID string, lockedAt *time.Time, now time.Time) error
	SetRolesPlan(ctx context.Context, userID string, roles []string, plan string, now time.Time) error
	RevokeUserSessions(ctx context.Context, userID, exceptID, reason string, at time.Time) ([]string, error)
}

// Throttle is a shared, atomic fixed-window counter.
type Throttle interface {
	Hit(ctx context.Context, key string, window time.Duration, now time.Time) (int64, time.Time, error)
	Forgive(ctx context.Context, key string, now time.Time) error
	ResetThrottle(ctx context.Context, key string) error
}

// Hasher hashes and verifies passwords.
type Hasher interface {
	Hash(ctx context.Context, password string) (string, error)
	Verify(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error)
	VerifyDummy(ctx context.Context, password string) error
}

// Policy judges new passwords.
type Policy interface {
	Check(password string, contextWords ...string) error
}

// Sealer seals email addresses and computes their blind index.
type Sealer interface {
	Seal(purpose string, plaintext []byte, aad ...string) ([]byte, error)
	Open(purpose string, sealed []byte, aad ...string) ([]byte, error)
	Index(purpose string, value []byte) []byte
}

// Recorder records audit events.
type Recorder interface {
	Record(ctx context.Context, e store.Event)
}

// RevocationPublisher tells the edge that sessions died (so gateways reject their
// access tokens at once); nil is allowed.
type RevocationPublisher interface {
	Revoke(ctx context.Context, sessionIDs []string, until time.Time)
}

// Options configure the service.
type Options struct {
	DefaultPlan    string
	DefaultRoles   []string
	SignupDisabled bool
	// AccountFailures / IPFailures failed sign-ins within Window lock the account /
	// the IP for the rest of the window. 0 → 5 / 50; Window 0 → 15m.
	AccountFailures int
	IPFailures      int
	Window          time.Duration
	// ProgressiveDelay slows each failed sign-in after the second by a growing
	// delay (250ms, 500ms, 1s, … at most 4s). 0 disables it (tests).
	ProgressiveDelay time.Duration
	// MaxAccessTTL is how long an access token may outlive its session's
	// revocation (for RevocationPublisher). 0 → 15m.
	MaxAccessTTL time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
	Revocations  RevocationPublisher
	// ServiceName is a context word passwords may not contain.
	ServiceName string
}

// Service runs accounts.
type Service struct {
	users    UserStore
	throttle Throttle
	hasher   Hasher
	policy   Policy
	sealer   Sealer
	audit    Recorder
	opts     Options
}

// New returns the account service.
func New(users UserStore, th Throttle, h Hasher, p Policy, s Sealer, rec Recorder, opts Options) *Service {
	if opts.AccountFailures <= 0 {
		opts.AccountFailures = 5
	}
	if opts.IPFailures <= 0 {
		opts.IPFailures = 50
	}
	if opts.Window <= 0 {
		opts.Window = 15 * time.Minute
	}
	if opts.MaxAccessTTL <= 0 {
		opts.MaxAccessTTL = 15 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ServiceName == "" {
		opts.ServiceName = "gatehouse"
	}
	return &Service{users: users, throttle: th, hasher: h, policy: p, sealer: s, audit: rec, opts: opts}
}

// Meta is where a request came from, for audit events and sessions.
type Meta struct {
	IP        string
	UserAgent string
	RequestID string
}

// NormalizeEmail returns the canonical form used for the blind index: a bare
// address, trimmed, lower-cased. It rejects display names, comments and anything
// over 254 bytes (RFC 5321's path limit).
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254 || !utf8.ValidString(s) {
		return "", ErrInvalidEmail
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", ErrInvalidEmail
	}
	local, domain, ok := strings.Cut(a.Address, "@")
	if !ok || local == "" || domain == "" || !strings.Contains(domain, ".") && domain != "localhost" {
		return "", ErrInvalidEmail
	}
	return strings.ToLower(a.Address), nil
}

// Signup creates an account with a password.
func (s *Service) Signup(ctx context.Context, email, password string, m Meta) (*store.User, error) {
	if s.opts.SignupDisabled {
		return nil, ErrSignupDisabled
	}
	return s.Create(ctx, email, password, nil, "", m)
}

// Create makes an account (sign-up and the CLI). roles nil and plan "" take the defaults.
func (s *Service) Create(ctx context.Context, email, password string, roles []string, plan string, m Meta) (*store.User, error) {
	norm, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	local, _, _ := strings.Cut(norm, "@")
	if err := s.policy.Check(password, local, s.opts.ServiceName); err != nil {
		return nil, err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return nil, fmt.Errorf("identity: signup: %w", err)
	}
	now := s.opts.Now().UTC()
	if roles == nil {
		roles = append([]string{}, s.opts.DefaultRoles...)
	}
	if plan == "" {
		plan = s.opts.DefaultPlan
	}
	u := &store.User{
		ID:           uuid.NewString(),
		EmailIndex:   s.emailIndex(norm),
		PasswordHash: hash,
		Roles:        roles,
		Plan:         plan,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	u.EmailSealed, err = s.sealer.Seal("email", []byte(norm), "users", "email", u.ID)
	if err != nil {
		return nil, fmt.Errorf("identity: signup: %w", err)
	}
	if err := s.users.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, ErrEmailTaken
		}
		return nil, fmt.Errorf("identity: signup: %w", err)
	}
	s.record(ctx, audit.UserCreated, u.ID, m, nil)
	return u, nil
}

// Email opens a user's sealed address.
func (s *Service) Email(u *store.User) (string, error) {
	b, err := s.sealer.Open("email", u.EmailSealed, "users", "email", u.ID)
	if err != nil {
		return "", fmt.Errorf("identity: open email: %w", err)
	}
	return string(b), nil
}

func (s *Service) emailIndex(norm string) []byte { return s.sealer.Index("email", []byte(norm)) }

// Login checks an email and password.
//
// Order matters: both throttle counters are incremented *before* the password is
// checked, in one atomic store operation each, so N parallel guesses can never
// get more than the configured number of password checks. Unknown accounts are
// throttled by the submitted address too and cost the same hashing work, so
// neither the answer nor its timing tells whether the account exists.
func (s *Service) Login(ctx context.Context, email, password string, m Meta) (*store.User, error) {
	norm, err := NormalizeEmail(email)
	if err != nil {
		// A malformed address cannot name an account; rejecting it fast reveals nothing.
		return nil, ErrInvalidCredentials
	}
	now := s.opts.Now().UTC()
	ipKey, acctKey := "login:ip:"+m.IP, "login:acct:"+string(hexIndex(s.emailIndex(norm)))
	if m.IP != "" {
		n, reset, err := s.throttle.Hit(ctx, ipKey, s.opts.Window, now)
		if err != nil {
			return nil, fmt.Errorf("identity: login: %w", err)
		}
		if n > int64(s.opts.IPFailures) {
			s.record(ctx, audit.LoginFailed, "", m, map[string]string{"reason": "ip_throttled"})
			return nil, &ThrottledError{RetryAfter: reset.Sub(now)}
		}
	}
	n, reset, err := s.throttle.Hit(ctx, acctKey, s.opts.Window, now)
	if err != nil {
		return nil, fmt.Errorf("identity: login: %w", err)
	}
	if n > int64(s.opts.AccountFailures) {
		u, _ := s.users.UserByEmailIndex(ctx, s.emailIndex(norm))
		uid := ""
		if u != nil {
			uid = u.ID
		}
		if n == int64(s.opts.AccountFailures)+1 {
			s.record(ctx, audit.AccountLocked, uid, m, map[string]string{"reason": "failed_logins", "until": reset.Format(time.RFC3339)})
		}
		s.record(ctx, audit.LoginFailed, uid, m, map[string]string{"reason": "account_throttled"})
		return nil, &ThrottledError{RetryAfter: reset.Sub(now)}
	}

	u, err := s.users.UserByEmailIndex(ctx, s.emailIndex(norm))
	if errors.Is(err, store.ErrNotFound) {
		if err := s.hasher.VerifyDummy(ctx, password); err != nil {
			return nil, fmt.Errorf("identity: login: %w", err)
		}
		s.record(ctx, audit.LoginFailed, "", m, map[string]string{"reason": "unknown_account"})
		s.delay(ctx, n)
		return nil, ErrInvalidCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("identity: login: %w", err)
	}
	if u.PasswordHash == "" {
		if err := s.hasher.VerifyDummy(ctx, password); err != nil {
			return nil, fmt.Errorf("identity: login: %w", err)
		}
		s.record(ctx, audit.LoginFailed, u.ID, m, map[string]string{"reason": "no_password"})
		s.delay(ctx, n)
		return nil, ErrInvalidCredentials
	}
	ok, rehash, err := s.hasher.Verify(ctx, password, u.PasswordHash)
	if err != nil {
		return nil, fmt.Errorf("identity: login: %w", err)
	}
	if !ok {
		s.record(ctx, audit.LoginFailed, u.ID, m, map[string]string{"reason": "wrong_password"})
		s.delay(ctx, n)
		return nil, ErrInvalidCredentials
	}
	// The password is right: the failures before it were the owner's typos.
	if err := s.throttle.ResetThrottle(ctx, acctKey); err != nil {
		s.opts.Logger.WarnContext(ctx, "reset login throttle", "error", err.Error())
	}
	if m.IP != "" {
		if err := s.throttle.Forgive(ctx, ipKey, now); err != nil {
			s.opts.Logger.WarnContext(ctx, "forgive ip throttle", "error", err.Error())
		}
	}
	if u.LockedAt != nil {
		// Only someone who knows the password learns that the account is locked.
		s.record(ctx, audit.LoginFailed, u.ID, m, map[string]string{"reason": "locked"})
		return nil, ErrLocked
	}
	if rehash {
		if h, err := s.hasher.Hash(ctx, password); err == nil {
			if err := s.users.SetPasswordHash(ctx, u.ID, h, now); err != nil {
				s.opts.Logger.WarnContext(ctx, "rehash password", "user_id", u.ID, "error", err.Error())
			}
		}
	}
	return u, nil
}

// delay slows a failed sign-in progressively: 250ms after the third failure in
// the window, doubling, at most 4s. It makes scripted guessing slow even below
// the lock threshold without hurting a person who mistyped once or twice.
func (s *Service) delay(ctx context.Context, failures int64) {
	if s.opts.ProgressiveDelay <= 0 || failures < 3 {
		return
	}
	d := s.opts.ProgressiveDelay << min(failures-3, 4)
	if d > 16*s.opts.ProgressiveDelay {
		d = 16 * s.opts.ProgressiveDelay
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// User returns a user by id.
func (s *Service) User(ctx context.Context, id string) (*store.User, error) {
	u, err := s.users.UserByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("identity: user: %w", err)
	}
	return u, nil
}

// UserByEmail finds a user by address (administration).
func (s *Service) UserByEmail(ctx context.Context, email string) (*store.User, error) {
	norm, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	u, err := s.users.UserByEmailIndex(ctx, s.emailIndex(norm))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("identity: user by email: %w", err)
	}
	return u, nil
}

// List pages through users by id.
func (s *Service) List(ctx context.Context, afterID string, limit int) ([]store.User, error) {
	l, err := s.users.ListUsers(ctx, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("identity: list users: %w", err)
	}
	return l, nil
}

// Lock locks an account and signs it out everywhere.
func (s *Service) Lock(ctx context.Context, userID string, m Meta) error {
	now := s.opts.Now().UTC()
	if err := s.users.SetLocked(ctx, userID, &now, now); err != nil {
		return s.adminErr("lock", err)
	}
	s.record(ctx, audit.AccountLocked, userID, m, map[string]string{"reason": "admin"})
	_, err := s.RevokeSessions(ctx, userID, "", "account_locked", m)
	return err
}

// Unlock unlocks an account.
func (s *Service) Unlock(ctx context.Context, userID string, m Meta) error {
	now := s.opts.Now().UTC()
	if err := s.users.SetLocked(ctx, userID, nil, now); err != nil {
		return s.adminErr("unlock", err)
	}
	s.record(ctx, audit.AccountUnlocked, userID, m, nil)
	return nil
}

// Grant sets a user's roles and plan; nil roles or "" plan keep the current value.
// The user's sessions are revoked so no token keeps the old roles.
func (s *Service) Grant(ctx context.Context, userID string, roles []string, plan string, m Meta) error {
	u, err := s.users.UserByID(ctx, userID)
	if err != nil {
		return s.adminErr("grant", err)
	}
	if roles == nil {
		roles = u.Roles
	}
	if plan == "" {
		plan = u.Plan
	}
	now := s.opts.Now().UTC()
	if err := s.users.SetRolesPlan(ctx, userID, roles, plan, now); err != nil {
		return s.adminErr("grant", err)
	}
	s.record(ctx, audit.RolesChanged, userID, m, map[string]string{"roles": strings.Join(roles, ","), "plan": plan})
	_, err = s.RevokeSessions(ctx, userID, "", "roles_changed", m)
	return err
}

// RevokeSessions signs a user out of every session but exceptID.
func (s *Service) RevokeSessions(ctx context.Context, userID, exceptID, reason string, m Meta) ([]string, error) {
	now := s.opts.Now().UTC()
	ids, err := s.users.RevokeUserSessions(ctx, userID, exceptID, reason, now)
	if err != nil {
		return nil, s.adminErr("revoke sessions", err)
	}
	for _, id := range ids {
		s.audit.Record(ctx, store.Event{Type: audit.SessionRevoked, UserID: userID, SessionID: id, IP: m.IP, RequestID: m.RequestID, Detail: map[string]string{"reason": reason}})
	}
	if s.opts.Revocations != nil && len(ids) > 0 {
		s.opts.Revocations.Revoke(ctx, ids, now.Add(s.opts.MaxAccessTTL))
	}
	return ids, nil
}

func (s *Service) adminErr(op string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	return fmt.Errorf("identity: %s: %w", op, err)
}

func (s *Service) record(ctx context.Context, typ, userID string, m Meta, detail map[string]string) {
	s.audit.Record(ctx, store.Event{Type: typ, UserID: userID, IP: m.IP, RequestID: m.RequestID, Detail: detail})
}

func hexIndex(b []byte) []byte {
	const hx = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, hx[c>>4], hx[c&15])
	}
	return out
}
