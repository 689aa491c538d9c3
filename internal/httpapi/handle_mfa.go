package httpapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/mfa"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
)

// mfaGrantType is the extension grant (RFC 6749 §4.5) that completes a sign-in
// answered with "mfa_required".
const mfaGrantType = "urn:gatehouse:grant-type:mfa"

// mfaGrant redeems an mfa_token with exactly one second factor. Malformed input
// is refused before anything is counted; a well-formed wrong factor costs one
// of the token's attempts and one of the user's failures.
func mfaGrant(ctx context.Context, d *Deps, v url.Values, m identity.Meta) (*tokenResponse, error) {
	if d.MFA == nil {
		return nil, oauthErr(http.StatusBadRequest, "unsupported_grant_type", "multi-factor sign-in is not enabled")
	}
	tok := v.Get("mfa_token")
	if tok == "" {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "mfa_token is required")
	}
	otp, rc, wa := v.Get("otp"), v.Get("recovery_code"), v.Get("webauthn_assertion")
	n := 0
	for _, s := range []string{otp, rc, wa} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "exactly one of otp, recovery_code or webauthn_assertion is required")
	}
	var p mfa.Proof
	switch {
	case otp != "":
		if !validOTP(otp) {
			return nil, oauthErr(http.StatusBadRequest, "invalid_request", "otp must be 6 digits")
		}
		p.Code = otp
	case rc != "":
		if _, err := mfa.NormalizeRecoveryCode(rc); err != nil {
			return nil, oauthErr(http.StatusBadRequest, "invalid_request", "recovery_code must be 16 letters and digits (hyphens and spaces are ignored)")
		}
		p.RecoveryCode = rc
	default:
		if d.MFAAssertions == nil {
			return nil, oauthErr(http.StatusBadRequest, "invalid_request", "webauthn_assertion is not supported: passkeys are not enabled")
		}
		assertion := []byte(wa)
		p.External = func(ctx context.Context, userID string) ([]string, error) {
			if err := d.MFAAssertions.VerifyMFAAssertion(ctx, userID, assertion, m); err != nil {
				return nil, err
			}
			return []string{"hwk"}, nil
		}
	}
	res, err := d.MFA.Redeem(ctx, tok, p, m)
	if err != nil {
		return nil, err
	}
	u, err := d.Accounts.User(ctx, res.UserID)
	if err != nil {
		return nil, err
	}
	return finishLogin(ctx, d, u, res.AMR, m)
}

// validOTP: a TOTP code as apps show it, 6 ASCII digits.
func validOTP(s string) bool {
	if len(s) != 6 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

type mfaStatusView struct {
	TOTP                   bool     `json:"totp"`
	TOTPPending            bool     `json:"totp_pending"`
	RecoveryCodesRemaining int      `json:"recovery_codes_remaining"`
	Passkeys               int      `json:"passkeys"`
	Methods                []string `json:"methods"`
}

// handleMFAStatus tells the user what second factors they have.
func handleMFAStatus(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := reqctx.From(r.Context()).Claims
		st, err := d.MFAFactors.Status(r.Context(), c.Subject)
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		methods := st.Methods
		if methods == nil {
			methods = []string{}
		}
		writeJSON(w, http.StatusOK, "application/json", mfaStatusView{TOTP: st.TOTP, TOTPPending: st.TOTPPending,
			RecoveryCodesRemaining: st.RecoveryCodes, Passkeys: st.Passkeys, Methods: methods})
	})
}

// decodeEmpty accepts no body, or an empty JSON object.
func decodeEmpty(r *http.Request) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	var none struct{}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return decodeJSON(r, &none)
}

// handleTOTPEnrol starts a TOTP enrolment: the secret is shown once, for the
// authenticator app; it is active only after confirmation.
func handleTOTPEnrol(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := decodeEmpty(r); err != nil {
			ew.problem(w, r, err)
			return
		}
		c := reqctx.From(r.Context()).Claims
		u, err := d.Accounts.User(r.Context(), c.Subject)
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		account, err := d.Accounts.Email(u)
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		e, err := d.MFAFactors.EnrolTOTP(r.Context(), c.Subject, account, meta(r))
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, "application/json", map[string]string{"secret": e.Secret, "otpauth_uri": e.URI})
	})
}

type codeRequest struct {
	Code string `json:"code"`
}

func (q codeRequest) check() error {
	if q.Code == "" {
		return badRequest("missing fields", FieldError{Field: "code", Reason: "required"})
	}
	if !validOTP(q.Code) {
		return badRequest("code must be 6 digits", FieldError{Field: "code", Reason: "invalid"})
	}
	return nil
}

// handleTOTPConfirm activates TOTP with a code from the app and returns the
// recovery codes, shown this once.
func handleTOTPConfirm(d *Deps, ew errorWriter) http.Handler {
	return codeForRecoveryCodes(ew, d.MFAFactors.ConfirmTOTP)
}

// codeForRecoveryCodes serves the endpoints that take a TOTP code and answer
// with a fresh set of recovery codes (confirmation and regeneration).
func codeForRecoveryCodes(ew errorWriter, issue func(ctx context.Context, userID, code string, m identity.Meta) ([]string, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req codeRequest
		if err := decodeJSON(r, &req); err != nil {
			ew.problem(w, r, err)
			return
		}
		if err := req.check(); err != nil {
			ew.problem(w, r, err)
			return
		}
		c := reqctx.From(r.Context()).Claims
		codes, err := issue(r.Context(), c.Subject, req.Code, meta(r))
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, "application/json", map[string][]string{"recovery_codes": codes})
	})
}

type disableRequest struct {
	Code         string `json:"code"`
	RecoveryCode string `json:"recovery_code"`
}

// handleTOTPDisable turns TOTP off. A valid session is not enough: a fresh
// second factor is, so a stolen access token cannot strip the account's MFA.
func handleTOTPDisable(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req disableRequest
		if err := decodeJSON(r, &req); err != nil {
			ew.problem(w, r, err)
			return
		}
		var p mfa.Proof
		switch {
		case req.Code != "" && req.RecoveryCode != "":
			ew.problem(w, r, badRequest("give code or recovery_code, not both", FieldError{Field: "recovery_code", Reason: "conflicts with code"}))
			return
		case req.Code != "":
			if err := (codeRequest{Code: req.Code}).check(); err != nil {
				ew.problem(w, r, err)
				return
			}
			p.Code = req.Code
		case req.RecoveryCode != "":
			if _, err := mfa.NormalizeRecoveryCode(req.RecoveryCode); err != nil {
				ew.problem(w, r, badRequest("recovery_code is malformed", FieldError{Field: "recovery_code", Reason: "invalid"}))
				return
			}
			p.RecoveryCode = req.RecoveryCode
		default:
			ew.problem(w, r, badRequest("a fresh second factor is required", FieldError{Field: "code", Reason: "required"}))
			return
		}
		c := reqctx.From(r.Context()).Claims
		if err := d.MFAFactors.DisableTOTP(r.Context(), c.Subject, p, meta(r)); err != nil {
			ew.problem(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleRecoveryCodes replaces every recovery code after a fresh TOTP code.
func handleRecoveryCodes(d *Deps, ew errorWriter) http.Handler {
	return codeForRecoveryCodes(ew, d.MFAFactors.RegenerateRecoveryCodes)
}
