package gateway

import (
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/problem"
	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// edgeLimits apply to every request, proxied or not.
type edgeLimits struct {
	global *ratelimit.Limit
	perIP  *ratelimit.Limit
	auth   map[string]ratelimit.Limit // by endpoint class
}

func compileEdge(c config.Limits) (edgeLimits, error) {
	e := edgeLimits{auth: map[string]ratelimit.Limit{}}
	parse := func(s string) (*ratelimit.Limit, error) {
		if s == "" {
			return nil, nil
		}
		r, err := config.ParseRate(s)
		if err != nil {
			return nil, err
		}
		return &ratelimit.Limit{Count: r.Count, Period: r.Period}, nil
	}
	var err error
	if e.global, err = parse(c.Global); err != nil {
		return e, err
	}
	if e.perIP, err = parse(c.PerIP); err != nil {
		return e, err
	}
	for name, s := range map[string]string{"signup": c.Auth.Signup, "token": c.Auth.Token, "password_reset": c.Auth.PasswordReset, "mfa": c.Auth.MFA, "email_send": c.Auth.EmailSend} {
		l, err := parse(s)
		if err != nil {
			return e, err
		}
		if l != nil {
			e.auth[name] = *l
		}
	}
	return e, nil
}

// authClass names the identity endpoint class of a path, or "".
func authClass(method, path string) string {
	// Each social sign-in start writes a pending-state row: it shares the
	// token endpoint's per-IP budget so it cannot be used to fill the store.
	if method == http.MethodGet && strings.HasPrefix(path, "/auth/v1/oidc/") && strings.HasSuffix(path, "/authorize") {
		return "token"
	}
	if method != http.MethodPost {
		return ""
	}
	switch {
	case path == "/auth/v1/signup":
		return "signup"
	case path == "/auth/v1/token":
		return "token"
	case path == "/auth/v1/password/reset", path == "/auth/v1/email/verify":
		// Both redeem an emailed link or code: one budget for guessing them.
		return "password_reset"
	case path == "/auth/v1/password/forgot", path == "/auth/v1/email/verify/send":
		return "email_send"
	case strings.HasPrefix(path, "/auth/v1/mfa/"), strings.HasPrefix(path, "/auth/v1/webauthn/login/"):
		return "mfa"
	}
	return ""
}

// Edge is the middleware for every request, after the request scope is set:
// the global budget, the per-IP budget, and the identity endpoint budgets.
func (g *Gateway) Edge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := reqctx.From(r.Context())
		// Bans first: a banned client gets no work done on its behalf, not
		// even a rate-limit decision.
		if g.edgeBanned(w, r, sc) {
			return
		}
		if g.edge.global != nil && !g.allow(w, r, "global", "g", *g.edge.global, false) {
			return
		}
		if g.edge.perIP != nil && sc.ClientIP != "" && !g.allow(w, r, "per_ip", "ip:"+sc.ClientIP, *g.edge.perIP, false) {
			return
		}
		if class := authClass(r.Method, r.URL.Path); class != "" {
			if l, ok := g.edge.auth[class]; ok && !g.allow(w, r, "auth_"+class, "auth:"+class+":"+sc.ClientIP, l, true) {
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// allow takes one GCRA decision; on denial it answers 429 and returns false.
func (g *Gateway) allow(w http.ResponseWriter, r *http.Request, name, key string, l ratelimit.Limit, headers bool) bool {
	d, err := g.limiter.AllowGCRA(r.Context(), key, l, 1)
	if err != nil {
		// Only a cancelled request or a bad limit gets here (store failures are
		// the Limiter's policy); neither is worth serving.
		problem.Write(w, problem.New(http.StatusServiceUnavailable, "unavailable", "Service unavailable", ""), reqctx.From(r.Context()).RequestID)
		return false
	}
	g.obs.Limit(name, d.Allowed)
	if headers || !d.Allowed {
		ratelimit.AddHeaders(w.Header(), name, l, d)
	}
	if !d.Allowed {
		g.obs.Request("", "rate_limited_"+name, http.StatusTooManyRequests, 0)
		sc := reqctx.From(r.Context())
		g.decisions.Decide(Decision{Reason: "rate_limited_" + name, Status: http.StatusTooManyRequests, Method: r.Method, ClientIP: sc.ClientIP, RequestID: sc.RequestID})
		p := problem.New(http.StatusTooManyRequests, "rate-limited", "Too many requests", "slow down and retry after the time in Retry-After")
		problem.Write(w, p, reqctx.From(r.Context()).RequestID)
		return false
	}
	return true
}

// routeLimits applies the route's rate limits and the caller's plan quota, adds
// the RateLimit headers, and returns a 429 problem when one is exhausted.
func (g *Gateway) routeLimits(r *http.Request, h http.Header, rt *route, c *token.Claims, ip string) *problem.Details {
	var retry time.Duration
	for i := range rt.limits {
		rl := &rt.limits[i]
		key := rl.key // "rt:<route>:all"
		switch rl.per {
		case config.PerIP:
			key += ip
		case config.PerUser:
			if c == nil {
				continue // a public route's anonymous caller has no user budget
			}
			key += c.Subject
		}
		d, err := g.limiter.AllowGCRA(r.Context(), key, rl.lim, 1)
		if err != nil {
			return problem.New(http.StatusServiceUnavailable, "unavailable", "Service unavailable", "")
		}
		g.obs.Limit(rl.name, d.Allowed)
		rl.policy.AddHeaders(h, d)
		if !d.Allowed {
			retry = max(retry, d.RetryAfter)
		}
	}
	if rt.quota && c != nil && retry == 0 {
		q, ok := g.plans[c.Plan]
		if !ok {
			q, ok = g.plans[g.defPlan]
		}
		if ok {
			d, err := g.limiter.AllowWindow(r.Context(), "q:"+c.Subject, q.limit, q.window, 1)
			if err != nil {
				return problem.New(http.StatusServiceUnavailable, "unavailable", "Service unavailable", "")
			}
			g.obs.Limit(q.name, d.Allowed)
			q.policy.AddHeaders(h, d)
			if !d.Allowed {
				retry = max(retry, d.RetryAfter)
			}
		}
	}
	if retry > 0 {
		p := problem.New(http.StatusTooManyRequests, "rate-limited", "Too many requests", "the limit for this route or plan is used up; retry after the time in Retry-After")
		p.RetryAfter = retry
		return p
	}
	return nil
}
