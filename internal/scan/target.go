package scan

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/scan/openapi"
)

// Credential is a test account given with --user.
type Credential struct {
	Name     string
	Password string
}

// LogValue hides the password.
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", c.Name), slog.String("password", mask))
}

// Session is an identity the scan can act as: a user and its access token.
type Session struct {
	User     string // empty for a --token session
	Password string // empty for a --token session
	Token    string
}

// LogValue hides the token and password.
func (s Session) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user", s.User), slog.String("token", mask))
}

// TargetOptions configure NewTarget.
type TargetOptions struct {
	// URL is the base URL of the API under test. Required.
	URL string
	// Spec enumerates operations; nil means discovery by a fixed path list.
	Spec *openapi.Spec
	// Users are test accounts; each is logged in with the OAuth password grant.
	Users []Credential
	// Token is a ready bearer token; it becomes the first session.
	Token string
	// LoginURL is the token endpoint. Empty means URL + "/auth/v1/token".
	LoginURL string
	// Client configures the budgeted HTTP client.
	Client ClientOptions
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// PlainPorts are the ports tried with plain HTTP on the target's host by the
	// transport check. Nil means the target's own port and 80.
	PlainPorts []string
}

// Target is what every check receives: the base URL, the client, the spec, the
// sessions and the baseline. Checks must not modify it after Prepare.
type Target struct {
	Base       *url.URL
	Client     *Client
	Spec       *openapi.Spec
	LoginURL   *url.URL
	Users      []Credential
	Sessions   []Session
	Mask       *Masker
	Now        func() time.Time
	PlainPorts []string
	// GivenToken is the --token value (it may be expired; the auth check looks).
	GivenToken string
	// LoginResponse is the first successful login response (for header checks).
	LoginResponse *Response
	// Baseline is filled by Prepare.
	Baseline Baseline
}

// Baseline is what "normal" looks like on this target, measured first so checks
// do not mistake soft 404s or uniform 401s for findings.
type Baseline struct {
	// NotFound is the answer to a random path.
	NotFound *Response
	// Probe is a protected endpoint: 2xx with a valid token, not 2xx without.
	// Nil when no such endpoint was found (token forgery cannot be judged).
	Probe *Probe
	// Values are path parameter candidates (token subject, ids seen in responses).
	Values []string
}

// Probe is the endpoint token checks are judged on.
type Probe struct {
	Method    string
	Path      string
	OK        *Response // with the first session's token
	NoToken   *Response
	BrokenSig *Response // token with a corrupted signature
}

// SignatureIgnored reports whether the probe accepted a corrupted signature.
func (p *Probe) SignatureIgnored() bool {
	return p != nil && p.BrokenSig != nil && Is2xx(p.BrokenSig.Status)
}

// Is2xx reports a success status.
func Is2xx(code int) bool { return code >= 200 && code < 300 }

// ErrLogin means a --user could not sign in.
var ErrLogin = errors.New("test account could not sign in")

// NewTarget validates options and builds the client. It sends nothing.
func NewTarget(opts TargetOptions) (*Target, error) {
	base, err := url.Parse(opts.URL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("new target: %q is not an absolute http(s) URL", opts.URL)
	}
	base.RawQuery, base.Fragment = "", ""
	base.Path = strings.TrimSuffix(base.Path, "/")
	c, err := NewClient(base, opts.Client)
	if err != nil {
		return nil, fmt.Errorf("new target: %w", err)
	}
	login := opts.LoginURL
	if login == "" {
		login = base.String() + "/auth/v1/token"
	}
	lu, err := c.Resolve(login)
	if err != nil {
		return nil, fmt.Errorf("new target: login url: %w", err)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	ports := opts.PlainPorts
	if ports == nil {
		ports = []string{base.Port(), "80"}
		if ports[0] == "" {
			ports = []string{"80"}
		}
	}
	m := &Masker{}
	for _, u := range opts.Users {
		m.Add(u.Password)
	}
	m.Add(opts.Token)
	return &Target{
		Base: base, Client: c, Spec: opts.Spec, LoginURL: lu, Users: opts.Users,
		Mask: m, Now: now, PlainPorts: ports, GivenToken: opts.Token,
	}, nil
}

// Token is the first session's token, or "".
func (t *Target) Token() string {
	if len(t.Sessions) == 0 {
		return ""
	}
	return t.Sessions[0].Token
}

// PathURL returns the absolute URL string for a path on the target.
func (t *Target) PathURL(p string) string {
	u, err := t.Client.Resolve(t.Base.Path + p)
	if err != nil {
		return p
	}
	return u.String()
}

// Do sends r with the base path prefixed to r.Path when it is relative to the API root.
func (t *Target) Do(ctx context.Context, r Request) (*Response, error) {
	if strings.HasPrefix(r.Path, "/") {
		r.Path = t.Base.Path + r.Path
	}
	return t.Client.Do(ctx, r)
}

// Login runs the OAuth password grant for c and returns the access token.
func (t *Target) Login(ctx context.Context, c Credential) (string, *Response, error) {
	form := url.Values{"grant_type": {"password"}, "username": {c.Name}, "password": {c.Password}}
	resp, err := t.Client.Do(ctx, Request{
		Method: http.MethodPost, Path: t.LoginURL.String(),
		Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"application/json"}},
		Body:   []byte(form.Encode()),
	})
	if err != nil {
		return "", nil, fmt.Errorf("login %s: %w", c.Name, err)
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if resp.Status != http.StatusOK || json.Unmarshal(resp.Body, &out) != nil || out.AccessToken == "" {
		return "", resp, fmt.Errorf("login %s: status %d: %w", c.Name, resp.Status, ErrLogin)
	}
	t.Mask.Add(out.AccessToken)
	return out.AccessToken, resp, nil
}

// SoftNotFound reports whether r looks like the target's answer to a random
// path: same status and same body (or, for a 2xx catch-all, same length).
func (t *Target) SoftNotFound(r *Response) bool {
	nf := t.Baseline.NotFound
	if nf == nil || r == nil || r.Status != nf.Status {
		return false
	}
	if string(r.Body) == string(nf.Body) {
		return true
	}
	return Is2xx(nf.Status) && absDiff(len(r.Body), len(nf.Body)) <= len(nf.Body)/20+8
}

func absDiff(a, b int) int {
	if a > b {
		return a - b
	}
	return b - a
}

// Accepted reports whether r (a response to the probe with some forged token)
// shows the token was accepted: 2xx where no token gets no 2xx.
func (t *Target) Accepted(r *Response) bool {
	p := t.Baseline.Probe
	if p == nil || r == nil {
		return false
	}
	return Is2xx(r.Status) && !Is2xx(p.NoToken.Status)
}

// FillPath substitutes {params} in an operation path from example values and
// the baseline value pool; ok is false when a parameter has no candidate.
func (t *Target) FillPath(op openapi.Operation, pick func(name string) string) (string, bool) {
	p := op.Path
	for _, name := range op.PathParams() {
		v := ""
		if pick != nil {
			v = pick(name)
		}
		if v == "" {
			for _, prm := range op.Params {
				if prm.In == "path" && prm.Name == name && prm.Schema != nil && prm.Schema.Example != nil {
					v = fmt.Sprint(prm.Schema.Example)
				}
			}
		}
		if v == "" {
			return "", false
		}
		p = strings.Replace(p, "{"+name+"}", url.PathEscape(v), 1)
	}
	return p, true
}

// QueryFor builds required query parameters with sample values.
func QueryFor(op openapi.Operation) string {
	q := url.Values{}
	for _, p := range op.Params {
		if p.In == "query" && p.Required {
			q.Set(p.Name, fmt.Sprint(openapi.Sample(p.Schema, "gatehouse")))
		}
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// discoveryPaths are tried for an authenticated probe when there is no spec.
var discoveryPaths = []string{
	"/auth/v1/user", "/userinfo", "/oauth/userinfo", "/me", "/api/me", "/v1/me", "/api/v1/me",
	"/user", "/api/user", "/account", "/api/account", "/v1/account", "/profile", "/api/profile",
}

// DiscoveryPaths returns the fixed list of paths probed without a spec.
func DiscoveryPaths() []string { return append([]string(nil), discoveryPaths...) }

// Prepare measures the baseline: reachability, sign-ins, the random-path
// answer, an authenticated probe endpoint (valid, no and broken token) and a
// crawl of the spec's GET operations to gather parameter values.
func (t *Target) Prepare(ctx context.Context) error {
	if _, err := t.Do(ctx, Request{Method: http.MethodGet, Path: "/"}); err != nil {
		if errors.Is(err, ErrBudget) || ctx.Err() != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		var cve *tls.CertificateVerificationError
		if errors.As(err, &cve) {
			return fmt.Errorf("prepare: %w: %w", ErrCertificate, err)
		}
		return fmt.Errorf("prepare: %w: %w", ErrUnreachable, err)
	}
	if t.GivenToken != "" {
		t.Sessions = append(t.Sessions, Session{Token: t.GivenToken})
	}
	for _, u := range t.Users {
		tok, resp, err := t.Login(ctx, u)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		if t.LoginResponse == nil {
			t.LoginResponse = resp
		}
		t.Sessions = append(t.Sessions, Session{User: u.Name, Password: u.Password, Token: tok})
	}
	nf, err := t.Do(ctx, Request{Method: http.MethodGet, Path: "/gatehouse-scan-" + randomHex(8) + "-not-found"})
	if err != nil {
		return fmt.Errorf("prepare: random path: %w", err)
	}
	t.Baseline.NotFound = nf
	for _, s := range t.Sessions {
		t.addValues(ClaimValues(s.Token)...)
	}
	if t.Token() != "" {
		if err := t.findProbe(ctx); err != nil {
			return err
		}
	}
	return t.crawl(ctx)
}

func (t *Target) addValues(vs ...string) {
	for _, v := range vs {
		if v == "" || len(v) > 200 {
			continue
		}
		dup := false
		for _, x := range t.Baseline.Values {
			dup = dup || x == v
		}
		if !dup && len(t.Baseline.Values) < 64 {
			t.Baseline.Values = append(t.Baseline.Values, v)
		}
	}
}

// ClaimValues returns the sub claim of a JWT (the caller's own user id), if any.
func ClaimValues(tok string) []string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var c map[string]any
	if json.Unmarshal(b, &c) != nil {
		return nil
	}
	if sub, ok := c["sub"].(string); ok {
		return []string{sub}
	}
	return nil
}

// probeCandidates lists GET paths that should need a token.
func (t *Target) probeCandidates() []string {
	if t.Spec == nil {
		return discoveryPaths
	}
	var out []string
	for _, op := range t.Spec.Operations {
		if op.Method != http.MethodGet || !op.Secured {
			continue
		}
		if p, ok := t.FillPath(op, t.firstValue); ok {
			out = append(out, p+QueryFor(op))
		}
	}
	// Parameter-free paths first: they answer 2xx without needing a real id.
	sort.SliceStable(out, func(i, j int) bool {
		return !strings.Contains(out[i], "?") && strings.Count(out[i], "/") < strings.Count(out[j], "/")
	})
	if len(out) > 12 {
		out = out[:12]
	}
	return out
}

func (t *Target) firstValue(string) string {
	if len(t.Baseline.Values) == 0 {
		return ""
	}
	return t.Baseline.Values[0]
}

func (t *Target) findProbe(ctx context.Context) error {
	tok := t.Token()
	for _, p := range t.probeCandidates() {
		ok, err := t.Do(ctx, Request{Method: http.MethodGet, Path: p, Token: tok})
		if err != nil {
			return fmt.Errorf("prepare: probe %s: %w", p, err)
		}
		if !Is2xx(ok.Status) || t.SoftNotFound(ok) {
			continue
		}
		no, err := t.Do(ctx, Request{Method: http.MethodGet, Path: p})
		if err != nil {
			return fmt.Errorf("prepare: probe %s: %w", p, err)
		}
		if Is2xx(no.Status) {
			continue // public: cannot judge tokens here
		}
		broken, err := t.Do(ctx, Request{Method: http.MethodGet, Path: p, Token: BreakSignature(tok)})
		if err != nil {
			return fmt.Errorf("prepare: probe %s: %w", p, err)
		}
		t.Baseline.Probe = &Probe{Method: http.MethodGet, Path: p, OK: ok, NoToken: no, BrokenSig: broken}
		return nil
	}
	return nil
}

// crawl GETs each spec operation once with the first token so passive checks
// see real responses, and collects id-like values for path parameters.
func (t *Target) crawl(ctx context.Context) error {
	if t.Spec == nil {
		return nil
	}
	n := 0
	for _, op := range t.Spec.Operations {
		if op.Method != http.MethodGet || n >= 50 {
			continue
		}
		p, ok := t.FillPath(op, t.firstValue)
		if !ok {
			continue
		}
		n++
		resp, err := t.Do(ctx, Request{Method: http.MethodGet, Path: p + QueryFor(op), Token: t.Token(), Header: http.Header{"Accept": {"application/json"}}})
		if err != nil {
			if errors.Is(err, ErrBackoff) {
				continue
			}
			return fmt.Errorf("prepare: crawl %s: %w", op.Path, err)
		}
		if Is2xx(resp.Status) {
			t.addValues(IDValues(resp.Body)...)
		}
	}
	return nil
}

// IDValues pulls string/number values of keys named id or *_id / *Id from JSON.
func IDValues(body []byte) []string {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return nil
	}
	var out []string
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if depth > 8 || len(out) >= 16 {
			return
		}
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				lk := strings.ToLower(k)
				if lk == "id" || strings.HasSuffix(lk, "_id") || strings.HasSuffix(k, "Id") {
					switch y := x[k].(type) {
					case string:
						out = append(out, y)
					case float64:
						out = append(out, fmt.Sprint(y))
					}
				}
				walk(x[k], depth+1)
			}
		case []any:
			for _, y := range x {
				walk(y, depth+1)
			}
		}
	}
	walk(v, 0)
	return out
}

// BreakSignature corrupts a token's signature (for a JWT, a byte in the middle
// of the third part; otherwise a middle character) without changing its shape.
func BreakSignature(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	start := i + 1
	if i < 0 || start >= len(tok) {
		start = 0
	}
	if len(tok)-start == 0 {
		return tok + "A"
	}
	j := start + (len(tok)-start)/2
	c := byte('A')
	if tok[j] == 'A' {
		c = 'B'
	}
	return tok[:j] + string(c) + tok[j+1:]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
