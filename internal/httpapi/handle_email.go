package httpapi

import (
	"bytes"
	"context"
	"errors"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
)

// The email endpoints answer sends with one fixed body, whatever happened, so
// they cannot be used to learn which addresses have accounts.
var (
	verifySentBody = map[string]string{"status": "accepted", "detail": "if the address belongs to an account that is not verified yet, a message with a link and a code is on its way"}
	resetSentBody  = map[string]string{"status": "accepted", "detail": "if the address belongs to an account, a message with a link and a code is on its way"}
)

func emailNotConfigured() *Problem {
	return newProblem(http.StatusServiceUnavailable, "email-not-configured", "Email not configured", "email not configured: this server cannot send mail (smtp is not set up)")
}

type emailRequest struct {
	Email string `json:"email"`
}

type proofRequest struct {
	Token    string `json:"token"`
	Email    string `json:"email"`
	Code     string `json:"code"`
	Password string `json:"password"`
}

// handleVerifySend mails a verification link and code: signed out with
// {email} (so a user refused sign-in for an unverified address can ask
// again), or signed in with no body.
func handleVerifySend(d *Deps, ew errorWriter) http.Handler {
	signedIn := requireToken(d, ew, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := readBody(r)
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		if tb := bytes.TrimSpace(b); len(tb) > 0 && string(tb) != "{}" && string(tb) != "null" {
			ew.problem(w, r, badRequest("send no body when signed in: the message goes to the account's address"))
			return
		}
		c := reqctx.From(r.Context()).Claims
		if err := d.Email.SendVerificationTo(r.Context(), c.Subject, meta(r)); err != nil {
			ew.problem(w, r, err)
			return
		}
		writeJSON(w, http.StatusAccepted, "application/json", verifySentBody)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Email == nil {
			ew.problem(w, r, emailNotConfigured())
			return
		}
		if _, ok := bearer(r); ok || len(r.Header.Values("Authorization")) > 0 {
			signedIn.ServeHTTP(w, r)
			return
		}
		mailToAddress(w, r, ew, d.Email.SendVerification, verifySentBody)
	})
}

// mailToAddress serves the signed-out "mail me" requests: {email} in, always
// 202 with body out, whether or not the address has an account.
func mailToAddress(w http.ResponseWriter, r *http.Request, ew errorWriter, send func(ctx context.Context, email string, m identity.Meta) error, body any) {
	var req emailRequest
	if err := decodeJSON(r, &req); err != nil {
		ew.problem(w, r, err)
		return
	}
	if !emailField(w, r, ew, req.Email) {
		return
	}
	if err := send(r.Context(), req.Email, meta(r)); err != nil {
		ew.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, "application/json", body)
}

// handleForgot mails a password-reset link and code.
func handleForgot(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Email == nil {
			ew.problem(w, r, emailNotConfigured())
			return
		}
		mailToAddress(w, r, ew, d.Email.ForgotPassword, resetSentBody)
	})
}

// handleVerify redeems a verification link token or {email, code}.
func handleVerify(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Email == nil {
			ew.problem(w, r, emailNotConfigured())
			return
		}
		p, _, ok := decodeProof(w, r, ew, false)
		if !ok {
			return
		}
		if err := d.Email.VerifyEmail(r.Context(), p, meta(r)); err != nil {
			ew.problem(w, r, proofError(err, p))
			return
		}
		writeJSON(w, http.StatusOK, "application/json", map[string]any{"email_verified": true})
	})
}

// handleReset redeems a reset link token or {email, code} with a new password.
func handleReset(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Email == nil {
			ew.problem(w, r, emailNotConfigured())
			return
		}
		p, pw, ok := decodeProof(w, r, ew, true)
		if !ok {
			return
		}
		if err := d.Email.ResetPassword(r.Context(), p, pw, meta(r)); err != nil {
			ew.problem(w, r, proofError(err, p))
			return
		}
		writeJSON(w, http.StatusOK, "application/json", map[string]any{"password_reset": true, "sessions_revoked": true})
	})
}

// decodeProof reads {token} or {email, code} (and password when withPassword).
func decodeProof(w http.ResponseWriter, r *http.Request, ew errorWriter, withPassword bool) (identity.Proof, string, bool) {
	var req proofRequest
	if err := decodeJSON(r, &req); err != nil {
		ew.problem(w, r, err)
		return identity.Proof{}, "", false
	}
	var bad []FieldError
	if !withPassword && req.Password != "" {
		bad = append(bad, FieldError{Field: "password", Reason: "unknown"})
	}
	for _, f := range []struct{ name, v string }{{"token", req.Token}, {"email", req.Email}, {"code", req.Code}, {"password", req.Password}} {
		if len(f.v) > maxFieldLen {
			bad = append(bad, FieldError{Field: f.name, Reason: "too_long"})
		}
	}
	switch {
	case req.Token != "" && (req.Email != "" || req.Code != ""):
		bad = append(bad, FieldError{Field: "token", Reason: "send either token, or email and code"})
	case req.Token == "" && req.Email == "" && req.Code == "":
		bad = append(bad, FieldError{Field: "token", Reason: "required"})
	case req.Token == "" && req.Email == "":
		bad = append(bad, FieldError{Field: "email", Reason: "required"})
	case req.Token == "" && req.Code == "":
		bad = append(bad, FieldError{Field: "code", Reason: "required"})
	}
	if withPassword && req.Password == "" {
		bad = append(bad, FieldError{Field: "password", Reason: "required"})
	}
	if len(bad) > 0 {
		ew.problem(w, r, badRequest("invalid or missing fields", bad...))
		return identity.Proof{}, "", false
	}
	return identity.Proof{Token: req.Token, Email: req.Email, Code: req.Code}, req.Password, true
}

// proofError names the field a wrong link token or code came in.
func proofError(err error, p identity.Proof) error {
	if !errors.Is(err, identity.ErrInvalidCode) {
		return err
	}
	field := "code"
	if p.Token != "" {
		field = "token"
	}
	pr := newProblem(http.StatusBadRequest, "invalid-code", "Invalid code", "the link or code is wrong, expired or already used; ask for a new message")
	pr.Errors = []FieldError{{Field: field, Reason: "invalid"}}
	return pr
}

func emailField(w http.ResponseWriter, r *http.Request, ew errorWriter, email string) bool {
	switch {
	case email == "":
		ew.problem(w, r, badRequest("missing fields", FieldError{Field: "email", Reason: "required"}))
	case len(email) > maxFieldLen:
		ew.problem(w, r, badRequest("a field is too long", FieldError{Field: "email", Reason: "too_long"}))
	default:
		return true
	}
	return false
}
