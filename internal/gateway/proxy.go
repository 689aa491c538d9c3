package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"unsafe"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/problem"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
)

// maxJudgedBody bounds a response that a response rule must read whole.
const maxJudgedBody = 8 << 20

type routeScope struct {
	route *route
	input *policy.Input // for the response rule
}

type routeKey struct{}

func withRoute(ctx context.Context, s *routeScope) context.Context {
	return context.WithValue(ctx, routeKey{}, s)
}

func routeFrom(ctx context.Context) *routeScope {
	s, _ := ctx.Value(routeKey{}).(*routeScope)
	return s
}

func (g *Gateway) newProxy(rt *route, up *upstream) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { rewrite(pr, rt, up) },
		Transport:      up.rt,
		ModifyResponse: func(resp *http.Response) error { return g.checkResponse(resp, rt) },
		ErrorHandler:   g.proxyError,
		BufferPool:     proxyBuffers{},
		ErrorLog:       log.New(slogWriter{g.log}, "", 0),
	}
}

// rewrite applies the upstream contract (DESIGN.md "Upstream contract").
// ReverseProxy has already removed hop-by-hop headers and every inbound
// Forwarded / X-Forwarded-{For,Host,Proto} header before calling it.
//
// Why map operations instead of Del and Set: one pass over the inbound names
// decides each one without re-canonicalising it, our keys are canonical
// already, and every value we set shares one backing array.
func rewrite(pr *httputil.ProxyRequest, rt *route, up *upstream) {
	pr.SetURL(up.url)
	out := pr.Out.Header // the clone of the inbound header
	sc := reqctx.From(pr.In.Context())
	c := sc.Claims
	dropAE := rt.rule.ResponseAllow != nil || rt.prot != nil && rt.prot.ReadsResponseBody()
	for k := range out {
		// Inbound Gatehouse-* headers are the client's words, not ours: an
		// upstream that trusts Gatehouse-User-Id must only ever see the value we
		// set. The same for every X-Forwarded-* (ReverseProxy removes only -For,
		// -Host and -Proto; -Prefix and -Port steer URL building in many
		// frameworks) and the other client-IP headers proxies set.
		switch {
		case strippedHeader(k):
			delete(out, k)
		case k == "Authorization" && !rt.forwardAuth:
			// The upstream gets identity headers instead; a forwarded token
			// could be replayed by (or leak from) a backend that never needed it.
			delete(out, k)
		case k == "Accept-Encoding" && dropAE:
			// The response rule or filter must read the body: ask for it
			// uncompressed.
			delete(out, k)
		}
	}
	n := forwardingHeaders
	if c != nil {
		n += identityHeaders
	}
	vals := make([]string, n)
	set := func(i int, k, v string) { vals[i] = v; out[k] = vals[i : i+1 : i+1] }
	// Forwarding headers are rebuilt from what we know, never passed through.
	set(0, "X-Forwarded-For", sc.ClientIP)
	set(1, "X-Forwarded-Host", pr.In.Host)
	set(2, "X-Forwarded-Proto", "https")
	set(3, "Forwarded", forwarded(sc.ClientIP, pr.In.Host))
	set(4, "X-Request-Id", sc.RequestID)
	if c != nil {
		set(5, "Gatehouse-User-Id", c.Subject)
		set(6, "Gatehouse-Session-Id", c.SessionID)
		set(7, "Gatehouse-Roles", strings.Join(c.Roles, ","))
		set(8, "Gatehouse-Plan", c.Plan)
		set(9, "Gatehouse-Auth-Methods", strings.Join(c.AMR, ","))
	}
}

// The headers rewrite sets: always, and for an authenticated caller.
const (
	forwardingHeaders = 5
	identityHeaders   = 5
)

// strippedHeader reports whether an inbound header name is one the upstream
// must never receive from the client: Gatehouse-*, X-Forwarded-*, and the
// spoofable client-IP headers, in any case and with '_' read as '-'.
func strippedHeader(k string) bool {
	if len(k) < 9 {
		return false // shorter than the shortest ("x-real-ip")
	}
	switch k[0] | 0x20 {
	case 'g':
		return hasHeaderPrefix(k, "gatehouse-")
	case 'x':
		return hasHeaderPrefix(k, "x-forwarded-") || headerIs(k, "x-real-ip") || headerIs(k, "x-client-ip") || headerIs(k, "x-cluster-client-ip")
	case 't':
		return headerIs(k, "true-client-ip")
	case 'c':
		return headerIs(k, "cf-connecting-ip")
	case 'f':
		return headerIs(k, "forwarded-for")
	}
	return false
}

// headerIs reports whether k is name (lower case), ignoring case and reading
// '_' as '-'.
func headerIs(k, name string) bool { return len(k) == len(name) && hasHeaderPrefix(k, name) }

// hasHeaderPrefix reports whether the header name k starts with prefix (lower
// case, words joined by '-'), ignoring case and reading '_' as '-'. Why the
// underscore: CGI-style servers (WSGI, PHP, Rack) turn both Gatehouse-User-Id
// and Gatehouse_User_Id into HTTP_GATEHOUSE_USER_ID, so the client's underscore
// spelling would arrive as our header.
func hasHeaderPrefix(k, prefix string) bool {
	if len(k) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := k[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// forwarded builds an RFC 7239 Forwarded value in one allocation.
func forwarded(ip, host string) string {
	node := ip
	if a, err := netip.ParseAddr(ip); err == nil && a.Is6() {
		node = "[" + ip + "]"
	}
	b := make([]byte, 0, len(node)+len(host)+32)
	b = append(b, "for="...)
	b = strconv.AppendQuote(b, node)
	b = append(b, ";host="...)
	b = strconv.AppendQuote(b, host)
	b = append(b, ";proto=https"...)
	// b is never written again: the string may share its bytes.
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// checkResponse runs before any byte of the response reaches the client: it
// strips server fingerprints and, for routes with a response rule, reads the
// JSON body and judges it. A denied response becomes a 404, so a caller cannot
// learn that an object it may not see exists.
func (g *Gateway) checkResponse(resp *http.Response, rt *route) error {
	if err := g.checkResponseRule(resp, rt); err != nil {
		return err
	}
	if rt.prot == nil {
		return nil
	}
	out, err := rt.prot.FilterResponse(resp)
	if err != nil {
		return err
	}
	if out != nil {
		typ := audit.ResponseChanged
		if out.Blocked() {
			typ = audit.ResponseBlocked
		}
		g.recordProtection(resp.Request.Context(), rt, typ, out.Action, out.Findings)
		if out.Blocked() {
			return errResponseBlocked
		}
	}
	return nil
}

// checkResponseRule applies the route's response_allow rule.
func (g *Gateway) checkResponseRule(resp *http.Response, rt *route) error {
	resp.Header.Del("Server")
	resp.Header.Del("X-Powered-By")
	// Gatehouse is the only CORS authority: an upstream's own Access-Control-*
	// headers (often a careless "*") never reach the browser.
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			resp.Header.Del(k)
		}
	}
	if rt.rule.ResponseAllow == nil || resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return errResponseDenied
	}
	if enc := resp.Header.Get("Content-Encoding"); enc != "" && enc != "identity" {
		return errResponseDenied
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJudgedBody+1))
	resp.Body.Close()
	if err != nil {
		return err
	}
	if len(b) > maxJudgedBody {
		return errResponseDenied
	}
	var body any
	if err := json.Unmarshal(b, &body); err != nil {
		return errResponseDenied
	}
	rs := routeFrom(resp.Request.Context())
	if rs == nil {
		return errResponseDenied
	}
	if d := rt.rule.DecideResponse(resp.Request.Context(), rs.input, resp.StatusCode, body); !d.Allow {
		return errResponseDenied
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	return nil
}

// proxyError answers for an upstream that failed: 504 on timeouts, 502
// otherwise, 404 for a denied response. The cause is logged, never shown.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	sc := reqctx.From(r.Context())
	sw, _ := w.(*statusWriter)
	var ne net.Error
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, errResponseBlocked):
		if sw != nil {
			sw.denied = "response_blocked"
		}
		problem.Write(w, problem.New(http.StatusBadGateway, "response-withheld", "Bad gateway", "the service's answer was withheld"), sc.RequestID)
	case errors.Is(err, errResponseDenied):
		if sw != nil {
			sw.denied = "response_denied"
		}
		problem.Write(w, problem.New(http.StatusNotFound, "not-found", "Not found", ""), sc.RequestID)
	case errors.As(err, &mbe):
		if sw != nil {
			sw.denied = "too_large"
		}
		problem.Write(w, problem.New(http.StatusRequestEntityTooLarge, "too-large", "Request body too large", ""), sc.RequestID)
	case errors.Is(err, context.Canceled):
		// The client went away; nobody is listening for an answer.
		if sw != nil {
			sw.denied = "client_gone"
		}
		w.WriteHeader(499)
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		if sw != nil {
			sw.denied = "upstream_timeout"
		}
		g.log.WarnContext(r.Context(), "upstream timeout", "request_id", sc.RequestID, "route", routeName(r), "error", err.Error())
		problem.Write(w, problem.New(http.StatusGatewayTimeout, "upstream-timeout", "Upstream timeout", "the service did not answer in time"), sc.RequestID)
	default:
		if sw != nil {
			sw.denied = "upstream_error"
		}
		g.log.WarnContext(r.Context(), "upstream error", "request_id", sc.RequestID, "route", routeName(r), "error", err.Error())
		problem.Write(w, problem.New(http.StatusBadGateway, "upstream-error", "Bad gateway", "the service is unavailable"), sc.RequestID)
	}
}

func routeName(r *http.Request) string {
	if rs := routeFrom(r.Context()); rs != nil {
		return rs.route.name
	}
	return r.URL.Path
}

// slogWriter sends ReverseProxy's own log lines to slog.
type slogWriter struct{ l *slog.Logger }

func (s slogWriter) Write(p []byte) (int, error) {
	s.l.Warn("proxy", "message", strings.TrimSpace(string(p)))
	return len(p), nil
}
