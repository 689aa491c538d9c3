package reqctx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// Scope is what Gatehouse knows about one request.
type Scope struct {
	RequestID string
	ClientIP  string
	// Claims are set once the access token has been verified; nil before.
	Claims *token.Claims
}

type key struct{}

// With returns ctx carrying s.
func With(ctx context.Context, s *Scope) context.Context { return context.WithValue(ctx, key{}, s) }

// New returns ctx carrying a new scope with the given request id and client
// IP, and that scope: With(ctx, &Scope{...}) in one allocation instead of two
// (it runs on every request).
func New(ctx context.Context, requestID, clientIP string) (context.Context, *Scope) {
	c := &scopeCtx{Context: ctx, s: Scope{RequestID: requestID, ClientIP: clientIP}}
	return c, &c.s
}

// scopeCtx is a context carrying a scope, like context.WithValue(ctx, key{},
// s) with the scope in the same allocation. Everything but Value(key{}) is
// its parent's, so cancellation propagates as through a valueCtx.
type scopeCtx struct {
	context.Context
	s Scope
}

func (c *scopeCtx) Value(k any) any {
	if k == (key{}) {
		return &c.s
	}
	return c.Context.Value(k)
}

func (c *scopeCtx) String() string { return "reqctx.New" }

// From returns the request's scope; never nil (an empty scope when none was set).
func From(ctx context.Context) *Scope {
	if s, ok := ctx.Value(key{}).(*Scope); ok && s != nil {
		return s
	}
	return &Scope{}
}

// Proxies is the set of trusted proxy networks.
type Proxies []netip.Prefix

// ParseProxies parses CIDRs (or bare addresses) of trusted proxies.
func ParseProxies(cidrs []string) (Proxies, error) {
	var out Proxies
	for _, c := range cidrs {
		if !strings.Contains(c, "/") {
			a, err := netip.ParseAddr(c)
			if err != nil {
				return nil, fmt.Errorf("reqctx: trusted proxy %q: %w", c, err)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("reqctx: trusted proxy %q: %w", c, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func (p Proxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, n := range p {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// PeerTrusted reports whether the TCP peer of r is a trusted proxy.
func (p Proxies) PeerTrusted(r *http.Request) bool {
	a, ok := peer(r)
	return ok && p.trusts(a)
}

// ClientIP is the client's address. X-Forwarded-For is read only when the TCP
// peer is a trusted proxy, and then from the right: the first address that is
// not itself a trusted proxy is the client. Everything left of it could have been
// written by the client and is ignored.
func (p Proxies) ClientIP(r *http.Request) string {
	a, ok := peer(r)
	if !ok {
		return ""
	}
	if len(p) == 0 || !p.trusts(a) {
		return a.String()
	}
	hops := r.Header.Values("X-Forwarded-For")
	var all []string
	for _, h := range hops {
		all = append(all, strings.Split(h, ",")...)
	}
	for i := len(all) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(all[i]))
		if err != nil {
			break
		}
		h = h.Unmap()
		if !p.trusts(h) {
			return h.String()
		}
		a = h
	}
	return a.String()
}

func peer(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// RequestID returns the id to use for r: the inbound X-Request-Id when the peer
// is a trusted proxy and the value is well formed, else a new random one.
func (p Proxies) RequestID(r *http.Request) string {
	if v := r.Header.Get("X-Request-Id"); v != "" && validID(v) && p.PeerTrusted(r) {
		return v
	}
	return NewID()
}

// NewID returns 16 random bytes in hex.
func NewID() string {
	var b [16]byte
	var h [32]byte
	_, _ = rand.Read(b[:])
	hex.Encode(h[:], b[:])
	return string(h[:])
}

func validID(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
