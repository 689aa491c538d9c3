package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/social"
)

// SocialLogin runs sign-in through OpenID Connect providers (internal/social).
type SocialLogin interface {
	Authorize(ctx context.Context, provider string, req social.AuthorizeRequest, m identity.Meta) (string, error)
	Callback(ctx context.Context, provider string, req social.CallbackRequest, m identity.Meta) (string, error)
	ErrorRedirect(e *social.Error) string
	Redeem(ctx context.Context, code, redirectURI, verifier string, m identity.Meta) (*social.Redemption, error)
}

var _ SocialLogin = (*social.Service)(nil)

// handleOIDCAuthorize is where the app sends the system browser (RFC 8252):
// it checks the app's request and redirects to the provider.
func handleOIDCAuthorize(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if headRefused(w, r, ew) {
			return
		}
		if d.Social == nil {
			ew.problem(w, r, errUnknownProvider)
			return
		}
		q, err := singleQuery(r)
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		to, err := d.Social.Authorize(r.Context(), r.PathValue("provider"), social.AuthorizeRequest{
			RedirectURI:         q.Get("redirect_uri"),
			State:               q.Get("state"),
			CodeChallenge:       q.Get("code_challenge"),
			CodeChallengeMethod: q.Get("code_challenge_method"),
			ResponseType:        q.Get("response_type"),
			Nonce:               q.Get("nonce"),
		}, meta(r))
		if err != nil {
			oidcError(w, r, d, ew, err)
			return
		}
		redirect(w, to)
	})
}

// handleOIDCCallback is the provider's redirect back to Gatehouse.
func handleOIDCCallback(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if headRefused(w, r, ew) {
			return
		}
		if d.Social == nil {
			ew.problem(w, r, errUnknownProvider)
			return
		}
		q, err := singleQuery(r)
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		to, err := d.Social.Callback(r.Context(), r.PathValue("provider"), social.CallbackRequest{
			State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error"), Iss: q.Get("iss"),
		}, meta(r))
		if err != nil {
			oidcError(w, r, d, ew, err)
			return
		}
		redirect(w, to)
	})
}

// headRefused answers HEAD with 405: both endpoints write (a pending state,
// a spent state), and HEAD must be safe — a link prefetcher must not use up
// a sign-in.
func headRefused(w http.ResponseWriter, r *http.Request, ew errorWriter) bool {
	if r.Method != http.MethodHead {
		return false
	}
	w.Header().Set("Allow", "GET")
	ew.problem(w, r, newProblem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", "use GET"))
	return true
}

var errUnknownProvider = newProblem(http.StatusNotFound, "unknown-provider", "Unknown provider", "no sign-in provider has this name")

// oidcError answers a refused authorize or callback request: back to the app
// when its redirect URI is known and trusted, else a problem and no redirect.
func oidcError(w http.ResponseWriter, r *http.Request, d *Deps, ew errorWriter, err error) {
	var se *social.Error
	switch {
	case errors.Is(err, social.ErrUnknownProvider):
		ew.problem(w, r, errUnknownProvider)
	case errors.As(err, &se) && se.RedirectURI != "":
		redirect(w, d.Social.ErrorRedirect(se))
	case errors.As(err, &se) && se.Status == http.StatusServiceUnavailable:
		p := newProblem(http.StatusServiceUnavailable, "provider-unavailable", "Provider unavailable", se.Description)
		p.RetryAfter = se.RetryAfter
		ew.problem(w, r, p)
	case errors.As(err, &se):
		var fields []FieldError
		if se.Field != "" {
			fields = append(fields, FieldError{Field: se.Field, Reason: "invalid"})
		}
		p := badRequest(se.Description, fields...)
		p.Status = se.Status
		ew.problem(w, r, p)
	default:
		ew.problem(w, r, err)
	}
}

// redirect sends the browser on. Location is set by hand: http.Redirect
// would treat a private-use scheme URI (com.example.app:/cb) as relative.
func redirect(w http.ResponseWriter, to string) {
	w.Header().Set("Location", to)
	w.WriteHeader(http.StatusFound)
}

// singleQuery parses the query strictly: every parameter at most once
// (RFC 6749 §3.1) and bounded.
func singleQuery(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("the query string is malformed")
	}
	for k, vs := range q {
		if len(vs) > 1 {
			return nil, badRequest(fmt.Sprintf("parameter %q is repeated", truncate(k, 64)), FieldError{Field: truncate(k, 64), Reason: "repeated"})
		}
		if len(vs[0]) > maxFieldLen || !utf8.ValidString(vs[0]) {
			return nil, badRequest(fmt.Sprintf("parameter %q is too long or not UTF-8", truncate(k, 64)), FieldError{Field: truncate(k, 64), Reason: "invalid"})
		}
	}
	return q, nil
}

// codeGrant is grant_type=authorization_code: the app redeems the one-time
// code social login sent to its redirect URI, proving with code_verifier that
// it is the app that started the sign-in (RFC 7636).
func codeGrant(ctx context.Context, d *Deps, v url.Values, m identity.Meta) (*tokenResponse, error) {
	if d.Social == nil {
		return nil, oauthErr(http.StatusBadRequest, "unsupported_grant_type", "social login is not configured")
	}
	code, redirectURI, verifier := v.Get("code"), v.Get("redirect_uri"), v.Get("code_verifier")
	switch {
	case code == "":
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "code is required")
	case redirectURI == "":
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "redirect_uri is required")
	case verifier == "":
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "code_verifier is required")
	case !social.ValidVerifier(verifier):
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
	}
	red, err := d.Social.Redeem(ctx, code, redirectURI, verifier, m)
	if errors.Is(err, social.ErrInvalidGrant) {
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "the code is invalid, expired or used, or redirect_uri or code_verifier does not match it")
	}
	if err != nil {
		return nil, err
	}
	u, err := d.Accounts.User(ctx, red.UserID)
	if errors.Is(err, identity.ErrNotFound) {
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "the account no longer exists")
	}
	if err != nil {
		return nil, err
	}
	// "fed" (RFC 8176): the user was authenticated by a federated provider.
	return finishLogin(ctx, d, u, []string{"fed"}, m)
}
