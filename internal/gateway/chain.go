package gateway

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/problem"
	"github.com/gatehouse-dev/gatehouse/internal/protect"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// ServeHTTP is the chain every proxied request passes, in order. The edge
// (request id, client IP, edge limits, security headers) ran before it.
//
//  1. route        — the first configured route matching method and path, or 404/405
//  2. authenticate — a Bearer token: verified (cache), not revoked
//  3. authorise    — access mode, roles, scopes, MFA, the route's CEL rule
//  4. limit        — the route's rate limits and the caller's plan quota
//  5. proxy        — the upstream contract (headers stripped, identity set,
//     forwarding rebuilt), then the response rule before any byte is sent
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := g.now()
	sc := reqctx.From(r.Context())
	// One allocation for the per-request state the chain needs on the heap.
	st := &chainState{sw: statusWriter{ResponseWriter: w}}
	sw := &st.sw
	decision, routeName := "allowed", ""
	var params map[string]string
	defer func() {
		g.obs.Request(routeName, decision, sw.status(), g.now().Sub(start))
		g.decisions.Decide(decisionOf(sc, r.Method, routeName, decision, sw.status(), params))
	}()

	// 1. route
	if strings.Contains(r.URL.RawPath, "%2F") || strings.Contains(r.URL.RawPath, "%2f") || strings.ContainsAny(r.URL.Path, "\\\x00") {
		// An encoded slash or a backslash would let the upstream see a
		// different path than the one the route table judged.
		decision = "bad_path"
		g.deny(sw, sc, problem.New(http.StatusBadRequest, "bad-path", "Bad path", "encoded slashes and backslashes are not accepted in paths"))
		return
	}
	if ok, name := g.preflight(sw, r); ok {
		decision, routeName = "preflight", name
		return
	}
	rt, ps, allow := g.table.lookup(r.Method, r.URL.Path)
	params = ps
	if rt == nil {
		if len(allow) > 0 {
			decision = "method_not_allowed"
			sw.Header().Set("Allow", strings.Join(allow, ", "))
			g.deny(sw, sc, problem.New(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", ""))
			return
		}
		decision = "no_route"
		g.deny(sw, sc, problem.New(http.StatusNotFound, "not-found", "Not found", "no such endpoint"))
		return
	}
	routeName = rt.name

	// 2. authenticate
	claims, authErr := g.authenticate(r)
	if authErr != "" && rt.rule.Access != policy.Public {
		decision = authErr
		sw.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
		g.deny(sw, sc, problem.New(http.StatusUnauthorized, "invalid-token", "Invalid token", "the access token is invalid, expired or revoked"))
		return
	}
	sc.Claims = claims
	// A banned user or session is refused as soon as it is known who it is.
	if claims != nil && g.banned(sw, sc) {
		decision = "banned"
		return
	}

	// 3. authorise
	in := &st.in
	*in = policy.Input{Method: r.Method, PathParams: params, Header: r.Header, Claims: claims, Now: start}
	if r.URL.RawQuery != "" && (rt.rule.Allow != nil || rt.rule.ResponseAllow != nil) {
		in.Query = r.URL.Query() // parsed only when a rule could read it (nil: none)
	}
	if d := rt.rule.Decide(r.Context(), in); !d.Allow {
		decision = d.Reason
		if d.Status == http.StatusUnauthorized {
			sw.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
			g.deny(sw, sc, problem.New(http.StatusUnauthorized, "unauthorized", "Unauthorized", "an access token is required"))
			return
		}
		g.deny(sw, sc, problem.New(http.StatusForbidden, "forbidden", "Forbidden", "not allowed"))
		return
	}

	// 4. limit (an oversized body is refused first: it must not use up quota)
	if r.ContentLength > rt.maxBody {
		decision = "too_large"
		g.deny(sw, sc, problem.New(http.StatusRequestEntityTooLarge, "too-large", "Request body too large", ""))
		return
	}
	if p := g.routeLimits(r, sw.Header(), rt, claims, sc.ClientIP); p != nil {
		decision = "rate_limited"
		g.deny(sw, sc, p)
		return
	}

	// 5. protect: schema and mass assignment, JSON limits, WAF
	if rt.prot != nil {
		if v, blocked := g.checkRequestProtection(r, rt, params); blocked {
			// "waf_blocked" for the CRS (the monitor files it as waf_blocked),
			// "protect_<kind>" for schema, mass assignment and JSON limits.
			decision = "protect_" + string(v.Findings[0].Kind)
			if v.Findings[0].Kind == protect.KindWAF {
				decision = "waf_blocked"
			}
			g.deny(sw, sc, v.Problem())
			return
		}
	}

	// 6. proxy
	if origin := r.Header.Get("Origin"); rt.cors.allowed(origin) {
		rt.cors.setHeaders(sw.Header(), origin)
	}
	if r.Body != nil && r.Body != http.NoBody {
		// (A request without a body has nothing to limit.)
		r.Body = http.MaxBytesReader(sw, r.Body, rt.maxBody)
	}
	if rt.rule.ResponseAllow != nil {
		r = r.WithContext(withRoute(r.Context(), &routeScope{route: rt, input: in}))
	}
	rt.proxy.ServeHTTP(sw, r)
	if sw.denied != "" {
		decision = sw.denied
	}
}

// authenticate reads and checks the Bearer token. It returns nil claims and ""
// when there is no token, or a short reason when there is a bad one.
func (g *Gateway) authenticate(r *http.Request) (*token.Claims, string) {
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		return nil, ""
	}
	scheme, tok, ok := strings.Cut(h[0], " ")
	if len(h) != 1 || !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return nil, "invalid_token"
	}
	c, err := g.verifier.Verify(strings.TrimSpace(tok))
	if errors.Is(err, token.ErrExpired) {
		// Told apart from invalid_token so that the forgery detector counts
		// bad signatures, not clients that held a token too long.
		return nil, "expired_token"
	}
	if err != nil {
		return nil, "invalid_token"
	}
	// Why on every request, after the cache: a signature stays valid after
	// logout, lock or reuse detection; only the revocation list knows.
	if g.revoked.IsRevoked(c.SessionID) {
		return nil, "revoked_session"
	}
	return c, ""
}

func (g *Gateway) deny(w http.ResponseWriter, sc *reqctx.Scope, p *problem.Details) {
	problem.Write(w, p, sc.RequestID)
}

// chainState is what ServeHTTP keeps on the heap for one request.
type chainState struct {
	sw statusWriter
	in policy.Input
}

// statusWriter remembers the status for metrics. Unwrap lets
// http.ResponseController reach Flush and Hijack (streaming, WebSocket).
type statusWriter struct {
	http.ResponseWriter
	code   int
	denied string // set by the proxy when it refused the response
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}
