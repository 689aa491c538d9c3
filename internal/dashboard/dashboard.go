package dashboard

import (
	"context"
	"embed"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
)

//go:embed assets
var assets embed.FS

// Account is who signed in.
type Account struct {
	UserID string
	Email  string
	Roles  []string
}

// Authenticator checks an email, a password and, for accounts with a second
// factor, a one-time code (TOTP or recovery code) — the identity service's
// Login with its throttling and lockout, then the MFA service. code may be
// empty; then an account that has a second factor gets ErrCodeRequired. ip is
// the client's address.
type Authenticator interface {
	Login(ctx context.Context, email, password, code, ip string) (Account, error)
}

// ErrCodeRequired: the password was right and the account has a second
// factor; sign-in needs its code.
var ErrCodeRequired = errors.New("dashboard: second-factor code required")

// ErrSetupRequired: second factors are required for administrators
// (admin.require_mfa) and the account has none yet.
var ErrSetupRequired = errors.New("dashboard: the account has no second factor")

// ErrNotAdmin is returned by sign-in for an account without the admin role.
var ErrNotAdmin = errors.New("dashboard: not an admin")

// AdminRole is the role a dashboard user needs.
const AdminRole = "admin"

// Options configure the dashboard.
type Options struct {
	Sessions *adminapi.Sessions // required, shared with the admin API
	Accounts Authenticator      // required
	Logger   *slog.Logger       // nil → discarded
}

// csp allows nothing but this origin's own files and API: no inline script,
// no other origins, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// New returns the /dashboard/ handler.
func New(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dashboard/{$}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := o.Sessions.Lookup(r); !ok {
			http.Redirect(w, r, "/dashboard/login", http.StatusSeeOther)
			return
		}
		serveAsset(w, "index.html")
	})
	mux.HandleFunc("GET /dashboard/login", func(w http.ResponseWriter, r *http.Request) {
		serveAsset(w, "login.html")
	})
	mux.HandleFunc("POST /dashboard/login", func(w http.ResponseWriter, r *http.Request) { login(o, w, r) })
	mux.HandleFunc("POST /dashboard/logout", func(w http.ResponseWriter, r *http.Request) {
		sess, ok := o.Sessions.Lookup(r)
		if ok && !adminapi.CheckCSRF(r, sess) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		o.Sessions.Delete(w, r)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /dashboard/assets/{file}", func(w http.ResponseWriter, r *http.Request) {
		switch f := r.PathValue("file"); f {
		case "app.js", "app.css":
			serveAsset(w, f)
		default:
			http.NotFound(w, r)
		}
	})
	return headers(mux)
}

func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		// same-origin, not no-referrer: under no-referrer browsers send
		// "Origin: null" on form posts, and sign-in checks the origin.
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// serveAsset writes one embedded file (names are fixed by the routes above).
func serveAsset(w http.ResponseWriter, name string) {
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		http.NotFound(w, nil)
		return
	}
	w.Header().Set("Content-Type", contentTypes[path.Ext(name)])
	_, _ = w.Write(b)
}

// sameOrigin reports whether a browser's Origin header (when it sent one)
// names this host. Why: the sign-in form has no session yet to hold a CSRF
// token; refusing foreign origins stops login CSRF (signing a victim's browser
// in to the attacker's account).
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return r.Header.Get("Sec-Fetch-Site") == "" || r.Header.Get("Sec-Fetch-Site") == "same-origin"
	}
	u, err := url.Parse(o)
	return err == nil && u.Scheme == "https" && strings.EqualFold(u.Host, r.Host)
}

func login(o Options, w http.ResponseWriter, r *http.Request) {
	fail := func() { http.Redirect(w, r, "/dashboard/login?failed=1", http.StatusSeeOther) }
	if !sameOrigin(r) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		fail()
		return
	}
	email, pw, code := r.PostForm.Get("email"), r.PostForm.Get("password"), r.PostForm.Get("code")
	if email == "" || pw == "" || len(email) > 320 || len(pw) > 4096 || len(code) > 64 {
		fail()
		return
	}
	acct, err := o.Accounts.Login(r.Context(), email, pw, code, reqctx.From(r.Context()).ClientIP)
	if err == nil && !slices.Contains(acct.Roles, AdminRole) {
		err = ErrNotAdmin
	}
	switch {
	case errors.Is(err, ErrCodeRequired) && code == "":
		// Only someone who knows the password gets here; asking for the code
		// tells them nothing they could not learn from the app's own sign-in.
		http.Redirect(w, r, "/dashboard/login?code=1", http.StatusSeeOther)
		return
	case errors.Is(err, ErrSetupRequired):
		o.Logger.InfoContext(r.Context(), "dashboard sign-in refused", "reason", err.Error(), "request_id", reqctx.From(r.Context()).RequestID)
		http.Redirect(w, r, "/dashboard/login?failed=setup", http.StatusSeeOther)
		return
	}
	if err != nil {
		// One answer for every failure: a wrong password, an unknown or
		// locked account and a non-admin all look the same.
		o.Logger.InfoContext(r.Context(), "dashboard sign-in refused", "reason", err.Error(), "request_id", reqctx.From(r.Context()).RequestID)
		fail()
		return
	}
	o.Sessions.Create(w, acct.UserID, acct.Email)
	http.Redirect(w, r, "/dashboard/", http.StatusSeeOther)
}
