package httpapi

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/passkey"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Passkeys runs WebAuthn ceremonies (internal/passkey).
type Passkeys interface {
	BeginRegistration(ctx context.Context, userID, name string) (*protocol.CredentialCreation, error)
	FinishRegistration(ctx context.Context, userID string, body []byte, m identity.Meta) (*passkey.Credential, error)
	BeginLogin(ctx context.Context) (*protocol.CredentialAssertion, error)
	BeginMFA(ctx context.Context, mfaToken string) (*protocol.CredentialAssertion, error)
	FinishLogin(ctx context.Context, body []byte, m identity.Meta) (*store.User, []string, error)
	List(ctx context.Context, userID string) ([]passkey.Credential, error)
	Delete(ctx context.Context, userID, id string, m identity.Meta) error
}

var _ Passkeys = (*passkey.Service)(nil)

// Why one answer for every failed passkey sign-in: the caller is not
// authenticated, and telling "no such credential" from "bad signature" or
// "no such user" would let anyone probe which credential ids exist.
var errPasskeySignIn = newProblem(http.StatusUnauthorized, "passkey-rejected", "Passkey not accepted",
	"the passkey could not be verified for this ceremony; begin again")

// passkeyProblem maps passkey errors. signedIn: the caller holds an access
// token (registration), so a failed verification is a 400, not a 401 that
// would read as "your token is invalid".
func passkeyProblem(err error, signedIn bool) error {
	var ie *passkey.InputError
	var oe *OAuthError
	switch {
	case errors.As(err, &ie):
		if ie.Field == "" {
			return badRequest(ie.Reason)
		}
		return badRequest(ie.Field+" "+ie.Reason, FieldError{Field: ie.Field, Reason: "invalid"})
	case errors.Is(err, passkey.ErrRejected) && signedIn:
		return newProblem(http.StatusBadRequest, "passkey-rejected", "Passkey not accepted", "the attestation could not be verified for this ceremony; begin again")
	case errors.Is(err, passkey.ErrRejected):
		return errPasskeySignIn
	case errors.Is(err, passkey.ErrExists):
		return newProblem(http.StatusConflict, "passkey-exists", "Passkey already registered", "this authenticator's passkey is registered already")
	case errors.Is(err, passkey.ErrNotFound):
		return newProblem(http.StatusNotFound, "not-found", "Not found", "no such passkey")
	case errors.Is(err, passkey.ErrInvalidMFAToken):
		return badRequest("mfa_token is invalid or expired", FieldError{Field: "mfa_token", Reason: "invalid"})
	case errors.Is(err, passkey.ErrNoPasskeys):
		return newProblem(http.StatusBadRequest, "no-passkey", "No passkey", "the account has no passkey; use another second factor")
	case errors.Is(err, identity.ErrLocked):
		return newProblem(http.StatusForbidden, "account-locked", "Account locked", "the account is locked")
	case errors.As(err, &oe):
		// finishLogin's refusals (e.g. email not verified), as problem+json.
		return newProblem(oe.Status, strings.ReplaceAll(oe.Code, "_", "-"), "Sign-in refused", oe.Description)
	}
	return err
}

// readCredentialJSON reads a PublicKeyCredential JSON body (the size cap is
// applied by limitBody).
func readCredentialJSON(r *http.Request) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, unsupportedMedia("application/json")
	}
	return readBody(r)
}

// optionalJSON decodes an optional JSON body: none at all is an empty request.
func optionalJSON(r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return decodeJSON(r, v)
}

type registerBeginRequest struct {
	Name string `json:"name"`
}

// handleWebAuthnRegisterBegin answers creation options for a signed-in user.
func handleWebAuthnRegisterBegin(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req registerBeginRequest
		if err := optionalJSON(r, &req); err != nil {
			ew.problem(w, r, err)
			return
		}
		c := reqctx.From(r.Context()).Claims
		opts, err := d.Passkeys.BeginRegistration(r.Context(), c.Subject, req.Name)
		if err != nil {
			ew.problem(w, r, passkeyProblem(err, true))
			return
		}
		writeJSON(w, http.StatusOK, "application/json", opts)
	})
}

// handleWebAuthnRegisterFinish verifies the attestation and stores the passkey.
func handleWebAuthnRegisterFinish(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := readCredentialJSON(r)
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		c := reqctx.From(r.Context()).Claims
		cred, err := d.Passkeys.FinishRegistration(r.Context(), c.Subject, body, meta(r))
		if err != nil {
			ew.problem(w, r, passkeyProblem(err, true))
			return
		}
		writeJSON(w, http.StatusCreated, "application/json", cred)
	})
}

type loginBeginRequest struct {
	MFAToken string `json:"mfa_token"`
}

// handleWebAuthnLoginBegin answers request options: for a passwordless
// sign-in (no body), or, with an mfa_token, for the second step of a sign-in.
func handleWebAuthnLoginBegin(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req loginBeginRequest
		if err := optionalJSON(r, &req); err != nil {
			ew.problem(w, r, err)
			return
		}
		var (
			opts *protocol.CredentialAssertion
			err  error
		)
		if req.MFAToken != "" {
			opts, err = d.Passkeys.BeginMFA(r.Context(), req.MFAToken)
		} else {
			opts, err = d.Passkeys.BeginLogin(r.Context())
		}
		if err != nil {
			ew.problem(w, r, passkeyProblem(err, false))
			return
		}
		writeJSON(w, http.StatusOK, "application/json", opts)
	})
}

// handleWebAuthnLoginFinish verifies a discoverable sign-in and ends it where
// every sign-in ends, answering the RFC 6749 token response.
func handleWebAuthnLoginFinish(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := readCredentialJSON(r)
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		m := meta(r)
		u, amr, err := d.Passkeys.FinishLogin(r.Context(), body, m)
		if err != nil {
			ew.problem(w, r, passkeyProblem(err, false))
			return
		}
		resp, err := finishLogin(r.Context(), d, u, amr, m)
		if err != nil {
			ew.problem(w, r, passkeyProblem(err, false))
			return
		}
		resp.UserID = u.ID
		writeJSON(w, http.StatusOK, "application/json", resp)
	})
}

// handleWebAuthnCredentials lists the caller's passkeys.
func handleWebAuthnCredentials(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := reqctx.From(r.Context()).Claims
		list, err := d.Passkeys.List(r.Context(), c.Subject)
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, "application/json", map[string]any{"credentials": list})
	})
}

// handleWebAuthnDeleteCredential removes one of the caller's passkeys. Another
// user's credential id answers exactly like a missing one.
func handleWebAuthnDeleteCredential(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := reqctx.From(r.Context()).Claims
		if err := d.Passkeys.Delete(r.Context(), c.Subject, r.PathValue("id"), meta(r)); err != nil {
			ew.problem(w, r, passkeyProblem(err, true))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
