package social

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/envelope"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"golang.org/x/oauth2"
)

// pending is a sign-in waiting at the provider: what the app asked for and
// Gatehouse's own secrets for the provider leg. It is sealed in the state
// record's data (bound to the record's id): the PKCE verifier and nonce are
// what make a stolen provider code useless, so a database reader must not get
// them either.
type pending struct {
	Provider    string `json:"p"`
	RedirectURI string `json:"r"`
	State       string `json:"s"`
	Challenge   string `json:"c"`
	Nonce       string `json:"n"` // Gatehouse's nonce at the provider
	Verifier    string `json:"v"` // Gatehouse's PKCE verifier at the provider
}

// grant is what a Gatehouse authorization code is bound to. Nothing in it is
// secret: the code itself (never stored) is the secret.
type grant struct {
	Provider    string `json:"p"`
	RedirectURI string `json:"r"`
	Challenge   string `json:"c"`
}

// AuthorizeRequest is the app's authorization request.
type AuthorizeRequest struct {
	RedirectURI         string
	State               string
	CodeChallenge       string
	CodeChallengeMethod string
	ResponseType        string // "" or "code"
	Nonce               string // accepted for AppAuth compatibility; Gatehouse issues no ID token
}

// Authorize validates the app's request and returns the provider's
// authorization URL to redirect the browser to.
func (s *Service) Authorize(ctx context.Context, name string, req AuthorizeRequest, m identity.Meta) (string, error) {
	p := s.providers[name]
	if p == nil {
		return "", ErrUnknownProvider
	}
	// Until redirect_uri is known to be the app's, nothing may be sent to it:
	// an open redirector would leak codes and errors to an attacker's URI.
	if req.RedirectURI == "" {
		return "", &Error{Status: http.StatusBadRequest, Code: "invalid_request", Field: "redirect_uri", Description: "redirect_uri is required"}
	}
	if !allowedRedirect(p.cfg.RedirectURIs, req.RedirectURI) {
		return "", &Error{Status: http.StatusBadRequest, Code: "invalid_request", Field: "redirect_uri", Description: "redirect_uri is not registered for this provider"}
	}
	d := p.ready.Load()
	if d == nil {
		return "", &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "the provider is not reachable yet; retry shortly", RetryAfter: 5 * time.Second}
	}
	back := func(field, desc string) error {
		e := &Error{Status: http.StatusBadRequest, Code: "invalid_request", Field: field, Description: desc, RedirectURI: req.RedirectURI}
		if validState(req.State) {
			e.State = req.State
		}
		return e
	}
	switch {
	case req.ResponseType != "" && req.ResponseType != "code":
		e := back("response_type", "response_type must be code").(*Error)
		e.Code = "unsupported_response_type"
		return "", e
	case req.State == "":
		return "", back("state", "state is required")
	case !validState(req.State):
		return "", back("state", fmt.Sprintf("state must be 1 to %d printable ASCII characters", maxStateLen))
	case req.CodeChallengeMethod != "S256":
		// Why: "plain" sends the verifier itself through the browser, which
		// is what PKCE exists to avoid (RFC 9700 §2.1.1).
		return "", back("code_challenge_method", "code_challenge_method must be S256")
	case !validChallenge(req.CodeChallenge):
		return "", back("code_challenge", "code_challenge must be the 43-character base64url SHA-256 of the code_verifier")
	case req.Nonce != "" && !validState(req.Nonce):
		return "", back("nonce", fmt.Sprintf("nonce must be at most %d printable ASCII characters", maxStateLen))
	}

	state, err := randomToken()
	if err != nil {
		return "", err
	}
	nonce, err := randomToken()
	if err != nil {
		return "", err
	}
	pd := pending{Provider: name, RedirectURI: req.RedirectURI, State: req.State, Challenge: req.CodeChallenge,
		Nonce: nonce, Verifier: oauth2.GenerateVerifier()}
	id := codeID(store.CodeOIDCState, state)
	plain, err := json.Marshal(pd)
	if err != nil {
		return "", err
	}
	sealed, err := s.sealer.Seal(envelope.PurposeOIDCToken, plain, "one_time_codes", "data", id)
	if err != nil {
		return "", fmt.Errorf("social: seal state: %w", err)
	}
	now := s.opts.Now().UTC()
	if err := s.st.CreateCode(ctx, &store.Code{ID: id, Kind: store.CodeOIDCState, Data: sealed, MaxAttempts: 1,
		CreatedAt: now, ExpiresAt: now.Add(s.opts.StateTTL)}); err != nil {
		return "", fmt.Errorf("social: store state: %w", err)
	}
	return d.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(pd.Verifier), oidc.Nonce(nonce)), nil
}

// CallbackRequest is the provider's authorization response (the query of
// the callback).
type CallbackRequest struct {
	State string
	Code  string
	Error string
	Iss   string // RFC 9207, when the provider sends it
}

// Callback completes the provider leg and returns the URL to send the
// browser to: the app's redirect URI with a one-time Gatehouse code (or an
// error) and the app's state.
func (s *Service) Callback(ctx context.Context, name string, req CallbackRequest, m identity.Meta) (string, error) {
	p := s.providers[name]
	if p == nil {
		return "", ErrUnknownProvider
	}
	badState := &Error{Status: http.StatusBadRequest, Code: "invalid_request", Field: "state", Description: "the sign-in is unknown, expired or already completed; start again from the app"}
	if req.State == "" || len(req.State) > maxStateLen {
		return "", badState
	}
	id := codeID(store.CodeOIDCState, req.State)
	c, err := s.st.UseCode(ctx, store.CodeOIDCState, id, s.opts.Now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		s.fail(ctx, name, "", "state_invalid", m)
		return "", badState
	}
	if err != nil {
		return "", fmt.Errorf("social: use state: %w", err)
	}
	var pd pending
	plain, err := s.sealer.Open(envelope.PurposeOIDCToken, c.Data, "one_time_codes", "data", id)
	if err == nil {
		err = json.Unmarshal(plain, &pd)
	}
	// Why the provider check: a state begun for one provider and returned
	// through another's callback is a mix-up attack (RFC 9700 §4.4).
	if err != nil || pd.Provider != name {
		s.fail(ctx, name, "", "state_invalid", m)
		return "", badState
	}

	// From here the app's redirect URI is trusted: errors go back to the app.
	deny := func(code, desc, reason string, userID string) error {
		s.fail(ctx, name, userID, reason, m)
		return &Error{Status: http.StatusBadRequest, Code: code, Description: desc, RedirectURI: pd.RedirectURI, State: pd.State}
	}
	if req.Iss != "" && req.Iss != p.cfg.Issuer {
		return "", deny("access_denied", "the response came from another issuer", "issuer_mismatch", "")
	}
	if req.Error != "" {
		code := "server_error"
		switch req.Error {
		case "access_denied", "temporarily_unavailable", "login_required", "consent_required", "interaction_required":
			code = req.Error
		}
		return "", deny(code, "the provider did not sign the user in", "provider_error", "")
	}
	if req.Code == "" {
		return "", deny("server_error", "the provider sent no code", "provider_error", "")
	}
	d := p.ready.Load()
	if d == nil {
		return "", deny("temporarily_unavailable", "the provider is not reachable; retry shortly", "provider_unavailable", "")
	}
	xctx, cancel := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, s.opts.HTTPClient), 30*time.Second)
	defer cancel()
	tok, err := d.oauth.Exchange(xctx, req.Code, oauth2.VerifierOption(pd.Verifier))
	if err != nil {
		s.opts.Logger.WarnContext(ctx, "oidc code exchange failed", "provider", name, "request_id", m.RequestID, "error", exchangeError(err))
		return "", deny("server_error", "the provider refused the sign-in", "exchange_failed", "")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", deny("server_error", "the provider sent no ID token", "id_token_missing", "")
	}
	idt, err := d.verifier.Verify(xctx, raw)
	if err != nil {
		s.opts.Logger.WarnContext(ctx, "oidc id token rejected", "provider", name, "request_id", m.RequestID, "error", err.Error())
		return "", deny("access_denied", "the provider's ID token could not be verified", "id_token_invalid", "")
	}
	// Why: the nonce ties the ID token to this sign-in; an ID token injected
	// from another session fails here (OIDC Core §3.1.3.7).
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(pd.Nonce)) != 1 {
		return "", deny("access_denied", "the provider's ID token could not be verified", "nonce_mismatch", "")
	}
	var cl claims
	if err := idt.Claims(&cl); err != nil {
		return "", deny("access_denied", "the provider's ID token could not be read", "id_token_invalid", "")
	}
	if idt.Subject == "" || len(idt.Subject) > 255 {
		return "", deny("access_denied", "the provider's ID token has no usable subject", "id_token_invalid", "")
	}
	u, err := s.account(ctx, p, idt.Subject, cl, m)
	var ae *accountError
	if errors.As(err, &ae) {
		return "", deny("access_denied", ae.desc, ae.reason, ae.userID)
	}
	if err != nil {
		return "", err
	}
	if u.LockedAt != nil {
		return "", deny("access_denied", "the account is locked", "locked", u.ID)
	}

	code, err := randomToken()
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(grant{Provider: name, RedirectURI: pd.RedirectURI, Challenge: pd.Challenge})
	if err != nil {
		return "", err
	}
	now := s.opts.Now().UTC()
	if err := s.st.CreateCode(ctx, &store.Code{ID: codeID(store.CodeOIDCAuth, code), Kind: store.CodeOIDCAuth, UserID: u.ID, Data: data,
		MaxAttempts: 1, CreatedAt: now, ExpiresAt: now.Add(s.opts.CodeTTL)}); err != nil {
		return "", fmt.Errorf("social: store code: %w", err)
	}
	s.record(ctx, audit.SocialLoginSucceeded, u.ID, m, map[string]string{"provider": name})
	return withParams(pd.RedirectURI, url.Values{"code": {code}, "state": {pd.State}, "iss": {s.opts.Issuer}}), nil
}

// ErrorRedirect is the app's redirect URI carrying e (RFC 6749 §4.1.2.1,
// with "iss" per RFC 9207). e.RedirectURI must be set.
func (s *Service) ErrorRedirect(e *Error) string {
	v := url.Values{"error": {e.Code}, "iss": {s.opts.Issuer}}
	if e.Description != "" {
		v.Set("error_description", e.Description)
	}
	if e.State != "" {
		v.Set("state", e.State)
	}
	return withParams(e.RedirectURI, v)
}

// Redemption is a redeemed Gatehouse code.
type Redemption struct {
	UserID   string
	Provider string
}

// Redeem spends a Gatehouse authorization code: it must be live, and
// redirectURI and S256(verifier) must match what it was bound to. The code is
// spent by the first attempt whatever the outcome, so a code can never be
// tried twice (RFC 6749 §4.1.2). verifier must have passed ValidVerifier.
func (s *Service) Redeem(ctx context.Context, code, redirectURI, verifier string, m identity.Meta) (*Redemption, error) {
	if len(code) > 256 {
		return nil, ErrInvalidGrant
	}
	c, err := s.st.UseCode(ctx, store.CodeOIDCAuth, codeID(store.CodeOIDCAuth, code), s.opts.Now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		s.fail(ctx, "", "", "code_invalid", m)
		return nil, ErrInvalidGrant
	}
	if err != nil {
		return nil, fmt.Errorf("social: use code: %w", err)
	}
	var g grant
	if err := json.Unmarshal(c.Data, &g); err != nil {
		return nil, fmt.Errorf("social: code data: %w", err)
	}
	// Constant-time: neither comparison may tell an attacker how much of a
	// guess was right.
	if subtle.ConstantTimeCompare([]byte(redirectURI), []byte(g.RedirectURI)) != 1 {
		s.fail(ctx, g.Provider, c.UserID, "redirect_uri_mismatch", m)
		return nil, ErrInvalidGrant
	}
	if subtle.ConstantTimeCompare([]byte(s256(verifier)), []byte(g.Challenge)) != 1 {
		s.fail(ctx, g.Provider, c.UserID, "code_verifier_mismatch", m)
		return nil, ErrInvalidGrant
	}
	return &Redemption{UserID: c.UserID, Provider: g.Provider}, nil
}

// claims are the ID token claims Gatehouse reads besides sub.
type claims struct {
	Email         string    `json:"email"`
	EmailVerified boolClaim `json:"email_verified"`
}

// boolClaim reads a JSON boolean, or the strings "true"/"false" that some
// providers (Apple) send.
type boolClaim bool

func (b *boolClaim) UnmarshalJSON(data []byte) error {
	switch strings.Trim(string(data), `"`) {
	case "true":
		*b = true
	default:
		*b = false
	}
	return nil
}

// accountError refuses a sign-in for an account rule; desc goes to the app.
type accountError struct{ desc, reason, userID string }

func (e *accountError) Error() string { return "social: " + e.reason }

// account finds or makes the user for a provider account:
//  1. a link (provider, sub) names the user;
//  2. else an account with the same email is joined — only if the provider
//     says the email is verified and linking is allowed (the takeover guard:
//     an unverified claim to an address must never open that account);
//  3. else a new password-less account is created with the link.
func (s *Service) account(ctx context.Context, p *provider, sub string, cl claims, m identity.Meta) (*store.User, error) {
	name := p.cfg.Name
	for range 2 { // a second pass after losing a race with a concurrent first sign-in
		link, err := s.st.IdentityByProvider(ctx, name, sub)
		if err == nil {
			u, err := s.accounts.User(ctx, link.UserID)
			if err != nil {
				return nil, fmt.Errorf("social: linked user: %w", err)
			}
			return u, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("social: identity: %w", err)
		}
		if cl.Email == "" {
			return nil, &accountError{desc: "the provider did not share an email address", reason: "email_missing"}
		}
		u, err := s.accounts.UserByEmail(ctx, cl.Email)
		switch {
		case errors.Is(err, identity.ErrInvalidEmail):
			return nil, &accountError{desc: "the provider's email address is not usable", reason: "email_invalid"}
		case errors.Is(err, identity.ErrNotFound):
			u, err = s.accounts.CreateFederated(ctx, cl.Email, bool(cl.EmailVerified), name, sub, m)
			if errors.Is(err, identity.ErrEmailTaken) || errors.Is(err, identity.ErrIdentityLinked) {
				continue
			}
			if errors.Is(err, identity.ErrInvalidEmail) {
				return nil, &accountError{desc: "the provider's email address is not usable", reason: "email_invalid"}
			}
			if err != nil {
				return nil, fmt.Errorf("social: create account: %w", err)
			}
			s.record(ctx, audit.SocialAccountCreated, u.ID, m, map[string]string{"provider": name, "email_verified": fmt.Sprint(bool(cl.EmailVerified))})
			return u, nil
		case err != nil:
			return nil, fmt.Errorf("social: user by email: %w", err)
		}
		if !cl.EmailVerified {
			return nil, &accountError{desc: "an account with this email address exists; the provider has not verified the address, so it cannot be joined", reason: "unverified_email_conflict", userID: u.ID}
		}
		if !p.cfg.LinkByEmail {
			return nil, &accountError{desc: "an account with this email address exists; sign in to it another way", reason: "link_by_email_disabled", userID: u.ID}
		}
		if err := s.link(ctx, u, name, sub, m); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return nil, err
		}
		return u, nil
	}
	return nil, errors.New("social: account: lost the race with a concurrent sign-in twice")
}

// link joins the provider account to u. When u's own address was never
// verified, whoever set its password never proved they own the address: it
// may be an attacker who signed up first with the victim's address
// (pre-account takeover). The provider has now proved ownership, so the
// address becomes verified, the unproven password is removed (the owner can
// set one through password reset) and every existing session is ended.
func (s *Service) link(ctx context.Context, u *store.User, name, sub string, m identity.Meta) error {
	now := s.opts.Now().UTC()
	if err := s.st.LinkIdentity(ctx, &store.Identity{Provider: name, Subject: sub, UserID: u.ID, CreatedAt: now}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return err
		}
		return fmt.Errorf("social: link: %w", err)
	}
	detail := map[string]string{"provider": name}
	if !u.EmailVerified {
		detail["secured"] = "true"
		if u.PasswordHash != "" {
			if err := s.st.SetPasswordHash(ctx, u.ID, "", now); err != nil {
				return fmt.Errorf("social: link: %w", err)
			}
			u.PasswordHash = ""
		}
		if err := s.st.SetEmailVerified(ctx, u.ID, true, now); err != nil {
			return fmt.Errorf("social: link: %w", err)
		}
		u.EmailVerified = true
		if _, err := s.accounts.RevokeSessions(ctx, u.ID, "", "unverified_account_linked", m); err != nil {
			return fmt.Errorf("social: link: %w", err)
		}
	}
	s.record(ctx, audit.SocialIdentityLinked, u.ID, m, detail)
	return nil
}

func (s *Service) fail(ctx context.Context, provider, userID, reason string, m identity.Meta) {
	d := map[string]string{"reason": reason}
	if provider != "" {
		d["provider"] = provider
	}
	s.record(ctx, audit.SocialLoginFailed, userID, m, d)
}

func (s *Service) record(ctx context.Context, typ, userID string, m identity.Meta, detail map[string]string) {
	if s.audit != nil {
		s.audit.Record(ctx, store.Event{Type: typ, UserID: userID, IP: m.IP, RequestID: m.RequestID, Detail: detail})
	}
}

// exchangeError describes a failed exchange for the log without the
// provider's response body, which may echo credentials.
func exchangeError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		msg := "token endpoint answered"
		if re.Response != nil {
			msg += " " + re.Response.Status
		}
		if re.ErrorCode != "" {
			msg += " error=" + re.ErrorCode
		}
		return msg
	}
	return err.Error()
}

// randomToken is 32 random bytes, base64url: states, nonces and codes.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("social: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
