package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
	"github.com/gatehouse-dev/gatehouse/internal/alert"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/dashboard"
	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/monitor"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// publishEvent is the audit Recorder's hook onto the monitor's bus; until
// serve has built the monitor (and in the CLI commands) it does nothing.
func (a *app) publishEvent(e store.Event) {
	if m := a.mon.Load(); m != nil {
		m.Publish(e)
	}
}

// decisions is the gateway's Decisions sink: the monitor once built.
func (a *app) decisions() gateway.Decisions {
	if m := a.mon.Load(); m != nil {
		return m
	}
	return nil
}

// openMonitor builds the monitor, its alert dispatcher and the admin
// sessions from cfg.monitor, reading sink secrets from the environment.
func (a *app) openMonitor(getenv func(string) string) error {
	cfg := a.cfg.Monitor
	reg := a.metrics.Registry()
	am, err := monitor.NewAlertMetrics(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	sinks, err := alertSinks(cfg.Alerts, getenv)
	if err != nil {
		return err
	}
	a.alerts = alert.New(alert.Options{
		Sinks:          sinks,
		GroupWait:      cfg.Alerts.GroupWait.D(),
		RepeatInterval: cfg.Alerts.RepeatInterval.D(),
		MaxPerHour:     cfg.Alerts.MaxPerHour,
		Retries:        cfg.Alerts.Retries,
		OnAlert: func(ctx context.Context, al alert.Alert) {
			am.Alert()
			a.audit.Record(ctx, alertEvent(al))
		},
		OnDelivery: am.Delivery,
		OnDrop:     am.Drop,
		Now:        a.now,
		Logger:     a.log,
	})
	var hook monitor.Poster
	if w := cfg.EventsWebhook; w.URL != "" {
		secret := getenv(w.SecretEnv)
		if len(secret) < 16 {
			return fmt.Errorf("monitor.events_webhook.secret_env: %s must hold at least 16 bytes", w.SecretEnv)
		}
		hook = &alert.Webhook{URL: w.URL, Secret: []byte(secret), Now: a.now}
	}
	var sink monitor.EventSink
	if *a.cfg.Audit.Store {
		sink = a.db
	}
	var claims monitor.Claimer
	if a.redis != nil {
		claims = monitor.RedisClaimer{Client: a.redis}
	}
	mon, err := monitor.New(monitor.Options{
		Config: cfg, Bans: a.bans, Alerts: a.alerts, Claims: claims, Record: a.audit.Record, Store: sink, Logger: a.log,
		EventsWebhook: hook, Registerer: reg, Now: a.now,
	})
	if err != nil {
		return err
	}
	if err := monitor.RegisterBans(reg, a.bans.Len); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	a.adminSessions = adminapi.NewSessions(8*time.Hour, a.now)
	a.mon.Store(mon)
	return nil
}

// runMonitor runs the ban list, the monitor and the alert dispatcher until ctx ends.
func (a *app) runMonitor(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { a.alerts.Run(ctx) })
	wg.Go(func() { a.bans.Run(ctx) })
	wg.Go(func() { a.mon.Load().Run(ctx) })
	wg.Wait()
}

// alertSinks builds the configured alert sinks.
func alertSinks(c config.Alerts, getenv func(string) string) ([]alert.Sink, error) {
	var out []alert.Sink
	if c.Webhook.URL != "" {
		secret := getenv(c.Webhook.SecretEnv)
		if len(secret) < 16 {
			return nil, fmt.Errorf("monitor.alerts.webhook.secret_env: %s must hold at least 16 bytes", c.Webhook.SecretEnv)
		}
		out = append(out, &alert.Webhook{URL: c.Webhook.URL, Secret: []byte(secret)})
	}
	if c.Slack.URLEnv != "" {
		u := getenv(c.Slack.URLEnv)
		if !strings.HasPrefix(u, "https://") {
			return nil, fmt.Errorf("monitor.alerts.slack.url_env: %s must hold an https URL", c.Slack.URLEnv)
		}
		out = append(out, &alert.Slack{URL: u})
	}
	if e := c.Email; e.Host != "" {
		pw := ""
		if e.PasswordEnv != "" {
			if pw = getenv(e.PasswordEnv); pw == "" {
				return nil, fmt.Errorf("monitor.alerts.email.password_env: %s is empty", e.PasswordEnv)
			}
		}
		out = append(out, &alert.Email{Host: e.Host, Port: e.Port, TLS: e.TLS, Username: e.Username, Password: pw, From: e.From, To: e.To})
	}
	return out, nil
}

// alertEvent is the audit event that keeps an alert (GET /admin/v1/alerts).
func alertEvent(al alert.Alert) store.Event {
	subjects := make([]string, 0, len(al.Subjects))
	for _, s := range al.Subjects {
		subjects = append(subjects, s.Subject+"×"+strconv.Itoa(s.Count))
	}
	return store.Event{Type: audit.AlertRaised, Detail: map[string]string{
		"alert_id": al.ID, "detector": al.Detector, "title": al.Title, "count": strconv.Itoa(al.Count),
		"bans": strconv.Itoa(al.Bans), "subjects": strings.Join(subjects, " "), "more_subjects": strconv.Itoa(al.MoreSubjects),
		"first_at": al.FirstAt.UTC().Format(time.RFC3339), "last_at": al.LastAt.UTC().Format(time.RFC3339),
	}}
}

// adminScope gives admin-listener requests a request id and client IP, as
// the public listener's requestScope does.
func adminScope(next http.Handler) http.Handler {
	var none reqctx.Proxies
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := &reqctx.Scope{RequestID: reqctx.NewID(), ClientIP: none.ClientIP(r)}
		w.Header().Set("X-Request-Id", sc.RequestID)
		next.ServeHTTP(w, r.WithContext(reqctx.With(r.Context(), sc)))
	})
}

// adminAPI is the /admin/v1 handler (transit has its own, mounted first).
func (a *app) adminAPI() http.Handler {
	auth, err := service.New(a.cfg.Services, service.Options{Getenv: a.getenv, Now: a.now, Logger: a.log,
		OnFailure: func(ctx context.Context, claimed string) {
			a.audit.Record(ctx, store.Event{Type: audit.ServiceAuthFailed, RequestID: reqctx.From(ctx).RequestID,
				IP: reqctx.From(ctx).ClientIP, Detail: map[string]string{"service": claimed}})
		}})
	var services adminapi.ServiceAuth
	if err != nil {
		a.log.Error("admin: service authentication unavailable; dashboard sessions only", "error", err.Error())
	} else {
		services = auth
	}
	var events adminapi.Events
	if *a.cfg.Audit.Store {
		events = a.db
	}
	return adminScope(adminapi.New(adminapi.Deps{
		Sessions: a.adminSessions, Bans: a.bans, Events: events, Users: adminUsers{a}, Stats: a.mon.Load().Stats,
		Status: a.adminStatus, Record: a.audit.Record, Services: services, Logger: a.log, Now: a.now,
		Tokens: adminTokens{a}, RequireMFA: *a.cfg.Admin.RequireMFA, Plans: slices.Sorted(maps.Keys(a.cfg.Plans)),
	}))
}

// adminStatus is the dashboard's key and certificate panel.
func (a *app) adminStatus(ctx context.Context) any {
	out := map[string]any{"keys": a.ring.Keys()}
	if f := a.certLeaf; f != nil {
		if leaf := f(); leaf != nil {
			out["certificate"] = certInfo(leaf, a.now())
		}
	}
	out["bans_active"] = a.bans.Len()
	if m := a.mon.Load(); m != nil {
		out["events_dropped"] = m.Dropped()
	}
	return out
}

func certInfo(c *x509.Certificate, now time.Time) map[string]any {
	return map[string]any{"subject": c.Subject.String(), "dns_names": c.DNSNames, "not_after": c.NotAfter.UTC(),
		"expires_in_seconds": int64(c.NotAfter.Sub(now) / time.Second)}
}

// adminUsers adapts the identity service and the store to adminapi.Users.
type adminUsers struct{ a *app }

func (u adminUsers) List(ctx context.Context, after string, limit int) ([]store.User, error) {
	return u.a.accounts.List(ctx, after, limit)
}

func (u adminUsers) Email(x *store.User) (string, error) { return u.a.accounts.Email(x) }

func (u adminUsers) Get(ctx context.Context, userID string) (*store.User, error) {
	x, err := u.a.accounts.User(ctx, userID)
	return x, adminErr(err)
}

func (u adminUsers) Lock(ctx context.Context, userID, by string) error {
	return adminErr(u.a.accounts.Lock(ctx, userID, adminMeta(ctx)))
}

func (u adminUsers) Unlock(ctx context.Context, userID, by string) error {
	return adminErr(u.a.accounts.Unlock(ctx, userID, adminMeta(ctx)))
}

func (u adminUsers) Grant(ctx context.Context, userID string, roles []string, plan, by string) error {
	return adminErr(u.a.accounts.Grant(ctx, userID, roles, plan, adminMeta(ctx)))
}

func adminMeta(ctx context.Context) identity.Meta {
	sc := reqctx.From(ctx)
	return identity.Meta{RequestID: sc.RequestID, IP: sc.ClientIP, UserAgent: "gatehouse-admin"}
}

func adminErr(err error) error {
	if errors.Is(err, identity.ErrNotFound) {
		return adminapi.ErrNotFound
	}
	return err
}

// adminTokens verifies admin API Bearer tokens: a valid access token whose
// session is still live (a logout or lock ends admin access at once).
type adminTokens struct{ a *app }

func (t adminTokens) Authenticate(ctx context.Context, tok string) (*token.Claims, error) {
	c, err := t.a.access.Verify(tok)
	if err != nil {
		return nil, err
	}
	sess, err := t.a.db.SessionByID(ctx, c.SessionID)
	if err != nil {
		return nil, err
	}
	if sess.UserID != c.Subject || !sess.Active(t.a.now()) {
		return nil, errors.New("session ended")
	}
	return c, nil
}

func (u adminUsers) Sessions(ctx context.Context, userID string) ([]store.Session, error) {
	if _, err := u.a.accounts.User(ctx, userID); errors.Is(err, identity.ErrNotFound) {
		return nil, adminapi.ErrNotFound
	} else if err != nil {
		return nil, err
	}
	return u.a.db.ListSessions(ctx, userID, u.a.now())
}

func (u adminUsers) RevokeSessions(ctx context.Context, userID, reason, by string) (int, error) {
	if _, err := u.a.accounts.User(ctx, userID); errors.Is(err, identity.ErrNotFound) {
		return 0, adminapi.ErrNotFound
	} else if err != nil {
		return 0, err
	}
	ids, err := u.a.accounts.RevokeSessions(ctx, userID, "", reason, identity.Meta{RequestID: reqctx.From(ctx).RequestID, IP: reqctx.From(ctx).ClientIP})
	return len(ids), err
}

// mountMonitor adds the admin API (events, bans, alerts, users, stats) and
// the dashboard to the admin listener's mux.
func (a *app) mountMonitor(mux *http.ServeMux) {
	mux.Handle("/admin/v1/", a.adminAPI())
	mux.Handle("/dashboard/", adminScope(dashboard.New(dashboard.Options{Sessions: a.adminSessions, Accounts: dashboardLogin{a}, Logger: a.log})))
}

// dashboardLogin signs dashboard users in through the identity service, with
// its throttling, lockout and audit events, then the second factor.
type dashboardLogin struct{ a *app }

// dashboardFactors is what dashboard sign-in needs from the MFA service.
type dashboardFactors interface {
	// Methods lists the user's second factors ("otp", "recovery_code", "webauthn").
	Methods(ctx context.Context, userID string) ([]string, error)
	// VerifyCode checks a TOTP or recovery code and returns the amr it adds.
	VerifyCode(ctx context.Context, userID, code string, m identity.Meta) ([]string, error)
}

func (d dashboardLogin) Login(ctx context.Context, email, pw, code, ip string) (dashboard.Account, error) {
	m := identity.Meta{IP: ip, UserAgent: "gatehouse-dashboard", RequestID: reqctx.From(ctx).RequestID}
	u, err := d.a.accounts.Login(ctx, email, pw, m)
	if err != nil {
		return dashboard.Account{}, err
	}
	if !slices.Contains(u.Roles, dashboard.AdminRole) {
		return dashboard.Account{}, dashboard.ErrNotAdmin
	}
	amr := []string{"pwd"}
	var methods []string
	if d.a.factors != nil {
		if methods, err = d.a.factors.Methods(ctx, u.ID); err != nil {
			return dashboard.Account{}, err
		}
	}
	// Passkeys cannot be used from this form; a TOTP or recovery code can.
	hasCode := slices.Contains(methods, "otp") || slices.Contains(methods, "recovery_code")
	switch {
	case hasCode && code == "":
		return dashboard.Account{}, dashboard.ErrCodeRequired
	case hasCode:
		more, err := d.a.factors.VerifyCode(ctx, u.ID, code, m)
		if err != nil {
			return dashboard.Account{}, err
		}
		amr = append(amr, more...)
	case *d.a.cfg.Admin.RequireMFA:
		return dashboard.Account{}, dashboard.ErrSetupRequired
	}
	addr, err := d.a.accounts.Email(u)
	if err != nil {
		addr = email
	}
	d.a.audit.Record(ctx, store.Event{Type: audit.LoginSucceeded, UserID: u.ID, IP: ip, RequestID: m.RequestID,
		Detail: map[string]string{"amr": strings.Join(amr, " "), "via": "dashboard"}})
	return dashboard.Account{UserID: u.ID, Email: addr, Roles: u.Roles}, nil
}
