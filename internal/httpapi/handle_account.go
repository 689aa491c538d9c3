package httpapi

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/google/uuid"
)

type signupRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// handleSignup creates an account and, unless email verification is required,
// signs it in.
func handleSignup(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req signupRequest
		if err := decodeJSON(r, &req); err != nil {
			ew.problem(w, r, err)
			return
		}
		var missing []FieldError
		if req.Email == "" {
			missing = append(missing, FieldError{Field: "email", Reason: "required"})
		}
		if req.Password == "" {
			missing = append(missing, FieldError{Field: "password", Reason: "required"})
		}
		if len(missing) > 0 {
			ew.problem(w, r, badRequest("missing fields", missing...))
			return
		}
		if len(req.Email) > maxFieldLen || len(req.Password) > maxFieldLen {
			ew.problem(w, r, badRequest("a field is too long"))
			return
		}
		m := meta(r)
		u, err := d.Accounts.Signup(r.Context(), req.Email, req.Password, m)
		if errors.Is(err, identity.ErrEmailTaken) && d.RequireVerifiedEmail && d.Email != nil {
			// Why: with verification required a sign-up answer carries no
			// tokens, so it can look exactly like a new account's (a random
			// id); the owner is told by mail instead. Without verification
			// the 409 stays: a 201 would have to carry tokens.
			d.Email.SignupTaken(r.Context(), req.Email, m)
			writeJSON(w, http.StatusCreated, "application/json", map[string]any{"user_id": uuid.NewString(), "email_verification_required": true})
			return
		}
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		if d.RequireVerifiedEmail && !u.EmailVerified {
			if d.Email != nil {
				d.Email.SignupCreated(r.Context(), u, m)
			}
			writeJSON(w, http.StatusCreated, "application/json", map[string]any{"user_id": u.ID, "email_verification_required": true})
			return
		}
		sess, refresh, err := d.Families.Start(r.Context(), token.Login{UserID: u.ID, AMR: []string{"pwd"}, UserAgent: m.UserAgent, IP: m.IP})
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		d.Audit.Record(r.Context(), store.Event{Type: audit.LoginSucceeded, UserID: u.ID, SessionID: sess.ID, IP: m.IP, RequestID: m.RequestID, Detail: map[string]string{"amr": "pwd", "via": "signup"}})
		resp, err := mintPair(d, u, sess, refresh)
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		resp.UserID = u.ID
		writeJSON(w, http.StatusCreated, "application/json", resp)
	})
}

// requireToken admits requests with a valid access token whose session is still
// alive. The identity API reads the session from the store on every call (these
// endpoints touch the store anyway), so a revoked session is refused at once here.
func requireToken(d *Deps, ew errorWriter, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r)
		if !ok {
			// RFC 6750 §3.1: no error code when the request had no credentials.
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
			ew.problem(w, r, newProblem(http.StatusUnauthorized, "unauthorized", "Unauthorized", "an access token is required"))
			return
		}
		c, err := d.Access.Verify(tok)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
			ew.problem(w, r, newProblem(http.StatusUnauthorized, "invalid-token", "Invalid token", "the access token is invalid or expired"))
			return
		}
		sess, err := d.Sessions.SessionByID(r.Context(), c.SessionID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			ew.problem(w, r, err)
			return
		}
		if sess == nil || sess.UserID != c.Subject || !sess.Active(d.Now()) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
			ew.problem(w, r, newProblem(http.StatusUnauthorized, "invalid-token", "Invalid token", "the session has ended"))
			return
		}
		reqctx.From(r.Context()).Claims = c
		next.ServeHTTP(w, r)
	})
}

// bearer extracts an RFC 6750 §2.1 bearer token. Tokens in query strings
// (§2.3) are not accepted: they end up in logs.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Values("Authorization")
	if len(h) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// handleLogout ends the current session, the others, or all.
func handleLogout(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := reqctx.From(r.Context()).Claims
		m := meta(r)
		scope := r.URL.Query().Get("scope")
		var ids []string
		switch scope {
		case "", "current", "local":
			revoked, err := d.Sessions.RevokeSession(r.Context(), c.SessionID, "logout", d.Now().UTC())
			if err != nil {
				ew.problem(w, r, err)
				return
			}
			if revoked {
				ids = []string{c.SessionID}
				d.Audit.Record(r.Context(), store.Event{Type: audit.SessionRevoked, UserID: c.Subject, SessionID: c.SessionID, IP: m.IP, RequestID: m.RequestID, Detail: map[string]string{"reason": "logout"}})
			}
		case "others", "global":
			except := c.SessionID
			if scope == "global" {
				except = ""
			}
			var err error
			// RevokeSessions records the events and tells the edge.
			if _, err = d.Accounts.RevokeSessions(r.Context(), c.Subject, except, "logout_"+scope, m); err != nil {
				ew.problem(w, r, err)
				return
			}
		default:
			ew.problem(w, r, badRequest("scope must be current, others or global", FieldError{Field: "scope", Reason: "invalid"}))
			return
		}
		publishRevocation(r.Context(), d, ids)
		w.WriteHeader(http.StatusNoContent)
	})
}

type sessionView struct {
	ID         string    `json:"id"`
	Current    bool      `json:"current"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	UserAgent  string    `json:"user_agent,omitempty"`
	IP         string    `json:"ip,omitempty"`
	AMR        []string  `json:"amr"`
}

func handleSessions(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := reqctx.From(r.Context()).Claims
		list, err := d.Sessions.ListSessions(r.Context(), c.Subject, d.Now())
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		out := make([]sessionView, 0, len(list))
		for _, s := range list {
			exp := s.IdleExpiresAt
			if s.ExpiresAt.Before(exp) {
				exp = s.ExpiresAt
			}
			amr := s.AMR
			if amr == nil {
				amr = []string{}
			}
			out = append(out, sessionView{ID: s.ID, Current: s.ID == c.SessionID, CreatedAt: s.CreatedAt, LastUsedAt: s.LastUsedAt, ExpiresAt: exp, UserAgent: s.UserAgent, IP: s.IP, AMR: amr})
		}
		writeJSON(w, http.StatusOK, "application/json", map[string]any{"sessions": out})
	})
}

func handleDeleteSession(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := reqctx.From(r.Context()).Claims
		id := r.PathValue("id")
		s, err := d.Sessions.SessionByID(r.Context(), id)
		// Another user's session id answers exactly like a missing one, so ids
		// cannot be probed.
		if errors.Is(err, store.ErrNotFound) || err == nil && (s.UserID != c.Subject || !s.Active(d.Now())) {
			ew.problem(w, r, newProblem(http.StatusNotFound, "not-found", "Not found", "no such session"))
			return
		}
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		revoked, err := d.Sessions.RevokeSession(r.Context(), id, "signed_out_by_user", d.Now().UTC())
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		if revoked {
			m := meta(r)
			d.Audit.Record(r.Context(), store.Event{Type: audit.SessionRevoked, UserID: c.Subject, SessionID: id, IP: m.IP, RequestID: m.RequestID, Detail: map[string]string{"reason": "signed_out_by_user"}})
			publishRevocation(r.Context(), d, []string{id})
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

type userView struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	Roles         []string  `json:"roles"`
	Plan          string    `json:"plan"`
	AMR           []string  `json:"amr"`
	CreatedAt     time.Time `json:"created_at"`
}

func handleUser(d *Deps, ew errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := reqctx.From(r.Context()).Claims
		u, err := d.Accounts.User(r.Context(), c.Subject)
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		email, err := d.Accounts.Email(u)
		if err != nil {
			ew.problem(w, r, err)
			return
		}
		roles := slices.Clone(u.Roles)
		if roles == nil {
			roles = []string{}
		}
		amr := c.AMR
		if amr == nil {
			amr = []string{}
		}
		writeJSON(w, http.StatusOK, "application/json", userView{ID: u.ID, Email: email, EmailVerified: u.EmailVerified, Roles: roles, Plan: u.Plan, AMR: amr, CreatedAt: u.CreatedAt})
	})
}
