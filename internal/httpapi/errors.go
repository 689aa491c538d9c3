package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/problem"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/mfa"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// Problem and FieldError are the wire shapes of errors (package problem).
type (
	Problem    = problem.Details
	FieldError = problem.FieldError
)

func newProblem(status int, slug, title, detail string) *Problem {
	return problem.New(status, slug, title, detail)
}

func badRequest(detail string, fields ...FieldError) *Problem {
	p := newProblem(http.StatusBadRequest, "invalid-request", "Invalid request", detail)
	p.Errors = fields
	return p
}

// OAuthError is an RFC 6749 §5.2 error from the token or revocation endpoint.
type OAuthError struct {
	Status      int
	Code        string // invalid_request, invalid_grant, unsupported_grant_type, ...
	Description string
	retryAfter  time.Duration
	// MFAToken and MFAExpiresIn are set on "mfa_required": the second step of
	// sign-in redeems the token with grant_type urn:gatehouse:grant-type:mfa.
	MFAToken     string
	MFAExpiresIn int64
	// MFAMethods lists the second factors the user can use ("otp",
	// "recovery_code", "webauthn").
	MFAMethods []string
}

func (e *OAuthError) Error() string { return e.Code + ": " + e.Description }

func oauthErr(status int, code, desc string) *OAuthError {
	return &OAuthError{Status: status, Code: code, Description: desc}
}

// toProblem is the one map from errors to what a client sees. Anything it does
// not recognise is an internal error: logged in full under the request id, shown
// as a bare 500.
func toProblem(err error) *Problem {
	var p *Problem
	var pe *password.PolicyError
	var te *identity.ThrottledError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &mbe):
		return newProblem(http.StatusRequestEntityTooLarge, "too-large", "Request body too large", "the body exceeds "+strconv.FormatInt(mbe.Limit, 10)+" bytes")
	case errors.As(err, &pe):
		return badRequest(pe.Message, FieldError{Field: "password", Reason: pe.Reason})
	case errors.As(err, &te):
		p := newProblem(http.StatusTooManyRequests, "throttled", "Too many attempts", "try again later")
		p.RetryAfter = te.RetryAfter
		return p
	case errors.Is(err, identity.ErrInvalidEmail):
		return badRequest("email must be a plain email address", FieldError{Field: "email", Reason: "invalid"})
	case errors.Is(err, identity.ErrEmailTaken):
		return newProblem(http.StatusConflict, "email-unavailable", "Email unavailable", "an account cannot be created with this email address")
	case errors.Is(err, identity.ErrSignupDisabled):
		return newProblem(http.StatusForbidden, "signup-disabled", "Sign-up disabled", "accounts are created by an administrator")
	case errors.Is(err, identity.ErrNotFound):
		return newProblem(http.StatusNotFound, "not-found", "Not found", "")
	case errors.Is(err, mfa.ErrInvalidCode):
		return newProblem(http.StatusBadRequest, "invalid-code", "Invalid code", "the code is wrong, expired or already used")
	case errors.Is(err, mfa.ErrAlreadyEnrolled):
		return newProblem(http.StatusConflict, "mfa-enabled", "MFA already enabled", "TOTP is already enabled; disable it first")
	case errors.Is(err, mfa.ErrNoEnrolment):
		return newProblem(http.StatusConflict, "no-enrolment", "No enrolment pending", "start with POST /auth/v1/mfa/totp, then confirm soon after")
	case errors.Is(err, mfa.ErrNotEnrolled):
		return newProblem(http.StatusConflict, "mfa-not-enabled", "MFA not enabled", "TOTP is not enabled")
	case errors.Is(err, password.ErrBusy):
		p := newProblem(http.StatusServiceUnavailable, "busy", "Busy", "too many sign-ins at once; retry shortly")
		p.RetryAfter = time.Second
		return p
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return newProblem(http.StatusServiceUnavailable, "unavailable", "Service unavailable", "the request did not complete in time")
	}
	return nil
}

// errorWriter writes every error response.
type errorWriter struct{ log *slog.Logger }

// problem writes err as problem+json.
func (ew errorWriter) problem(w http.ResponseWriter, r *http.Request, err error) {
	p := toProblem(err)
	sc := reqctx.From(r.Context())
	if p == nil {
		ew.log.ErrorContext(r.Context(), "internal error", "request_id", sc.RequestID, "method", r.Method, "path", r.URL.Path, "error", err.Error())
		p = newProblem(http.StatusInternalServerError, "internal", "Internal error", "something went wrong; quote the request id when reporting it")
	}
	problem.Write(w, p, sc.RequestID)
}

// oauth writes an RFC 6749 §5.2 error.
func (ew errorWriter) oauth(w http.ResponseWriter, r *http.Request, e *OAuthError) {
	sc := reqctx.From(r.Context())
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", problem.RetryAfter(e.retryAfter))
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse"`)
	}
	noStore(w)
	writeJSON(w, e.Status, "application/json", struct {
		Error        string   `json:"error"`
		Description  string   `json:"error_description,omitempty"`
		MFAToken     string   `json:"mfa_token,omitempty"`
		MFAExpiresIn int64    `json:"mfa_token_expires_in,omitempty"`
		MFAMethods   []string `json:"mfa_methods,omitempty"`
		RequestID    string   `json:"request_id,omitempty"`
	}{e.Code, e.Description, e.MFAToken, e.MFAExpiresIn, e.MFAMethods, sc.RequestID})
}

// oauthFromErr maps an error on the token endpoint to its OAuth form, falling
// back to a problem for what OAuth has no word for (internal errors, 413).
func (ew errorWriter) tokenError(w http.ResponseWriter, r *http.Request, err error) {
	var oe *OAuthError
	var te *identity.ThrottledError
	var pe *Problem
	switch {
	case errors.As(err, &oe):
		ew.oauth(w, r, oe)
	case errors.As(err, &te):
		e := oauthErr(http.StatusTooManyRequests, "invalid_grant", "too many failed attempts; try again later")
		e.retryAfter = te.RetryAfter
		ew.oauth(w, r, e)
	case errors.Is(err, identity.ErrInvalidCredentials):
		ew.oauth(w, r, oauthErr(http.StatusBadRequest, "invalid_grant", "invalid email or password"))
	case errors.Is(err, identity.ErrLocked):
		ew.oauth(w, r, oauthErr(http.StatusBadRequest, "invalid_grant", "the account is locked"))
	case errors.Is(err, mfa.ErrInvalidCode):
		ew.oauth(w, r, oauthErr(http.StatusBadRequest, "invalid_grant", "the second factor is wrong, expired or already used"))
	case errors.Is(err, mfa.ErrInvalidToken):
		ew.oauth(w, r, oauthErr(http.StatusBadRequest, "invalid_grant", "the mfa_token is invalid, expired or used up; sign in again"))
	case errors.Is(err, mfa.ErrProof):
		ew.oauth(w, r, oauthErr(http.StatusBadRequest, "invalid_request", "exactly one of otp, recovery_code or webauthn_assertion is required"))
	case errors.Is(err, token.ErrInvalidGrant), errors.Is(err, token.ErrReused):
		ew.oauth(w, r, oauthErr(http.StatusBadRequest, "invalid_grant", "the refresh token is invalid, expired or revoked"))
	case errors.Is(err, password.ErrBusy):
		e := oauthErr(http.StatusServiceUnavailable, "temporarily_unavailable", "too many sign-ins at once; retry shortly")
		e.retryAfter = time.Second
		ew.oauth(w, r, e)
	case errors.As(err, &pe) && pe.Status == http.StatusBadRequest:
		ew.oauth(w, r, oauthErr(http.StatusBadRequest, "invalid_request", pe.Detail))
	default:
		ew.problem(w, r, err)
	}
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	problem.JSON(w, status, contentType, v)
}

// noStore marks a response that carries credentials as never cacheable (RFC 6749 §5.1).
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}
