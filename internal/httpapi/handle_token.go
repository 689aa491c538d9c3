package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// tokenResponse is RFC 6749 §5.1.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	UserID       string `json:"user_id,omitempty"`
}

func meta(r *http.Request) identity.Meta {
	sc := reqctx.From(r.Context())
	return identity.Meta{IP: sc.ClientIP, UserAgent: r.UserAgent(), RequestID: sc.RequestID}
}

// handleToken is the RFC 6749 token endpoint: password and refresh_token grants.
func handleToken(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := params(r)
		if err != nil {
			ew.tokenError(w, r, err)
			return
		}
		if s := v.Get("scope"); s != "" && !scopeSubset(s, d.Scope) {
			ew.oauth(w, r, oauthErr(http.StatusBadRequest, "invalid_scope", "the requested scope is not available"))
			return
		}
		var resp *tokenResponse
		switch gt := v.Get("grant_type"); gt {
		case "password":
			resp, err = passwordGrant(r.Context(), d, v.Get("username"), v.Get("password"), meta(r))
		case "refresh_token":
			resp, err = refreshGrant(r.Context(), d, v.Get("refresh_token"), meta(r))
		case "authorization_code":
			resp, err = codeGrant(r.Context(), d, v, meta(r))
		case mfaGrantType:
			resp, err = mfaGrant(r.Context(), d, v, meta(r))
		case "":
			err = oauthErr(http.StatusBadRequest, "invalid_request", "grant_type is required")
		default:
			err = oauthErr(http.StatusBadRequest, "unsupported_grant_type", "supported: password, refresh_token, authorization_code, "+mfaGrantType)
		}
		if err != nil {
			ew.tokenError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, "application/json", resp)
	})
}

func scopeSubset(asked, have string) bool {
	h := strings.Fields(have)
	for _, s := range strings.Fields(asked) {
		if !slices.Contains(h, s) {
			return false
		}
	}
	return true
}

func passwordGrant(ctx context.Context, d *Deps, username, password string, m identity.Meta) (*tokenResponse, error) {
	if username == "" || password == "" {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "username and password are required")
	}
	u, err := d.Accounts.Login(ctx, username, password, m)
	if err != nil {
		return nil, err
	}
	return finishLogin(ctx, d, u, []string{"pwd"}, m)
}

// finishLogin is where every way of signing in ends (password, social login,
// passkey, the MFA step): it refuses unverified addresses when verification is
// required, asks for a second factor when the user has one and amr holds none
// yet, and otherwise starts a session and mints the token pair.
func finishLogin(ctx context.Context, d *Deps, u *store.User, amr []string, m identity.Meta) (*tokenResponse, error) {
	if u.LockedAt != nil {
		return nil, identity.ErrLocked
	}
	if d.RequireVerifiedEmail && !u.EmailVerified {
		d.Audit.Record(ctx, store.Event{Type: audit.LoginFailed, UserID: u.ID, IP: m.IP, RequestID: m.RequestID, Detail: map[string]string{"reason": "email_not_verified"}})
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "the email address is not verified yet")
	}
	if d.MFA != nil && !policy.HasSecondFactor(amr) {
		methods, err := d.MFA.Methods(ctx, u.ID)
		if err != nil {
			return nil, err
		}
		// The factor just used cannot be the second one too: a passkey sign-in
		// without user verification asks for a TOTP code if there is one, and
		// otherwise stays a one-factor sign-in (its amr passes no mfa route).
		if slices.Contains(amr, "hwk") {
			methods = slices.DeleteFunc(slices.Clone(methods), func(x string) bool { return x == "webauthn" })
		}
		if len(methods) > 0 {
			tok, ttl, err := d.MFA.Challenge(ctx, u.ID, amr, m)
			if err != nil {
				return nil, err
			}
			e := oauthErr(http.StatusBadRequest, "mfa_required", "a second factor is required")
			e.MFAToken, e.MFAExpiresIn, e.MFAMethods = tok, int64(ttl/time.Second), methods
			return nil, e
		}
	}
	sess, refresh, err := d.Families.Start(ctx, token.Login{UserID: u.ID, AMR: amr, UserAgent: m.UserAgent, IP: m.IP})
	if err != nil {
		return nil, err
	}
	d.Audit.Record(ctx, store.Event{Type: audit.LoginSucceeded, UserID: u.ID, SessionID: sess.ID, IP: m.IP, RequestID: m.RequestID, Detail: map[string]string{"amr": strings.Join(amr, " ")}})
	return mintPair(d, u, sess, refresh)
}

func mintPair(d *Deps, u *store.User, sess *store.Session, refresh string) (*tokenResponse, error) {
	at, c, err := d.Access.Mint(token.Subject{
		UserID: u.ID, SessionID: sess.ID, Roles: u.Roles, Plan: u.Plan,
		AMR: sess.AMR, AuthTime: sess.CreatedAt, Scope: d.Scope,
	})
	if err != nil {
		return nil, err
	}
	return &tokenResponse{
		AccessToken:  at,
		TokenType:    "Bearer",
		ExpiresIn:    c.Expiry - c.IssuedAt,
		RefreshToken: refresh,
		Scope:        d.Scope,
	}, nil
}

func refreshGrant(ctx context.Context, d *Deps, presented string, m identity.Meta) (*tokenResponse, error) {
	if presented == "" {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "refresh_token is required")
	}
	res, err := d.Families.Refresh(ctx, presented)
	if errors.Is(err, token.ErrReused) {
		// Why: a rotated token coming back means two parties hold the family's
		// tokens; we cannot tell thief from owner, so the whole family dies.
		d.Audit.Record(ctx, store.Event{Type: audit.RefreshTokenReused, UserID: res.Session.UserID, SessionID: res.Session.ID, IP: m.IP, RequestID: m.RequestID})
		d.Audit.Record(ctx, store.Event{Type: audit.SessionRevoked, UserID: res.Session.UserID, SessionID: res.Session.ID, IP: m.IP, RequestID: m.RequestID, Detail: map[string]string{"reason": "refresh_token_reused"}})
		publishRevocation(ctx, d, []string{res.Session.ID})
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	u, err := d.Accounts.User(ctx, res.Session.UserID)
	if err != nil {
		return nil, err
	}
	if u.LockedAt != nil {
		return nil, token.ErrInvalidGrant
	}
	if d.RequireVerifiedEmail && !u.EmailVerified {
		return nil, token.ErrInvalidGrant
	}
	detail := map[string]string{"generation": strconv.FormatInt(res.Session.Generation, 10)}
	if res.Replayed {
		detail["leeway_replay"] = "true"
	}
	d.Audit.Record(ctx, store.Event{Type: audit.TokenRefreshed, UserID: u.ID, SessionID: res.Session.ID, IP: m.IP, RequestID: m.RequestID, Detail: detail})
	return mintPair(d, u, res.Session, res.Token)
}

func publishRevocation(ctx context.Context, d *Deps, ids []string) {
	if d.Revocations != nil && len(ids) > 0 {
		d.Revocations.Revoke(ctx, ids, d.Now().Add(d.Access.TTL()+time.Minute))
	}
}

// handleRevoke is RFC 7009. Mobile apps are public clients, so no client
// authentication is asked. The answer is 200 whether or not the token was valid
// (§2.2), so it cannot be used to probe tokens.
func handleRevoke(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := params(r)
		if err != nil {
			ew.tokenError(w, r, err)
			return
		}
		tok := v.Get("token")
		if tok == "" {
			ew.oauth(w, r, oauthErr(http.StatusBadRequest, "invalid_request", "token is required"))
			return
		}
		switch hint := v.Get("token_type_hint"); hint {
		case "", "refresh_token", "access_token":
		default:
			ew.oauth(w, r, oauthErr(http.StatusBadRequest, "unsupported_token_type", "token_type_hint must be refresh_token or access_token"))
			return
		}
		var sess *store.Session
		if token.LooksLikeRefresh(tok) {
			sess, _ = d.Families.Lookup(r.Context(), tok)
		} else if c, err := d.Access.Verify(tok); err == nil {
			sess = &store.Session{ID: c.SessionID, UserID: c.Subject}
		}
		if sess != nil {
			revoked, err := d.Sessions.RevokeSession(r.Context(), sess.ID, "revoked", d.Now().UTC())
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				ew.problem(w, r, err)
				return
			}
			if revoked {
				m := meta(r)
				d.Audit.Record(r.Context(), store.Event{Type: audit.SessionRevoked, UserID: sess.UserID, SessionID: sess.ID, IP: m.IP, RequestID: m.RequestID, Detail: map[string]string{"reason": "token_revoked"}})
				publishRevocation(r.Context(), d, []string{sess.ID})
			}
		}
		w.WriteHeader(http.StatusOK)
	})
}
