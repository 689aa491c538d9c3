package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/protect"
	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// Verifier verifies access tokens (the verified-token cache).
type Verifier interface {
	Verify(tok string) (*token.Claims, error)
}

// Revocations answers whether a session was revoked.
type Revocations interface {
	IsRevoked(sid string) bool
}

// Limiter makes rate-limit decisions (ratelimit.Limiter).
type Limiter interface {
	AllowGCRA(ctx context.Context, key string, l ratelimit.Limit, n int64) (ratelimit.Decision, error)
	AllowWindow(ctx context.Context, key string, limit int64, window time.Duration, n int64) (ratelimit.Decision, error)
}

// Recorder records audit events.
type Recorder interface {
	Record(ctx context.Context, e store.Event)
}

// Observer receives one call per request the gateway decides, for metrics.
type Observer interface {
	// Request is called once per request: the route name ("" when none
	// matched), the decision ("allowed" or a denial reason), the status sent and
	// the time spent.
	Request(route, decision string, status int, d time.Duration)
	// Limit is called for every rate-limit decision, by limit name.
	Limit(name string, allowed bool)
}

// Options configure the gateway. Required: Routes' upstreams, Verifier,
// Revocations, Limiter, Policy.
type Options struct {
	Routes       []config.Route
	Upstreams    map[string]config.Upstream
	Plans        map[string]string
	DefaultPlan  string
	Limits       config.Limits
	MaxBodyBytes int64 // server.max_body_bytes: the default per-route body limit

	Verifier    Verifier
	Revocations Revocations
	Limiter     Limiter
	Policy      *policy.Env
	Observer    Observer // nil: no metrics
	// Bans, optional, refuses banned addresses, users and sessions (nil: none).
	Bans Bans
	// Decisions, optional, receives every decided request (nil: none).
	Decisions Decisions
	Logger    *slog.Logger
	Now       func() time.Time
	// Transport, if set, replaces the pooled per-upstream transports (tests).
	Transport http.RoundTripper
	// UpstreamTLS, optional, is the client TLS configuration per upstream name
	// (pinned CA, mTLS client certificate); an upstream without an entry uses the
	// system roots. Built by the caller (tlsutil.ClientConfig).
	UpstreamTLS map[string]*tls.Config
	// OpenAPI holds each upstream's OpenAPI document (by upstream name), for
	// routes with protect.openapi / protect.response.
	OpenAPI map[string][]byte
	// Audit, optional, records protection events (blocked requests, filtered
	// responses, secrets found).
	Audit Recorder
}

// Gateway is the compiled gateway.
type Gateway struct {
	table      table
	verifier   Verifier
	revoked    Revocations
	limiter    Limiter
	obs        Observer
	bans       Bans
	decisions  Decisions
	log        *slog.Logger
	now        func() time.Time
	plans      map[string]quota
	defPlan    string
	edge       edgeLimits
	transports []*http.Transport
	audit      Recorder
	specs      map[string]*protect.Spec // parsed OpenAPI documents by upstream
	wafs       map[config.WAF]*protect.WAF
}

type quota struct {
	name   string
	limit  int64
	window time.Duration
	policy ratelimit.Policy
}

// route is one compiled route.
type route struct {
	name        string
	methods     []string
	pattern     pattern
	rule        *policy.Rule
	forwardAuth bool
	quota       bool
	limits      []routeLimit
	maxBody     int64
	cors        *cors
	prot        *protect.Route // nil when the route has no protection
	proxy       *httputil.ReverseProxy
}

type routeLimit struct {
	name   string
	per    string
	lim    ratelimit.Limit
	key    string           // the store key's fixed prefix, "rt:<route>:<ip:|u:|all>"
	policy ratelimit.Policy // the RateLimit headers' fixed parts
}

// New compiles the gateway from the config.
func New(opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	g := &Gateway{audit: opts.Audit, specs: map[string]*protect.Spec{}, wafs: map[config.WAF]*protect.WAF{}, verifier: opts.Verifier, revoked: opts.Revocations, limiter: opts.Limiter, obs: opts.Observer,
		log: opts.Logger, now: opts.Now, plans: map[string]quota{}, defPlan: opts.DefaultPlan}
	if g.obs == nil {
		g.obs = nopObserver{}
	}
	g.bans, g.decisions = opts.Bans, opts.Decisions
	if g.bans == nil {
		g.bans = noBans{}
	}
	if g.decisions == nil {
		g.decisions = nopDecisions{}
	}
	for name, s := range opts.Plans {
		r, err := config.ParseRate(s)
		if err != nil {
			return nil, fmt.Errorf("gateway: plan %s: %w", name, err)
		}
		q := quota{name: "plan_" + name, limit: r.Count, window: r.Period}
		q.policy = ratelimit.NewPolicy(q.name, ratelimit.Limit{Count: q.limit, Period: q.window})
		g.plans[name] = q
	}
	var err error
	if g.edge, err = compileEdge(opts.Limits); err != nil {
		return nil, err
	}
	upstreams := map[string]*upstream{}
	names := make([]string, 0, len(opts.Upstreams))
	for n := range opts.Upstreams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		u, err := g.newUpstream(n, opts.Upstreams[n], opts.Transport, opts.UpstreamTLS[n])
		if err != nil {
			return nil, err
		}
		upstreams[n] = u
	}
	for i, rc := range opts.Routes {
		rt, err := g.compileRoute(rc, upstreams, opts)
		if err != nil {
			return nil, fmt.Errorf("gateway: routes[%d] (%s): %w", i, rc.Name, err)
		}
		g.table.routes = append(g.table.routes, rt)
	}
	return g, nil
}

func (g *Gateway) compileRoute(rc config.Route, ups map[string]*upstream, opts Options) (*route, error) {
	p, err := compilePattern(rc.Path)
	if err != nil {
		return nil, err
	}
	rule, err := opts.Policy.CompileRoute(rc)
	if err != nil {
		return nil, err
	}
	up, ok := ups[rc.Upstream]
	if !ok {
		return nil, fmt.Errorf("unknown upstream %q", rc.Upstream)
	}
	name := rc.Name
	if name == "" {
		name = config.DefaultRouteName(rc.Methods, rc.Path)
	}
	rt := &route{name: name, pattern: p, rule: rule, forwardAuth: rc.ForwardAuthorization, quota: rc.Quota, maxBody: rc.MaxBodyBytes, cors: compileCORS(rc.CORS)}
	if rt.maxBody <= 0 {
		rt.maxBody = opts.MaxBodyBytes
	}
	for _, m := range rc.Methods {
		rt.methods = append(rt.methods, strings.ToUpper(m))
	}
	for j, s := range rc.RateLimits {
		l, err := config.ParseRouteLimit(s)
		if err != nil {
			return nil, err
		}
		rl := routeLimit{
			name: fmt.Sprintf("route_%d_%s", j, l.Per),
			per:  l.Per,
			lim:  ratelimit.Limit{Count: l.Count, Period: l.Period},
		}
		rl.policy = ratelimit.NewPolicy(rl.name, rl.lim)
		switch rl.per {
		case config.PerIP:
			rl.key = "rt:" + name + ":ip:"
		case config.PerUser:
			rl.key = "rt:" + name + ":u:"
		default:
			rl.key = "rt:" + name + ":all"
		}
		rt.limits = append(rt.limits, rl)
	}
	if rc.Protect != nil {
		if rt.prot, err = g.compileProtect(rc, rt, opts); err != nil {
			return nil, err
		}
	}
	rt.proxy = g.newProxy(rt, up)
	return rt, nil
}

// compileProtect builds a route's protection. Documents are parsed once per
// upstream and WAFs built once per setting (a WAF costs ~1 s and tens of MiB).
func (g *Gateway) compileProtect(rc config.Route, rt *route, opts Options) (*protect.Route, error) {
	pc := rc.Protect
	po := protect.Options{
		Methods:      rt.methods,
		Path:         rc.Path,
		Validate:     pc.OpenAPI,
		Response:     protect.ResponseMode(pc.Response),
		Secrets:      protect.SecretMode(pc.Secrets),
		MaxBodyBytes: rt.maxBody,
	}
	var spec *protect.Spec
	if pc.OpenAPI || pc.Response != "" {
		spec = g.specs[rc.Upstream]
		if spec == nil {
			doc, ok := opts.OpenAPI[rc.Upstream]
			if !ok {
				return nil, fmt.Errorf("upstream %q has no OpenAPI document", rc.Upstream)
			}
			var err error
			if spec, err = protect.ParseSpec(doc); err != nil {
				return nil, fmt.Errorf("upstream %q openapi: %w", rc.Upstream, err)
			}
			g.specs[rc.Upstream] = spec
		}
	}
	if pc.WAF != nil {
		w := *pc.WAF
		if g.wafs[w] == nil {
			waf, err := protect.NewWAF(protect.WAFOptions{Paranoia: w.Paranoia, Threshold: w.Threshold, ReportOnly: w.ReportOnly})
			if err != nil {
				return nil, fmt.Errorf("waf: %w", err)
			}
			g.wafs[w] = waf
		}
		po.WAF = g.wafs[w]
	}
	return protect.New(spec, po)
}

// upstream is one protected API and its connection pool.
type upstream struct {
	name    string
	url     *url.URL
	timeout time.Duration
	rt      http.RoundTripper
}

func (g *Gateway) newUpstream(name string, c config.Upstream, override http.RoundTripper, tlsCfg *tls.Config) (*upstream, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gateway: upstream %s: bad url", name)
	}
	timeout := c.Timeout.D()
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	up := &upstream{name: name, url: u, timeout: timeout, rt: override}
	if up.rt == nil {
		// Pooled keep-alive connections: a proxy that re-dials most requests
		// pays a TCP (and TLS) handshake each time and loses half its throughput.
		tr := &http.Transport{
			Proxy:                 nil, // never send API traffic through an environment proxy
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   512,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: timeout,
			ExpectContinueTimeout: time.Second,
			TLSHandshakeTimeout:   5 * time.Second,
			ForceAttemptHTTP2:     u.Scheme == "https",
			TLSClientConfig:       tlsCfg, // nil: Go's defaults with the system roots
		}
		g.transports = append(g.transports, tr)
		up.rt = tr
	}
	return up, nil
}

// Close releases idle upstream connections.
func (g *Gateway) Close() {
	for _, t := range g.transports {
		t.CloseIdleConnections()
	}
}

type nopObserver struct{}

func (nopObserver) Request(string, string, int, time.Duration) {}
func (nopObserver) Limit(string, bool)                         {}

var (
	errResponseDenied  = errors.New("response denied by response_allow")
	errResponseBlocked = errors.New("response withheld by response protection")
)

var bufPool = &sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

type proxyBuffers struct{}

func (proxyBuffers) Get() []byte  { return *(bufPool.Get().(*[]byte)) }
func (proxyBuffers) Put(b []byte) { bufPool.Put(&b) }
