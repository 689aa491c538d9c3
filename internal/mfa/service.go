package mfa

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/envelope"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Errors returned by the service.
var (
	// ErrAlreadyEnrolled: TOTP is active already; disable it first.
	ErrAlreadyEnrolled = errors.New("totp is already enabled")
	// ErrNoEnrolment: confirm without a pending (unexpired) enrolment.
	ErrNoEnrolment = errors.New("no totp enrolment is pending")
	// ErrNotEnrolled: TOTP is not active.
	ErrNotEnrolled = errors.New("totp is not enabled")
	// ErrInvalidCode is the one answer to a wrong, replayed or expired TOTP
	// code, an unknown or used recovery code and a failed passkey assertion:
	// which of them it was is only in the audit event.
	ErrInvalidCode = errors.New("invalid second factor")
	// ErrInvalidToken: the mfa_token is unknown, expired, used or out of attempts.
	ErrInvalidToken = errors.New("invalid mfa_token")
	// ErrProof: a proof must carry exactly one factor.
	ErrProof = errors.New("exactly one second factor must be given")
)

// SecretTOTPPending is the user-secret kind of an enrolment not confirmed
// yet. It is kept apart from store.SecretTOTP so an unconfirmed secret never
// counts as a second factor.
const SecretTOTPPending = "totp_pending"

// Secrets keeps sealed per-user secrets and the TOTP step counter.
type Secrets interface {
	PutUserSecret(ctx context.Context, s *store.UserSecret) error
	UserSecret(ctx context.Context, userID, kind string) (*store.UserSecret, error)
	DeleteUserSecret(ctx context.Context, userID, kind string) error
	AdvanceSecretCounter(ctx context.Context, userID, kind string, counter int64, now time.Time) (bool, error)
}

// RecoveryCodes keeps hashed recovery codes.
type RecoveryCodes interface {
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error
	UseRecoveryCode(ctx context.Context, userID string, hash []byte, now time.Time) (bool, error)
	CountRecoveryCodes(ctx context.Context, userID string) (int, error)
	DeleteRecoveryCodes(ctx context.Context, userID string) error
}

// Codes keeps one-time codes (the mfa_token) with atomic attempt counting.
type Codes interface {
	CreateCode(ctx context.Context, c *store.Code) error
	AttemptCode(ctx context.Context, kind, id string, now time.Time) (*store.Code, error)
	UseCode(ctx context.Context, kind, id string, now time.Time) (*store.Code, error)
}

// Store is everything the service keeps; *store.DB is one.
type Store interface {
	Secrets
	RecoveryCodes
	Codes
}

// Passkeys tells whether a user has passkeys (which count as a second factor).
type Passkeys interface {
	ListWebAuthnCredentials(ctx context.Context, userID string) ([]store.WebAuthnCredential, error)
}

// Sealer seals TOTP secrets (envelope.Keyring).
type Sealer interface {
	Seal(purpose string, plaintext []byte, aad ...string) ([]byte, error)
	Open(purpose string, sealed []byte, aad ...string) ([]byte, error)
}

// Throttle is a shared, atomic fixed-window failure counter (*store.DB).
type Throttle interface {
	Hit(ctx context.Context, key string, window time.Duration, now time.Time) (int64, time.Time, error)
	ResetThrottle(ctx context.Context, key string) error
}

// Recorder records audit events.
type Recorder interface {
	Record(ctx context.Context, e store.Event)
}

// Options configure the service. Zero values take the defaults named.
type Options struct {
	// Issuer names the service in authenticator apps (otpauth issuer). "" → "Gatehouse".
	Issuer string
	// TokenTTL is an mfa_token's lifetime. 0 → 5m.
	TokenTTL time.Duration
	// MaxAttempts is how many second factors one mfa_token may try. 0 → 5.
	MaxAttempts int
	// UserFailures failed second factors per user within Window refuse every
	// further one (429) until the window ends. 0 → 10; Window 0 → 15m.
	UserFailures int
	Window       time.Duration
	// EnrolmentTTL is how long an unconfirmed enrolment can be confirmed. 0 → 15m.
	EnrolmentTTL time.Duration
	// Skew is how many time steps either side of now a TOTP code may be from. 0 → 1.
	Skew int
	// Passkeys, optional, lets Methods report "webauthn". nil → never.
	Passkeys Passkeys
	// Rand is the randomness source. nil → crypto/rand.
	Rand   io.Reader
	Now    func() time.Time
	Logger *slog.Logger
}

// Service runs TOTP, recovery codes and the second step of sign-in.
type Service struct {
	st     Store
	th     Throttle
	sealer Sealer
	audit  Recorder
	opts   Options
}

// New returns the service.
func New(st Store, th Throttle, sealer Sealer, rec Recorder, opts Options) *Service {
	if opts.Issuer == "" {
		opts.Issuer = "Gatehouse"
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = 5 * time.Minute
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.UserFailures <= 0 {
		opts.UserFailures = 10
	}
	if opts.Window <= 0 {
		opts.Window = 15 * time.Minute
	}
	if opts.EnrolmentTTL <= 0 {
		opts.EnrolmentTTL = 15 * time.Minute
	}
	if opts.Skew <= 0 {
		opts.Skew = 1
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{st: st, th: th, sealer: sealer, audit: rec, opts: opts}
}

// Enrolment is a new TOTP secret, shown once so the user can add it to an
// authenticator app.
type Enrolment struct {
	Secret string // base32, for typing in
	URI    string // otpauth://totp/…, for a QR code or a deep link
}

// LogValue keeps the secret out of logs.
func (e Enrolment) LogValue() slog.Value { return slog.StringValue("mfa.Enrolment(REDACTED)") }

// Status is what a user has enrolled.
type Status struct {
	TOTP          bool     // TOTP is active
	TOTPPending   bool     // an enrolment awaits confirmation
	RecoveryCodes int      // unused recovery codes
	Passkeys      int      // registered passkeys
	Methods       []string // as Methods
}

// Proof is the second factor presented: exactly one of its fields.
type Proof struct {
	Code         string // a TOTP code
	RecoveryCode string
	// External checks a factor this package does not own (a passkey
	// assertion) for the user and returns the amr values it proves. Any
	// error is a failed factor.
	External func(ctx context.Context, userID string) ([]string, error)
}

func (p Proof) count() int {
	n := 0
	for _, set := range []bool{p.Code != "", p.RecoveryCode != "", p.External != nil} {
		if set {
			n++
		}
	}
	return n
}

// Redeemed is a completed second step: whose it is and the factors it proved
// (RFC 8176 amr values).
type Redeemed struct {
	UserID string
	AMR    []string
}

func (s *Service) now() time.Time { return s.opts.Now().UTC() }

func (s *Service) aad(userID, kind string) []string {
	return []string{"user_secrets", "sealed", store.UserSecretID(userID, kind)}
}

func (s *Service) record(ctx context.Context, typ, userID string, m identity.Meta, detail map[string]string) {
	s.audit.Record(ctx, store.Event{Type: typ, UserID: userID, IP: m.IP, RequestID: m.RequestID, Detail: detail})
}

// Methods returns the second factors the user can use: "otp" and
// "recovery_code" when TOTP is active (the latter while codes remain), and
// "webauthn" when the user has passkeys.
func (s *Service) Methods(ctx context.Context, userID string) ([]string, error) {
	st, err := s.Status(ctx, userID)
	if err != nil {
		return nil, err
	}
	return st.Methods, nil
}

// Status reports what the user has enrolled.
func (s *Service) Status(ctx context.Context, userID string) (Status, error) {
	var st Status
	if _, err := s.st.UserSecret(ctx, userID, store.SecretTOTP); err == nil {
		st.TOTP = true
	} else if !errors.Is(err, store.ErrNotFound) {
		return st, fmt.Errorf("mfa: status: %w", err)
	}
	if p, err := s.st.UserSecret(ctx, userID, SecretTOTPPending); err == nil {
		st.TOTPPending = s.now().Before(p.UpdatedAt.Add(s.opts.EnrolmentTTL))
	} else if !errors.Is(err, store.ErrNotFound) {
		return st, fmt.Errorf("mfa: status: %w", err)
	}
	if st.TOTP {
		n, err := s.st.CountRecoveryCodes(ctx, userID)
		if err != nil {
			return st, fmt.Errorf("mfa: status: %w", err)
		}
		st.RecoveryCodes = n
		st.Methods = append(st.Methods, "otp")
		if n > 0 {
			st.Methods = append(st.Methods, "recovery_code")
		}
	}
	if s.opts.Passkeys != nil {
		l, err := s.opts.Passkeys.ListWebAuthnCredentials(ctx, userID)
		if err != nil {
			return st, fmt.Errorf("mfa: status: %w", err)
		}
		st.Passkeys = len(l)
		if len(l) > 0 {
			st.Methods = append(st.Methods, "webauthn")
		}
	}
	return st, nil
}

// EnrolTOTP starts a TOTP enrolment: a new secret, sealed and kept pending
// until ConfirmTOTP. A second call replaces a pending secret. account labels
// the entry in the authenticator app (the user's email address).
func (s *Service) EnrolTOTP(ctx context.Context, userID, account string, m identity.Meta) (*Enrolment, error) {
	if _, err := s.st.UserSecret(ctx, userID, store.SecretTOTP); err == nil {
		return nil, ErrAlreadyEnrolled
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("mfa: enrol: %w", err)
	}
	secret := make([]byte, SecretSize)
	if _, err := io.ReadFull(s.opts.Rand, secret); err != nil {
		return nil, fmt.Errorf("mfa: enrol: %w", err)
	}
	if account == "" {
		account = userID
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: s.opts.Issuer, AccountName: account, Secret: secret,
		Period: uint(AppParams.Period / time.Second), Digits: AppParams.Digits, Algorithm: AppParams.Algorithm,
	})
	if err != nil {
		return nil, fmt.Errorf("mfa: enrol: %w", err)
	}
	sealed, err := s.sealer.Seal(envelope.PurposeTOTP, secret, s.aad(userID, SecretTOTPPending)...)
	if err != nil {
		return nil, fmt.Errorf("mfa: enrol: %w", err)
	}
	now := s.now()
	if err := s.st.PutUserSecret(ctx, &store.UserSecret{UserID: userID, Kind: SecretTOTPPending, Purpose: envelope.PurposeTOTP,
		Sealed: sealed, CreatedAt: now, UpdatedAt: now}); err != nil {
		return nil, fmt.Errorf("mfa: enrol: %w", err)
	}
	s.record(ctx, audit.MFAEnrolled, userID, m, map[string]string{"method": "otp"})
	return &Enrolment{Secret: key.Secret(), URI: key.URL()}, nil
}

// ConfirmTOTP activates a pending enrolment with a code from the app and
// returns the new recovery codes (shown once; only their hashes are kept).
func (s *Service) ConfirmTOTP(ctx context.Context, userID, code string, m identity.Meta) ([]string, error) {
	p, err := s.st.UserSecret(ctx, userID, SecretTOTPPending)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoEnrolment
	}
	if err != nil {
		return nil, fmt.Errorf("mfa: confirm: %w", err)
	}
	now := s.now()
	if !now.Before(p.UpdatedAt.Add(s.opts.EnrolmentTTL)) {
		return nil, ErrNoEnrolment
	}
	if _, err := s.st.UserSecret(ctx, userID, store.SecretTOTP); err == nil {
		return nil, ErrAlreadyEnrolled
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("mfa: confirm: %w", err)
	}
	if err := s.hit(ctx, userID, "otp", "confirm", m); err != nil {
		return nil, err
	}
	secret, err := s.sealer.Open(envelope.PurposeTOTP, p.Sealed, s.aad(userID, SecretTOTPPending)...)
	if err != nil {
		return nil, fmt.Errorf("mfa: confirm: %w", err)
	}
	step, ok, err := Match(secret, code, now, s.opts.Skew, AppParams)
	if err != nil {
		return nil, fmt.Errorf("mfa: confirm: %w", err)
	}
	if !ok {
		return nil, s.fail(ctx, userID, "otp", "confirm", "wrong_code", m)
	}
	// Deleting the pending secret is the one atomic step: of two confirms
	// racing, exactly one gets past it.
	if err := s.st.DeleteUserSecret(ctx, userID, SecretTOTPPending); errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoEnrolment
	} else if err != nil {
		return nil, fmt.Errorf("mfa: confirm: %w", err)
	}
	sealed, err := s.sealer.Seal(envelope.PurposeTOTP, secret, s.aad(userID, store.SecretTOTP)...)
	if err != nil {
		return nil, fmt.Errorf("mfa: confirm: %w", err)
	}
	// Counter = the confirming code's step: that code cannot sign anyone in.
	if err := s.st.PutUserSecret(ctx, &store.UserSecret{UserID: userID, Kind: store.SecretTOTP, Purpose: envelope.PurposeTOTP,
		Sealed: sealed, Counter: step, CreatedAt: now, UpdatedAt: now}); err != nil {
		return nil, fmt.Errorf("mfa: confirm: %w", err)
	}
	codes, err := s.replaceRecoveryCodes(ctx, userID, now)
	if err != nil {
		return nil, fmt.Errorf("mfa: confirm: %w", err)
	}
	s.succeeded(ctx, userID)
	s.record(ctx, audit.MFAConfirmed, userID, m, map[string]string{"method": "otp", "recovery_codes": strconv.Itoa(len(codes))})
	return codes, nil
}

// DisableTOTP turns TOTP off after a fresh second factor (a TOTP or recovery
// code): the secret, any pending enrolment and the recovery codes go.
func (s *Service) DisableTOTP(ctx context.Context, userID string, p Proof, m identity.Meta) error {
	if p.count() != 1 || p.External != nil {
		return ErrProof
	}
	if err := s.requireTOTP(ctx, userID); err != nil {
		return err
	}
	if _, err := s.check(ctx, userID, p, "disable", m); err != nil {
		return err
	}
	if err := s.st.DeleteUserSecret(ctx, userID, store.SecretTOTP); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("mfa: disable: %w", err)
	}
	if err := s.st.DeleteUserSecret(ctx, userID, SecretTOTPPending); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("mfa: disable: %w", err)
	}
	if err := s.st.DeleteRecoveryCodes(ctx, userID); err != nil {
		return fmt.Errorf("mfa: disable: %w", err)
	}
	s.record(ctx, audit.MFADisabled, userID, m, map[string]string{"method": "otp"})
	return nil
}

// RegenerateRecoveryCodes replaces every recovery code after a fresh TOTP code.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, userID, code string, m identity.Meta) ([]string, error) {
	if code == "" {
		return nil, ErrProof
	}
	if err := s.requireTOTP(ctx, userID); err != nil {
		return nil, err
	}
	if _, err := s.check(ctx, userID, Proof{Code: code}, "regenerate", m); err != nil {
		return nil, err
	}
	codes, err := s.replaceRecoveryCodes(ctx, userID, s.now())
	if err != nil {
		return nil, fmt.Errorf("mfa: regenerate recovery codes: %w", err)
	}
	s.record(ctx, audit.RecoveryCodesRegenerated, userID, m, map[string]string{"recovery_codes": strconv.Itoa(len(codes))})
	return codes, nil
}

func (s *Service) requireTOTP(ctx context.Context, userID string) error {
	_, err := s.st.UserSecret(ctx, userID, store.SecretTOTP)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotEnrolled
	}
	if err != nil {
		return fmt.Errorf("mfa: %w", err)
	}
	return nil
}

func (s *Service) replaceRecoveryCodes(ctx context.Context, userID string, now time.Time) ([]string, error) {
	codes, err := newRecoveryCodes(s.opts.Rand, RecoveryCodeCount)
	if err != nil {
		return nil, err
	}
	hashes := make([][]byte, len(codes))
	for i, c := range codes {
		canon, err := NormalizeRecoveryCode(c)
		if err != nil {
			return nil, err
		}
		hashes[i] = hashRecoveryCode(userID, canon)
	}
	if err := s.st.ReplaceRecoveryCodes(ctx, userID, hashes, now); err != nil {
		return nil, err
	}
	return codes, nil
}

// tokenBytes is an mfa_token's entropy.
const tokenBytes = 32

// tokenID is what the store keeps of an mfa_token: its SHA-256.
func tokenID(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// Challenge issues an mfa_token for a user who passed the factors in amr.
func (s *Service) Challenge(ctx context.Context, userID string, amr []string, m identity.Meta) (string, time.Duration, error) {
	b := make([]byte, tokenBytes)
	if _, err := io.ReadFull(s.opts.Rand, b); err != nil {
		return "", 0, fmt.Errorf("mfa: challenge: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	data, err := json.Marshal(amr)
	if err != nil {
		return "", 0, fmt.Errorf("mfa: challenge: %w", err)
	}
	now := s.now()
	if err := s.st.CreateCode(ctx, &store.Code{ID: tokenID(tok), Kind: store.CodeMFA, UserID: userID, Data: data,
		MaxAttempts: s.opts.MaxAttempts, CreatedAt: now, ExpiresAt: now.Add(s.opts.TokenTTL)}); err != nil {
		return "", 0, fmt.Errorf("mfa: challenge: %w", err)
	}
	return tok, s.opts.TokenTTL, nil
}

// Redeem completes the second step of sign-in: it counts an attempt against
// the mfa_token, checks the factor and, if it holds, uses the token up. The
// amr returned is the first factors' plus the second's, and "mfa".
func (s *Service) Redeem(ctx context.Context, mfaToken string, p Proof, m identity.Meta) (*Redeemed, error) {
	if p.count() != 1 {
		return nil, ErrProof
	}
	if b, err := base64.RawURLEncoding.DecodeString(mfaToken); err != nil || len(b) != tokenBytes {
		return nil, ErrInvalidToken
	}
	id := tokenID(mfaToken)
	// The attempt is counted before the factor is checked, in one conditional
	// update: N parallel guesses on one token get at most MaxAttempts checks.
	c, err := s.st.AttemptCode(ctx, store.CodeMFA, id, s.now())
	if errors.Is(err, store.ErrNotFound) {
		s.record(ctx, audit.MFAFailed, "", m, map[string]string{"reason": "invalid_mfa_token", "during": "sign_in"})
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, fmt.Errorf("mfa: redeem: %w", err)
	}
	var amr []string
	if err := json.Unmarshal(c.Data, &amr); err != nil {
		return nil, fmt.Errorf("mfa: redeem: %w", err)
	}
	proved, err := s.check(ctx, c.UserID, p, "sign_in", m)
	if err != nil {
		return nil, err
	}
	if _, err := s.st.UseCode(ctx, store.CodeMFA, id, s.now()); errors.Is(err, store.ErrNotFound) {
		// A parallel request with the same token won, or it expired meanwhile.
		return nil, ErrInvalidToken
	} else if err != nil {
		return nil, fmt.Errorf("mfa: redeem: %w", err)
	}
	for _, a := range append(proved, "mfa") {
		if !slices.Contains(amr, a) {
			amr = append(amr, a)
		}
	}
	return &Redeemed{UserID: c.UserID, AMR: amr}, nil
}

// VerifyCode checks one code typed into a field that takes either kind (the
// dashboard's sign-in form): six digits are a TOTP code, anything else a
// recovery code. It returns the amr values the code adds ("otp" and "mfa", or
// "mfa"), and counts against the user's failure throttle like every check.
func (s *Service) VerifyCode(ctx context.Context, userID, code string, m identity.Meta) ([]string, error) {
	code = strings.TrimSpace(code)
	if code == "" {
		return nil, ErrProof
	}
	p := Proof{RecoveryCode: code}
	if len(code) == AppParams.Digits.Length() && digits(code) {
		p = Proof{Code: code}
	}
	proved, err := s.check(ctx, userID, p, "verify", m)
	if err != nil {
		return nil, err
	}
	return append(proved, "mfa"), nil
}

// hit counts a second-factor attempt against the user. Why per user and not
// per mfa_token alone: anyone with the password can fetch new mfa_tokens, and
// 5 guesses per token would otherwise be unlimited guesses at a 6-digit code.
func (s *Service) hit(ctx context.Context, userID, method, during string, m identity.Meta) error {
	now := s.now()
	n, reset, err := s.th.Hit(ctx, "mfa:user:"+userID, s.opts.Window, now)
	if err != nil {
		return fmt.Errorf("mfa: throttle: %w", err)
	}
	if n > int64(s.opts.UserFailures) {
		s.record(ctx, audit.MFAFailed, userID, m, map[string]string{"method": method, "during": during, "reason": "throttled"})
		return &identity.ThrottledError{RetryAfter: max(reset.Sub(now), time.Second)}
	}
	return nil
}

// succeeded forgives the user's earlier failures: they were the owner's typos.
func (s *Service) succeeded(ctx context.Context, userID string) {
	if err := s.th.ResetThrottle(ctx, "mfa:user:"+userID); err != nil {
		s.opts.Logger.WarnContext(ctx, "reset mfa throttle", "user_id", userID, "error", err.Error())
	}
}

func (s *Service) fail(ctx context.Context, userID, method, during, reason string, m identity.Meta) error {
	s.record(ctx, audit.MFAFailed, userID, m, map[string]string{"method": method, "during": during, "reason": reason})
	return ErrInvalidCode
}

// check verifies one second factor of the user's and returns the amr values
// it proves. It counts the attempt against the user first.
func (s *Service) check(ctx context.Context, userID string, p Proof, during string, m identity.Meta) ([]string, error) {
	method := "otp"
	switch {
	case p.RecoveryCode != "":
		method = "recovery_code"
	case p.External != nil:
		method = "webauthn"
	}
	if err := s.hit(ctx, userID, method, during, m); err != nil {
		return nil, err
	}
	var proved []string
	now := s.now()
	switch method {
	case "otp":
		sec, err := s.st.UserSecret(ctx, userID, store.SecretTOTP)
		if errors.Is(err, store.ErrNotFound) {
			return nil, s.fail(ctx, userID, method, during, "not_enrolled", m)
		}
		if err != nil {
			return nil, fmt.Errorf("mfa: check: %w", err)
		}
		secret, err := s.sealer.Open(envelope.PurposeTOTP, sec.Sealed, s.aad(userID, store.SecretTOTP)...)
		if err != nil {
			return nil, fmt.Errorf("mfa: check: %w", err)
		}
		step, ok, err := Match(secret, p.Code, now, s.opts.Skew, AppParams)
		if err != nil {
			return nil, fmt.Errorf("mfa: check: %w", err)
		}
		if !ok {
			return nil, s.fail(ctx, userID, method, during, "wrong_code", m)
		}
		// Why: a code seen once (shoulder-surfed, phished, logged by a proxy)
		// must not work again, nor any code of an earlier step. One conditional
		// update, so two requests with the same code cannot both pass.
		advanced, err := s.st.AdvanceSecretCounter(ctx, userID, store.SecretTOTP, step, now)
		if errors.Is(err, store.ErrNotFound) {
			return nil, s.fail(ctx, userID, method, during, "not_enrolled", m)
		}
		if err != nil {
			return nil, fmt.Errorf("mfa: check: %w", err)
		}
		if !advanced {
			return nil, s.fail(ctx, userID, method, during, "replayed", m)
		}
		proved = []string{"otp"}
	case "recovery_code":
		canon, err := NormalizeRecoveryCode(p.RecoveryCode)
		if err != nil {
			return nil, s.fail(ctx, userID, method, during, "malformed", m)
		}
		ok, err := s.st.UseRecoveryCode(ctx, userID, hashRecoveryCode(userID, canon), now)
		if err != nil {
			return nil, fmt.Errorf("mfa: check: %w", err)
		}
		if !ok {
			return nil, s.fail(ctx, userID, method, during, "wrong_code", m)
		}
		left, err := s.st.CountRecoveryCodes(ctx, userID)
		if err != nil {
			s.opts.Logger.WarnContext(ctx, "count recovery codes", "user_id", userID, "error", err.Error())
		}
		s.record(ctx, audit.RecoveryCodeUsed, userID, m, map[string]string{"during": during, "remaining": strconv.Itoa(left)})
	case "webauthn":
		a, err := p.External(ctx, userID)
		if err != nil {
			s.opts.Logger.InfoContext(ctx, "passkey assertion refused", "user_id", userID, "request_id", m.RequestID, "error", err.Error())
			return nil, s.fail(ctx, userID, method, during, "assertion_refused", m)
		}
		proved = a
	}
	s.succeeded(ctx, userID)
	s.record(ctx, audit.MFASucceeded, userID, m, map[string]string{"method": method, "during": during})
	return proved, nil
}
