package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/ban"
	"github.com/gatehouse-dev/gatehouse/internal/monitor"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/problem"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// Events queries stored events (*store.DB).
type Events interface {
	QueryEvents(ctx context.Context, q store.EventQuery) ([]store.Event, error)
}

// Bans is the ban list (ban.List).
type Bans interface {
	Add(ctx context.Context, b store.Ban) (store.Ban, error)
	Lift(ctx context.Context, id string) (store.Ban, error)
	Active() []store.Ban
}

// ErrNotFound is what Users returns for an unknown user.
var ErrNotFound = errors.New("not found")

// Users are the accounts and their sessions. Every method but Email answers
// ErrNotFound for an unknown user.
type Users interface {
	List(ctx context.Context, afterID string, limit int) ([]store.User, error)
	Get(ctx context.Context, userID string) (*store.User, error)
	Email(u *store.User) (string, error)
	Sessions(ctx context.Context, userID string) ([]store.Session, error)
	RevokeSessions(ctx context.Context, userID, reason, by string) (int, error)
	// Lock locks the account and signs it out everywhere; Unlock undoes the lock.
	Lock(ctx context.Context, userID, by string) error
	Unlock(ctx context.Context, userID, by string) error
	// Grant replaces the roles (nil: keep) and the plan ("": keep), and signs
	// the user out so no token keeps the old claims.
	Grant(ctx context.Context, userID string, roles []string, plan, by string) error
}

// TokenAuth verifies a Bearer access token and that its session is live.
type TokenAuth interface {
	Authenticate(ctx context.Context, accessToken string) (*token.Claims, error)
}

// ServiceAuth checks HTTP Basic service credentials (service.Authenticator).
type ServiceAuth interface {
	Authenticate(ctx context.Context, id, secret string) (*service.Principal, error)
}

// Deps are the admin API's dependencies. Sessions and Bans are required.
type Deps struct {
	Sessions *Sessions
	Bans     Bans
	Events   Events // nil: /events and /alerts answer 503
	Users    Users  // nil: /users answers 503
	// Stats returns the live-chart points. nil: empty.
	Stats func() []monitor.Point
	// Status returns key and certificate status for the dashboard. nil: empty.
	Status func(ctx context.Context) any
	// Record writes audit events (manual bans and unbans). nil: not recorded.
	Record func(ctx context.Context, e store.Event)
	// Services authenticates HTTP Basic callers; only services holding the
	// "admin" permission are admitted. nil: sessions only.
	Services ServiceAuth
	// Tokens verifies Bearer access tokens; only tokens with the "admin" role
	// (and, with RequireMFA, a second factor in amr) are admitted. nil: none.
	Tokens TokenAuth
	// RequireMFA admits admin accounts only with a second factor.
	RequireMFA bool
	// Plans are the configured plan names; a plan outside them is refused.
	// Empty: any plan name is accepted.
	Plans  []string
	Logger *slog.Logger
	Now    func() time.Time
}

type server struct {
	d Deps
}

// New returns the /admin/v1/ handler.
func New(d Deps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	s := &server{d: d}
	mux := http.NewServeMux()
	mux.Handle("GET /admin/v1/session", s.auth(s.handleSession))
	mux.Handle("GET /admin/v1/events", s.auth(s.handleEvents))
	mux.Handle("GET /admin/v1/alerts", s.auth(s.handleAlerts))
	mux.Handle("GET /admin/v1/bans", s.auth(s.handleBans))
	mux.Handle("POST /admin/v1/bans", s.auth(s.handleCreateBan))
	mux.Handle("DELETE /admin/v1/bans/{id}", s.auth(s.handleLiftBan))
	mux.Handle("GET /admin/v1/stats", s.auth(s.handleStats))
	mux.Handle("GET /admin/v1/status", s.auth(s.handleStatus))
	mux.Handle("GET /admin/v1/users", s.auth(s.handleUsers))
	mux.Handle("GET /admin/v1/users/{id}/sessions", s.auth(s.handleUserSessions))
	mux.Handle("POST /admin/v1/users/{id}/revoke-sessions", s.auth(s.handleRevokeSessions))
	mux.Handle("GET /admin/v1/users/{id}", s.auth(s.handleUser))
	mux.Handle("POST /admin/v1/users/{id}/lock", s.auth(s.handleLock))
	mux.Handle("POST /admin/v1/users/{id}/unlock", s.auth(s.handleUnlock))
	mux.Handle("PUT /admin/v1/users/{id}/plan", s.auth(s.handlePlan))
	mux.Handle("PUT /admin/v1/users/{id}/roles", s.auth(s.handleRoles))
	mux.Handle("/admin/v1/", s.auth(func(w http.ResponseWriter, r *http.Request, _ principal) {
		s.fail(w, r, problem.New(http.StatusNotFound, "not-found", "Not found", "no such admin endpoint"))
	}))
	return mux
}

// principal is who is calling: an admin (by dashboard session or access
// token) or a service.
type principal struct {
	name    string // "admin:<user id>" or "service:<id>"
	session *Session
}

// auth authenticates every request and, for state-changing requests, checks
// the CSRF defences before h runs.
func (s *server) auth(h func(http.ResponseWriter, *http.Request, principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		p, ok := s.authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse admin", charset="UTF-8"`)
			s.fail(w, r, problem.New(http.StatusUnauthorized, "unauthorized", "Unauthorized", "sign in to the dashboard, or send an admin access token (with a second factor when required) or an admin service credential"))
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			// Why: a session cookie is ambient authority; a page on another
			// site could make the browser send it. The CSRF token proves the
			// request came from our own page. Basic credentials are ambient
			// too once a browser caches them, so bodies must be JSON (which a
			// cross-site form cannot send without a CORS preflight we never
			// grant).
			if p.session != nil && !CheckCSRF(r, p.session) {
				s.fail(w, r, problem.New(http.StatusForbidden, "csrf", "Forbidden", "missing or wrong "+CSRFHeader))
				return
			}
			if r.ContentLength != 0 && !isJSON(r.Header.Get("Content-Type")) {
				s.fail(w, r, problem.New(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type", "send application/json"))
				return
			}
		}
		h(w, r, p)
	})
}

func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

func (s *server) authenticate(r *http.Request) (principal, bool) {
	if sess, ok := s.d.Sessions.Lookup(r); ok {
		return principal{name: "admin:" + sess.UserID, session: sess}, true
	}
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if strings.EqualFold(scheme, "Bearer") {
		// Why a Bearer token is not ambient authority: browsers never attach
		// it by themselves, so no CSRF token is needed for it.
		if s.d.Tokens == nil || len(r.Header.Values("Authorization")) != 1 {
			return principal{}, false
		}
		c, err := s.d.Tokens.Authenticate(r.Context(), strings.TrimSpace(cred))
		if err != nil || c == nil || !slices.Contains(c.Roles, "admin") || s.d.RequireMFA && !policy.HasSecondFactor(c.AMR) {
			return principal{}, false
		}
		return principal{name: "admin:" + c.Subject}, true
	}
	id, secret, ok := r.BasicAuth()
	if !ok || s.d.Services == nil {
		return principal{}, false
	}
	p, err := s.d.Services.Authenticate(r.Context(), id, secret)
	if err != nil || p == nil || !p.Has(service.PermAdmin) {
		return principal{}, false
	}
	return principal{name: "service:" + p.ID}, true
}

func (s *server) fail(w http.ResponseWriter, r *http.Request, p *problem.Details) {
	problem.Write(w, p, reqctx.From(r.Context()).RequestID)
}

func (s *server) internal(w http.ResponseWriter, r *http.Request, op string, err error) {
	rid := reqctx.From(r.Context()).RequestID
	s.d.Logger.ErrorContext(r.Context(), "admin api: "+op, "request_id", rid, "error", err.Error())
	s.fail(w, r, problem.New(http.StatusInternalServerError, "internal", "Internal error", ""))
}

func bad(field, reason string) *problem.Details {
	p := problem.New(http.StatusBadRequest, "bad-request", "Bad request", field+": "+reason)
	p.Errors = []problem.FieldError{{Field: field, Reason: reason}}
	return p
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	problem.JSON(w, status, "application/json", v)
}

func (s *server) handleSession(w http.ResponseWriter, r *http.Request, p principal) {
	out := map[string]any{"principal": p.name}
	if p.session != nil {
		out["email"], out["csrf_token"], out["expires_at"] = p.session.Email, p.session.CSRF, p.session.Expires.UTC()
	}
	writeJSON(w, 200, out)
}

// eventQuery parses the filters of /events: type, user_id, session_id, ip,
// since, before (RFC 3339) and limit (1-1000).
func eventQuery(v url.Values) (store.EventQuery, *problem.Details) {
	var q store.EventQuery
	for k := range v {
		switch k {
		case "type", "user_id", "session_id", "ip", "since", "before", "limit":
		default:
			return q, bad(k, "unknown filter")
		}
		if len(v[k]) != 1 {
			return q, bad(k, "give it once")
		}
	}
	q.Type, q.UserID, q.SessionID, q.IP = v.Get("type"), v.Get("user_id"), v.Get("session_id"), v.Get("ip")
	for _, f := range []struct{ name, val string }{{"type", q.Type}, {"user_id", q.UserID}, {"session_id", q.SessionID}, {"ip", q.IP}} {
		if len(f.val) > 256 {
			return q, bad(f.name, "too long")
		}
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"before", &q.Before}} {
		if s := v.Get(f.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return q, bad(f.name, "must be an RFC 3339 time")
			}
			*f.dst = t
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return q, bad("limit", "must be 1-1000")
		}
		q.Limit = n
	}
	if q.Limit == 0 {
		q.Limit = 100
	}
	return q, nil
}

// pageOf answers a page of events with the cursor for the next one.
func pageOf(events []store.Event, limit int) map[string]any {
	out := make([]any, len(events))
	for i, e := range events {
		out[i] = monitor.Wire(e)
	}
	page := map[string]any{"events": out}
	if len(events) == limit && limit > 0 {
		page["next_before"] = events[len(events)-1].Time.UTC().Format(time.RFC3339Nano)
	}
	return page
}

func (s *server) handleEvents(w http.ResponseWriter, r *http.Request, _ principal) {
	if s.d.Events == nil {
		s.fail(w, r, problem.New(http.StatusServiceUnavailable, "unavailable", "Events are not stored", "audit.store is off"))
		return
	}
	q, p := eventQuery(r.URL.Query())
	if p != nil {
		s.fail(w, r, p)
		return
	}
	evs, err := s.d.Events.QueryEvents(r.Context(), q)
	if err != nil {
		s.internal(w, r, "query events", err)
		return
	}
	writeJSON(w, 200, pageOf(evs, q.Limit))
}

func (s *server) handleAlerts(w http.ResponseWriter, r *http.Request, _ principal) {
	if s.d.Events == nil {
		s.fail(w, r, problem.New(http.StatusServiceUnavailable, "unavailable", "Events are not stored", "audit.store is off"))
		return
	}
	v := r.URL.Query()
	v.Del("type")
	q, p := eventQuery(v)
	if p != nil {
		s.fail(w, r, p)
		return
	}
	q.Type = audit.AlertRaised
	evs, err := s.d.Events.QueryEvents(r.Context(), q)
	if err != nil {
		s.internal(w, r, "query alerts", err)
		return
	}
	page := pageOf(evs, q.Limit)
	page["alerts"] = page["events"]
	delete(page, "events")
	writeJSON(w, 200, page)
}

type wireBan struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	Value     string     `json:"value"`
	Reason    string     `json:"reason,omitempty"`
	Source    string     `json:"source,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	LiftedAt  *time.Time `json:"lifted_at,omitempty"`
}

func wire(b store.Ban) wireBan {
	return wireBan{ID: b.ID, Kind: b.Kind, Value: b.Value, Reason: b.Reason, Source: b.Source, CreatedAt: b.CreatedAt.UTC(), ExpiresAt: b.ExpiresAt.UTC(), LiftedAt: b.LiftedAt}
}

func (s *server) handleBans(w http.ResponseWriter, r *http.Request, _ principal) {
	active := s.d.Bans.Active()
	out := make([]wireBan, len(active))
	for i, b := range active {
		out[i] = wire(b)
	}
	writeJSON(w, 200, map[string]any{"bans": out})
}

// banRequest is the body of POST /admin/v1/bans.
type banRequest struct {
	Kind     string `json:"kind"`
	Value    string `json:"value"`
	Duration string `json:"duration"` // Go duration or "30d"-style days, e.g. "15m", "2h", "1d"
	Reason   string `json:"reason"`
}

// ParseDuration accepts Go durations ("90m", "1h30m") and whole days ("3d").
func ParseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok && d != "" && !strings.ContainsAny(d, "hmsuµn.") {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 30 {
			return 0, errors.New("days must be 1-30")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("not a duration (e.g. 15m, 2h, 1d)")
	}
	return d, nil
}

func (s *server) handleCreateBan(w http.ResponseWriter, r *http.Request, p principal) {
	var req banRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 8<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.fail(w, r, bad("body", "must be a JSON object with kind, value, duration and reason"))
		return
	}
	if dec.More() {
		s.fail(w, r, bad("body", "one JSON object only"))
		return
	}
	d, err := ParseDuration(req.Duration)
	if err != nil {
		s.fail(w, r, bad("duration", err.Error()))
		return
	}
	if d <= 0 || d > ban.MaxDuration {
		s.fail(w, r, bad("duration", "must be positive and at most 30d"))
		return
	}
	if len(req.Reason) > 500 {
		s.fail(w, r, bad("reason", "at most 500 bytes"))
		return
	}
	now := s.d.Now().UTC()
	b, err := s.d.Bans.Add(r.Context(), store.Ban{Kind: req.Kind, Value: req.Value, Reason: req.Reason, Source: p.name, CreatedAt: now, ExpiresAt: now.Add(d)})
	if errors.Is(err, ban.ErrInvalid) {
		field := "value"
		if strings.Contains(err.Error(), "kind") {
			field = "kind"
		}
		s.fail(w, r, bad(field, strings.TrimPrefix(err.Error(), ban.ErrInvalid.Error()+": ")))
		return
	}
	if err != nil {
		s.internal(w, r, "create ban", err)
		return
	}
	s.record(r.Context(), monitor.BanEvent(audit.BanCreated, b, p.name))
	w.Header().Set("Location", "/admin/v1/bans/"+url.PathEscape(b.ID))
	writeJSON(w, http.StatusCreated, wire(b))
}

func (s *server) handleLiftBan(w http.ResponseWriter, r *http.Request, p principal) {
	id := r.PathValue("id")
	if id == "" || len(id) > 128 {
		s.fail(w, r, bad("id", "not a ban id"))
		return
	}
	b, err := s.d.Bans.Lift(r.Context(), id)
	if errors.Is(err, ban.ErrNotFound) {
		s.fail(w, r, problem.New(http.StatusNotFound, "not-found", "Not found", "no ban in force with that id"))
		return
	}
	if err != nil {
		s.internal(w, r, "lift ban", err)
		return
	}
	s.record(r.Context(), monitor.BanEvent(audit.BanLifted, b, p.name))
	writeJSON(w, 200, wire(b))
}

func (s *server) record(ctx context.Context, e store.Event) {
	if s.d.Record != nil {
		e.RequestID = reqctx.From(ctx).RequestID
		s.d.Record(ctx, e)
	}
}

func (s *server) handleStats(w http.ResponseWriter, r *http.Request, _ principal) {
	var pts []monitor.Point
	if s.d.Stats != nil {
		pts = s.d.Stats()
	}
	if pts == nil {
		pts = []monitor.Point{}
	}
	writeJSON(w, 200, map[string]any{"points": pts})
}

func (s *server) handleStatus(w http.ResponseWriter, r *http.Request, _ principal) {
	var v any = map[string]any{}
	if s.d.Status != nil {
		v = s.d.Status(r.Context())
	}
	writeJSON(w, 200, v)
}

type wireUser struct {
	ID            string     `json:"id"`
	Email         string     `json:"email"`
	EmailVerified bool       `json:"email_verified"`
	Roles         []string   `json:"roles"`
	Plan          string     `json:"plan"`
	Locked        bool       `json:"locked"`
	LockedAt      *time.Time `json:"locked_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
}

func (s *server) wireUser(u *store.User) wireUser {
	email, err := s.d.Users.Email(u)
	if err != nil {
		email = "(cannot be opened)"
	}
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return wireUser{ID: u.ID, Email: email, EmailVerified: u.EmailVerified, Roles: roles, Plan: u.Plan,
		Locked: u.LockedAt != nil, LockedAt: u.LockedAt, CreatedAt: u.CreatedAt.UTC()}
}

func (s *server) handleUsers(w http.ResponseWriter, r *http.Request, _ principal) {
	if s.d.Users == nil {
		s.fail(w, r, problem.New(http.StatusServiceUnavailable, "unavailable", "Unavailable", ""))
		return
	}
	after := r.URL.Query().Get("after")
	limit := 100
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			s.fail(w, r, bad("limit", "must be 1-1000"))
			return
		}
		limit = n
	}
	if len(after) > 128 {
		s.fail(w, r, bad("after", "too long"))
		return
	}
	us, err := s.d.Users.List(r.Context(), after, limit)
	if err != nil {
		s.internal(w, r, "list users", err)
		return
	}
	out := make([]wireUser, 0, len(us))
	for i := range us {
		u := &us[i]
		out = append(out, s.wireUser(u))
	}
	page := map[string]any{"users": out}
	if len(us) == limit {
		page["next_after"] = us[len(us)-1].ID
	}
	writeJSON(w, 200, page)
}

type wireSession struct {
	ID         string    `json:"id"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	AMR        []string  `json:"amr"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

func (s *server) handleUserSessions(w http.ResponseWriter, r *http.Request, _ principal) {
	if s.d.Users == nil {
		s.fail(w, r, problem.New(http.StatusServiceUnavailable, "unavailable", "Unavailable", ""))
		return
	}
	ss, err := s.d.Users.Sessions(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		s.fail(w, r, problem.New(http.StatusNotFound, "not-found", "Not found", "no such user"))
		return
	}
	if err != nil {
		s.internal(w, r, "list sessions", err)
		return
	}
	out := make([]wireSession, 0, len(ss))
	for _, x := range ss {
		out = append(out, wireSession{ID: x.ID, UserAgent: x.UserAgent, IP: x.IP, AMR: x.AMR, CreatedAt: x.CreatedAt.UTC(), LastUsedAt: x.LastUsedAt.UTC(), ExpiresAt: x.ExpiresAt.UTC()})
	}
	writeJSON(w, 200, map[string]any{"sessions": out})
}

func (s *server) handleRevokeSessions(w http.ResponseWriter, r *http.Request, p principal) {
	if s.d.Users == nil {
		s.fail(w, r, problem.New(http.StatusServiceUnavailable, "unavailable", "Unavailable", ""))
		return
	}
	n, err := s.d.Users.RevokeSessions(r.Context(), r.PathValue("id"), "admin", p.name)
	if errors.Is(err, ErrNotFound) {
		s.fail(w, r, problem.New(http.StatusNotFound, "not-found", "Not found", "no such user"))
		return
	}
	if err != nil {
		s.internal(w, r, "revoke sessions", err)
		return
	}
	writeJSON(w, 200, map[string]any{"revoked": n})
}

// userID is the {id} path value if it can name a user at all.
func userID(r *http.Request) (string, *problem.Details) {
	id := r.PathValue("id")
	if id == "" || len(id) > 128 {
		return "", bad("id", "not a user id")
	}
	return id, nil
}

// userOp runs one change to a user and answers the user as it is afterwards.
func (s *server) userOp(w http.ResponseWriter, r *http.Request, op string, fn func(id string) error) {
	if s.d.Users == nil {
		s.fail(w, r, problem.New(http.StatusServiceUnavailable, "unavailable", "Unavailable", ""))
		return
	}
	id, p := userID(r)
	if p != nil {
		s.fail(w, r, p)
		return
	}
	err := fn(id)
	var u *store.User
	if err == nil {
		u, err = s.d.Users.Get(r.Context(), id)
	}
	if errors.Is(err, ErrNotFound) {
		s.fail(w, r, problem.New(http.StatusNotFound, "not-found", "Not found", "no such user"))
		return
	}
	if err != nil {
		s.internal(w, r, op, err)
		return
	}
	writeJSON(w, 200, s.wireUser(u))
}

func (s *server) handleUser(w http.ResponseWriter, r *http.Request, _ principal) {
	s.userOp(w, r, "get user", func(string) error { return nil })
}

func (s *server) handleLock(w http.ResponseWriter, r *http.Request, p principal) {
	s.userOp(w, r, "lock user", func(id string) error { return s.d.Users.Lock(r.Context(), id, p.name) })
}

func (s *server) handleUnlock(w http.ResponseWriter, r *http.Request, p principal) {
	s.userOp(w, r, "unlock user", func(id string) error { return s.d.Users.Unlock(r.Context(), id, p.name) })
}

// roleRe is what a role name may look like (the same rule as the config's).
var roleRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// decodeBody reads one small JSON object into v, refusing unknown fields.
func decodeBody(r *http.Request, v any, want string) *problem.Details {
	dec := json.NewDecoder(io.LimitReader(r.Body, 8<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		return bad("body", "must be one JSON object with "+want)
	}
	return nil
}

func (s *server) handlePlan(w http.ResponseWriter, r *http.Request, p principal) {
	var req struct {
		Plan *string `json:"plan"`
	}
	if pd := decodeBody(r, &req, "plan"); pd != nil {
		s.fail(w, r, pd)
		return
	}
	switch {
	case req.Plan == nil || *req.Plan == "":
		s.fail(w, r, bad("plan", "required"))
		return
	case len(s.d.Plans) > 0 && !slices.Contains(s.d.Plans, *req.Plan):
		s.fail(w, r, bad("plan", "not one of the configured plans ("+strings.Join(s.d.Plans, ", ")+")"))
		return
	case len(*req.Plan) > 64:
		s.fail(w, r, bad("plan", "at most 64 bytes"))
		return
	}
	s.userOp(w, r, "set plan", func(id string) error { return s.d.Users.Grant(r.Context(), id, nil, *req.Plan, p.name) })
}

func (s *server) handleRoles(w http.ResponseWriter, r *http.Request, p principal) {
	var req struct {
		Roles *[]string `json:"roles"`
	}
	if pd := decodeBody(r, &req, "roles"); pd != nil {
		s.fail(w, r, pd)
		return
	}
	if req.Roles == nil {
		s.fail(w, r, bad("roles", "required (an empty list removes every role)"))
		return
	}
	roles := *req.Roles
	if len(roles) > 32 {
		s.fail(w, r, bad("roles", "at most 32"))
		return
	}
	for i, role := range roles {
		if !roleRe.MatchString(role) {
			s.fail(w, r, bad("roles["+strconv.Itoa(i)+"]", "must match "+roleRe.String()))
			return
		}
	}
	if roles == nil {
		roles = []string{}
	}
	s.userOp(w, r, "set roles", func(id string) error { return s.d.Users.Grant(r.Context(), id, roles, "", p.name) })
}
