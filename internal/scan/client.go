package scan

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ClientOptions configure NewClient. Zero values are documented per field.
type ClientOptions struct {
	// TLS is the client TLS config (root CAs). Nil means the system roots.
	TLS *tls.Config
	// Budget is the maximum number of requests (HTTP requests and raw TLS
	// handshakes). Zero means 2000.
	Budget int
	// Concurrency bounds requests in flight. Zero means 4; values above 32 are 32.
	Concurrency int
	// RequestTimeout bounds one request. Zero means 15s.
	RequestTimeout time.Duration
	// MaxRetryAfter is the longest Retry-After the client waits once before
	// retrying. Zero means 5s.
	MaxRetryAfter time.Duration
	// UserAgent is sent on every request. Empty means "gatehouse-scan/dev".
	UserAgent string
	// MaxBody caps how much of a response body is read. Zero means 1 MiB.
	MaxBody int64
	// Sleep waits for d or until ctx ends. Nil means a timer; tests inject one.
	Sleep func(ctx context.Context, d time.Duration) error
	// Transport replaces the HTTP transport (tests). Nil means one built from TLS.
	Transport http.RoundTripper
	// KeepExchanges is how many exchanges are recorded for passive checks. Zero
	// means 2000; negative means none.
	KeepExchanges int
}

// Request is one call. Path is resolved against the target base URL; an
// absolute URL must be on the target host.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
	// NoRetry turns off the Retry-After wait (the rate-limit check wants to see
	// every 429).
	NoRetry bool
}

// Response is a fully read (capped) response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	URL    *url.URL // final URL after same-host redirects
}

// Exchange is a recorded request/response pair for passive analysis.
type Exchange struct {
	Method   string
	URL      *url.URL
	Authed   bool
	Status   int
	Header   http.Header
	Body     []byte
	Sequence int64
}

// Client is the only way checks reach the network. It enforces the budget
// centrally, bounds concurrency, never follows redirects off the target host,
// honours a bounded Retry-After, and records exchanges.
type Client struct {
	base      *url.URL
	hc        *http.Client
	tlsConfig *tls.Config
	ua        string
	budget    int64
	used      atomic.Int64
	sem       chan struct{}
	maxRetry  time.Duration
	maxBody   int64
	sleep     func(context.Context, time.Duration) error

	mu        sync.Mutex
	exchanges []Exchange
	keep      int
}

// NewClient returns a client for the target base URL.
func NewClient(base *url.URL, opts ClientOptions) (*Client, error) {
	if base == nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("new client: target must be an absolute http(s) URL")
	}
	if opts.Budget <= 0 {
		opts.Budget = 2000
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.Concurrency > 32 {
		opts.Concurrency = 32
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 15 * time.Second
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = 5 * time.Second
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "gatehouse-scan/dev"
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 1 << 20
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	if opts.KeepExchanges == 0 {
		opts.KeepExchanges = 2000
	}
	tc := opts.TLS
	if tc == nil {
		tc = &tls.Config{}
	}
	tc = tc.Clone()
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	rt := opts.Transport
	if rt == nil {
		rt = &http.Transport{
			Proxy:               nil, // the scanner talks to the target directly
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			TLSClientConfig:     tc,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: opts.Concurrency,
			ForceAttemptHTTP2:   true,
		}
	}
	c := &Client{
		base: base, tlsConfig: tc, ua: opts.UserAgent, budget: int64(opts.Budget),
		sem: make(chan struct{}, opts.Concurrency), maxRetry: opts.MaxRetryAfter,
		maxBody: opts.MaxBody, sleep: opts.Sleep, keep: opts.KeepExchanges,
	}
	baseHost := strings.ToLower(base.Host)
	c.hc = &http.Client{
		Transport: rt,
		Timeout:   opts.RequestTimeout,
		// Why: a target that redirects the scanner elsewhere must not turn it into a
		// scanner of a host nobody authorised. Same-host redirects are followed
		// (bounded); anything else stops and the redirect itself is returned.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 || strings.ToLower(req.URL.Host) != baseHost {
				return http.ErrUseLastResponse
			}
			// Each followed redirect is a request: charge it.
			if !c.take() {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	return c, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Base returns a copy of the target base URL.
func (c *Client) Base() *url.URL { u := *c.base; return &u }

// TLSConfig returns a clone of the TLS config used for the target (for raw
// handshakes by the TLS check).
func (c *Client) TLSConfig() *tls.Config { return c.tlsConfig.Clone() }

// Used is the number of requests spent so far.
func (c *Client) Used() int { return int(c.used.Load()) }

// Budget is the request budget.
func (c *Client) Budget() int { return int(c.budget) }

// Remaining is the number of requests left.
func (c *Client) Remaining() int {
	r := c.budget - c.used.Load()
	if r < 0 {
		return 0
	}
	return int(r)
}

// take reserves one request from the budget.
func (c *Client) take() bool {
	for {
		u := c.used.Load()
		if u >= c.budget {
			return false
		}
		if c.used.CompareAndSwap(u, u+1) {
			return true
		}
	}
}

// Spend charges one non-HTTP network action (a raw TLS handshake, a dial) to
// the budget and holds a concurrency slot until release is called.
func (c *Client) Spend(ctx context.Context) (release func(), err error) {
	if !c.take() {
		return nil, ErrBudget
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return func() { <-c.sem }, nil
}

// Resolve turns a path or same-host absolute URL into an absolute URL.
func (c *Client) Resolve(p string) (*url.URL, error) {
	ref, err := url.Parse(p)
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %w", p, err)
	}
	if !ref.IsAbs() && !strings.HasPrefix(p, "/") {
		ref.Path = "/" + ref.Path
	}
	u := c.base.ResolveReference(ref)
	if !strings.EqualFold(u.Host, c.base.Host) && !sameHostname(u, c.base) {
		return nil, fmt.Errorf("resolve %q: %w", p, ErrForeignURL)
	}
	return u, nil
}

// sameHostname allows another port or scheme on the same host name (plain
// HTTP on port 80 for the transport check), never another host.
func sameHostname(a, b *url.URL) bool {
	return strings.EqualFold(a.Hostname(), b.Hostname())
}

// Do sends r. It returns ErrBudget when the budget is spent, ErrBackoff (with
// the 429/503 response) when the server asks for a wait above the bound.
func (c *Client) Do(ctx context.Context, r Request) (*Response, error) {
	u, err := c.Resolve(r.Path)
	if err != nil {
		return nil, err
	}
	resp, err := c.once(ctx, r, u)
	if err != nil || r.NoRetry || (resp.Status != http.StatusTooManyRequests && resp.Status != http.StatusServiceUnavailable) {
		return resp, err
	}
	wait, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
	if !ok {
		return resp, nil
	}
	// Why: a server asking us to slow down is obeyed, but never for long — a
	// scanner must finish, so a long back-off ends the check instead.
	if wait > c.maxRetry {
		return resp, fmt.Errorf("%s %s: Retry-After %s: %w", r.Method, u.Path, wait, ErrBackoff)
	}
	if err := c.sleep(ctx, wait); err != nil {
		return resp, err
	}
	return c.once(ctx, r, u)
}

// retryAfter parses delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

func (c *Client) once(ctx context.Context, r Request, u *url.URL) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !c.take() {
		return nil, ErrBudget
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.sem }()
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("User-Agent", c.ua)
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	hr, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u.Path, err)
	}
	defer hr.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hr.Body, c.maxBody))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("%s %s: read body: %w", method, u.Path, err)
	}
	resp := &Response{Status: hr.StatusCode, Header: hr.Header, Body: b, URL: hr.Request.URL}
	c.record(Exchange{Method: method, URL: resp.URL, Authed: r.Token != "", Status: resp.Status, Header: resp.Header, Body: b})
	return resp, nil
}

func (c *Client) record(e Exchange) {
	if c.keep < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.exchanges) >= c.keep {
		return
	}
	e.Sequence = int64(len(c.exchanges))
	c.exchanges = append(c.exchanges, e)
}

// Exchanges returns the recorded exchanges in the order they completed.
func (c *Client) Exchanges() []Exchange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Exchange(nil), c.exchanges...)
}
