package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/mfa"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// Accounts is the account service.
type Accounts interface {
	Signup(ctx context.Context, email, password string, m identity.Meta) (*store.User, error)
	Login(ctx context.Context, email, password string, m identity.Meta) (*store.User, error)
	User(ctx context.Context, id string) (*store.User, error)
	Email(u *store.User) (string, error)
	RevokeSessions(ctx context.Context, userID, exceptID, reason string, m identity.Meta) ([]string, error)
}

// Families runs refresh-token families.
type Families interface {
	Start(ctx context.Context, l token.Login) (*store.Session, string, error)
	Refresh(ctx context.Context, presented string) (*token.Refreshed, error)
	Lookup(ctx context.Context, presented string) (*store.Session, error)
}

// AccessTokens mints and verifies access tokens.
type AccessTokens interface {
	Mint(s token.Subject) (string, *token.Claims, error)
	Verify(tok string) (*token.Claims, error)
	TTL() time.Duration
}

// Sessions reads and revokes sessions.
type Sessions interface {
	SessionByID(ctx context.Context, id string) (*store.Session, error)
	ListSessions(ctx context.Context, userID string, now time.Time) ([]store.Session, error)
	RevokeSession(ctx context.Context, id, reason string, at time.Time) (bool, error)
}

// SecondFactors runs the second step of sign-in (internal/mfa). When a user
// who passed a first factor has a second one enrolled, sign-in answers
// "mfa_required" with a short-lived mfa_token instead of tokens.
type SecondFactors interface {
	// Methods returns the second factors the user has enrolled ("otp",
	// "recovery_code", "webauthn"); none means no MFA step.
	Methods(ctx context.Context, userID string) ([]string, error)
	// Challenge issues an mfa_token for a user who passed the factors in amr.
	Challenge(ctx context.Context, userID string, amr []string, m identity.Meta) (mfaToken string, ttl time.Duration, err error)
	// Redeem completes the second step (grant_type urn:gatehouse:grant-type:mfa):
	// it counts an attempt against the mfa_token, checks the factor and uses the
	// token up; the amr returned holds the first factors, the second and "mfa".
	Redeem(ctx context.Context, mfaToken string, p mfa.Proof, m identity.Meta) (*mfa.Redeemed, error)
}

// MFAFactors lets a signed-in user manage TOTP and recovery codes (internal/mfa).
type MFAFactors interface {
	Status(ctx context.Context, userID string) (mfa.Status, error)
	EnrolTOTP(ctx context.Context, userID, account string, m identity.Meta) (*mfa.Enrolment, error)
	ConfirmTOTP(ctx context.Context, userID, code string, m identity.Meta) ([]string, error)
	DisableTOTP(ctx context.Context, userID string, p mfa.Proof, m identity.Meta) error
	RegenerateRecoveryCodes(ctx context.Context, userID, code string, m identity.Meta) ([]string, error)
}

// MFAAssertions verifies a passkey assertion as the second step of sign-in (internal/passkey).
type MFAAssertions interface {
	VerifyMFAAssertion(ctx context.Context, userID string, assertion []byte, m identity.Meta) error
}

// EmailFlows are email verification and password reset (identity.EmailFlows).
type EmailFlows interface {
	SendVerification(ctx context.Context, email string, m identity.Meta) error
	SendVerificationTo(ctx context.Context, userID string, m identity.Meta) error
	VerifyEmail(ctx context.Context, p identity.Proof, m identity.Meta) error
	ForgotPassword(ctx context.Context, email string, m identity.Meta) error
	ResetPassword(ctx context.Context, p identity.Proof, newPassword string, m identity.Meta) error
	SignupCreated(ctx context.Context, u *store.User, m identity.Meta)
	SignupTaken(ctx context.Context, email string, m identity.Meta)
}

// KeySet publishes the public signing keys.
type KeySet interface {
	JWKS() []byte
}

// Recorder records audit events.
type Recorder interface {
	Record(ctx context.Context, e store.Event)
}

// Deps are the server's dependencies. All are required unless noted.
type Deps struct {
	Logger   *slog.Logger
	Accounts Accounts
	Families Families
	Access   AccessTokens
	Sessions Sessions
	Keys     KeySet
	Audit    Recorder
	// MFA, optional, adds the second step to sign-in; nil → no MFA.
	MFA SecondFactors
	// Social, optional, runs sign-in through OIDC providers; nil → /auth/v1/oidc/* is 404.
	Social SocialLogin
	// Passkeys, optional, serves /auth/v1/webauthn/*; nil → passkeys off (404).
	Passkeys Passkeys
	// MFAFactors, optional, serves /auth/v1/mfa/* (TOTP and recovery codes); nil → 404.
	MFAFactors MFAFactors
	// MFAAssertions, optional, accepts webauthn_assertion in the MFA grant; nil → 400.
	MFAAssertions MFAAssertions
	// Email, optional, runs email verification and password reset; nil → those
	// endpoints answer 503 "email not configured".
	Email EmailFlows
	// Revocations, optional, is told about every revoked session.
	Revocations identity.RevocationPublisher
	// Ready reports readiness for /readyz; nil means always ready.
	Ready func(ctx context.Context) error
	// Proxies are trusted proxies (client IP and request id).
	Proxies reqctx.Proxies
	// Fallback serves everything not in the identity API (the gateway); nil → 404.
	// It gets the request without a body limit: the gateway applies per-route limits.
	Fallback http.Handler
	// Edge, optional, wraps every request right after the request scope is set
	// (the gateway's global, per-IP and identity-endpoint rate limits).
	Edge func(http.Handler) http.Handler
	Now  func() time.Time

	Issuer               string
	Algorithm            string // "ES256" or "EdDSA", for discovery
	Scope                string // scope claim of issued tokens
	MaxBodyBytes         int64  // 0 → 1 MiB
	JWKSCacheTTL         time.Duration
	RequireVerifiedEmail bool
}

// NewServer returns the public HTTP handler.
func NewServer(d Deps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = 1 << 20
	}
	if d.Scope == "" {
		d.Scope = "api"
	}
	if d.Algorithm == "" {
		d.Algorithm = "ES256"
	}
	mux := http.NewServeMux()
	addRoutes(mux, &d)
	var h http.Handler = mux
	// Outermost first, as a request meets them.
	h = securityHeaders(h)
	if d.Edge != nil {
		h = d.Edge(h)
	}
	h = recoverer(d.Logger, errorWriter{d.Logger}, h)
	h = requestScope(d.Proxies, h)
	return h
}

// requestScope gives every request its id and client IP before anything else runs,
// so every log line and error carries them.
func requestScope(p reqctx.Proxies, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, sc := reqctx.New(r.Context(), p.RequestID(r), p.ClientIP(r))
		w.Header()["X-Request-Id"] = []string{sc.RequestID}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func recoverer(log *slog.Logger, ew errorWriter, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "panic", "request_id", reqctx.From(r.Context()).RequestID, "panic", v)
				ew.problem(w, r, errPanic)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type panicError struct{}

func (panicError) Error() string { return "handler panic" }

var errPanic error = panicError{}

// limitBody caps every request body; reading past the cap fails with
// *http.MaxBytesError, which the error writer turns into 413.
func limitBody(n int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > n {
			errorWriter{}.problem(w, r, &http.MaxBytesError{Limit: n})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		next.ServeHTTP(w, r)
	})
}

// securityHeaders are set on every response. HSTS because Gatehouse only ever
// serves HTTPS: browsers and WebViews must never try plain HTTP again.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Canonical keys set directly, with one backing array for the four
		// values: this runs on every response.
		h := w.Header()
		v := make([]string, 4)
		v[0], v[1], v[2], v[3] = "max-age=63072000; includeSubDomains", "nosniff", "no-referrer", "DENY"
		h["Strict-Transport-Security"] = v[0:1:1]
		h["X-Content-Type-Options"] = v[1:2:2]
		h["Referrer-Policy"] = v[2:3:3]
		h["X-Frame-Options"] = v[3:4:4]
		next.ServeHTTP(w, r)
	})
}
