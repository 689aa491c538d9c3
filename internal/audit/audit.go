package audit

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/google/uuid"
)

// Event types. The set is closed: detectors and dashboards match on these names.
const (
	UserCreated        = "user_created"
	LoginSucceeded     = "login_succeeded"
	LoginFailed        = "login_failed"
	AccountLocked      = "account_locked"
	AccountUnlocked    = "account_unlocked"
	TokenRefreshed     = "token_refreshed"
	RefreshTokenReused = "refresh_token_reused"
	SessionRevoked     = "session_revoked"
	KeyRotated         = "key_rotated"
	RolesChanged       = "roles_changed"
	// Social login (internal/social). Details name the provider and, on
	// failure, a reason; never a code, token, state or email address.
	SocialLoginSucceeded = "social_login_succeeded" // the provider vouched; a Gatehouse code went to the app
	SocialLoginFailed    = "social_login_failed"    // detail reason: provider_error, exchange_failed, id_token_invalid, unverified_email_conflict, ...
	SocialIdentityLinked = "social_identity_linked" // a provider account joined an existing account (verified email)
	SocialAccountCreated = "social_account_created" // a first sign-in through a provider created an account
	// Passkeys (internal/passkey). Details carry credential ids (public
	// values) and reasons, never a challenge or an assertion.
	PasskeyRegistered       = "passkey_registered"
	PasskeyRemoved          = "passkey_removed"
	PasskeySignInSucceeded  = "passkey_signin_succeeded"
	PasskeySignInFailed     = "passkey_signin_failed"
	PasskeyCounterRegressed = "passkey_counter_regressed" // a sign counter did not grow: possibly a cloned authenticator
	// Second factors (internal/mfa). Details name the method, the step
	// ("during") and a reason; never a code, secret or mfa_token.
	MFAEnrolled              = "mfa_enrolled"  // a TOTP enrolment started (secret issued, not active yet)
	MFAConfirmed             = "mfa_confirmed" // TOTP activated, recovery codes issued
	MFADisabled              = "mfa_disabled"
	RecoveryCodesRegenerated = "recovery_codes_regenerated"
	RecoveryCodeUsed         = "recovery_code_used"
	MFAFailed                = "mfa_failed" // wrong, replayed or expired factor, bad mfa_token, throttled
	MFASucceeded             = "mfa_succeeded"
	// Request and response protection (internal/protect through the gateway).
	RequestBlocked  = "request_blocked"  // schema, mass assignment, JSON limits or WAF refused a request
	RequestFlagged  = "request_flagged"  // a report-only check matched
	ResponseChanged = "response_changed" // undeclared properties filtered or secrets redacted
	ResponseBlocked = "response_blocked" // a response withheld (block mode)

	// Encryption at rest and the transit API. Transit events never carry a
	// plaintext or a context: only the key, version(s), service and counts.
	DataKeysRotated      = "data_keys_rotated"
	KEKRotated           = "kek_rotated"
	TransitKeyCreated    = "transit_key_created"
	TransitKeyRotated    = "transit_key_rotated"
	TransitKeyConfigured = "transit_key_configured"
	TransitEncrypt       = "transit_encrypt"
	TransitDecrypt       = "transit_decrypt"
	TransitRewrap        = "transit_rewrap"
	ServiceAuthFailed    = "service_auth_failed"

	// Monitoring: gateway decisions worth keeping (aggregated before they
	// are stored), detector firings, bans and alerts.
	RequestDenied = "request_denied" // policy deny, invalid token, not found on an object route
	RateLimited   = "rate_limited"
	WAFBlocked    = "waf_blocked"
	RequestBanned = "request_banned" // refused because of a ban
	DetectorFired = "detector_fired"
	BanCreated    = "ban_created"
	BanLifted     = "ban_lifted"
	AlertRaised   = "alert_raised"

	// Email verification and password reset. Details carry a reason and how
	// the proof came ("link" or "code"), never an address, link or code.
	EmailVerificationSent   = "email_verification_sent"
	EmailVerified           = "email_verified"
	EmailVerificationFailed = "email_verification_failed"
	PasswordResetRequested  = "password_reset_requested"
	PasswordResetCompleted  = "password_reset_completed"
	PasswordResetFailed     = "password_reset_failed"
)

// Sink keeps events; *store.DB is one.
type Sink interface {
	InsertEvent(ctx context.Context, e *store.Event) error
}

// Options configure a Recorder. Zero values are usable.
type Options struct {
	// Logger receives one JSON line per event when Log is true. nil: events are not logged.
	Logger *slog.Logger
	// Sink stores events. nil: events are not stored.
	Sink Sink
	// Now is the clock. nil: time.Now.
	Now func() time.Time
	// Publish, optional, also hands every event to the monitor's bus (after
	// it is logged and stored). It must not block. nil: not published.
	Publish func(e store.Event)
}

// Recorder writes events to the log and the store.
type Recorder struct {
	logger     *slog.Logger
	sink       Sink
	now        func() time.Time
	publish    func(e store.Event)
	sinkErrors atomic.Int64
}

// New returns a Recorder.
func New(opts Options) *Recorder {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Recorder{logger: opts.Logger, sink: opts.Sink, now: opts.Now, publish: opts.Publish}
}

// Record fills in the event's id and time and writes it. It never fails the caller:
// losing an audit row must not turn a login into an error, but it is logged and counted.
func (r *Recorder) Record(ctx context.Context, e store.Event) {
	if r == nil {
		return
	}
	if e.ID == "" {
		e.ID = uuid.NewString()
	}
	if e.Time.IsZero() {
		e.Time = r.now().UTC()
	}
	if r.logger != nil {
		attrs := []slog.Attr{
			slog.String("event", e.Type),
			slog.String("event_id", e.ID),
		}
		for _, kv := range [][2]string{{"user_id", e.UserID}, {"session_id", e.SessionID}, {"ip", e.IP}, {"request_id", e.RequestID}} {
			if kv[1] != "" {
				attrs = append(attrs, slog.String(kv[0], kv[1]))
			}
		}
		if len(e.Detail) > 0 {
			d := make([]any, 0, len(e.Detail))
			for k, v := range e.Detail {
				d = append(d, slog.String(k, v))
			}
			attrs = append(attrs, slog.Group("detail", d...))
		}
		r.logger.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
	}
	if r.sink != nil {
		// Detach from the request's cancellation: a client hanging up must not
		// erase the record of what it did.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := r.sink.InsertEvent(sctx, &e); err != nil {
			r.sinkErrors.Add(1)
			if r.logger != nil {
				r.logger.LogAttrs(ctx, slog.LevelError, "audit event not stored", slog.String("event_id", e.ID), slog.String("error", err.Error()))
			}
		}
	}
	if r.publish != nil {
		r.publish(e)
	}
}

// SinkErrors is the number of events that could not be stored.
func (r *Recorder) SinkErrors() int64 { return r.sinkErrors.Load() }
