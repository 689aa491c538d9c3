package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/go-jose/go-jose/v4"
	_ "modernc.org/sqlite" // the read-only view of the database file in checks
)

// This file holds the in-process harness shared by badinput_test.go,
// oidc_test.go and bench_test.go (a server built by openApp with an injected
// clock and served by the real app.serve over TLS), and the bad-input tests.

// testClock is an injectable clock the tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock(t time.Time) *testClock { return &testClock{t: t} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// liveApp is a server whose app (store, key ring, services) the test can reach
// and whose clock it controls. It is served by app.serve, the same code path
// as `gatehouse serve`, so the handler wiring is the production one.
type liveApp struct {
	*server
	app *app
	clk *testClock
	cfg *config.Config
}

// liveOptions tune startLiveApp; the zero value is a plain SQLite server.
type liveOptions struct {
	// mutate, when set, edits the loaded config before the app opens (e.g.
	// to point the store at PostgreSQL).
	mutate func(*config.Config)
	// quiet discards logs instead of keeping them for inspection (benchmarks).
	quiet bool
}

// startLiveApp writes a config (extra is appended YAML), opens the app with an
// injected clock, serves it over TLS on a loopback port and waits for /readyz.
func startLiveApp(t testing.TB, extra string, o liveOptions) *liveApp {
	t.Helper()
	e := newTestEnv(t, extra)
	getenv := func(string) string { return "" }
	cfg, err := loadConfig(e.cfg, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if o.mutate != nil {
		o.mutate(cfg)
	}
	clk := newTestClock(time.Now().UTC().Truncate(time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{testEnv: e, c: e.client(t), stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	var logw io.Writer = s.stderr
	if o.quiet {
		logw = io.Discard
	}
	a, err := openApp(ctx, cfg, newLogger(cfg, logw), getenv, appOptions{now: clk.Now, progressiveDelay: time.Microsecond})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		err := a.serve(ctx, env{getenv: getenv, stdin: strings.NewReader(""), stdout: s.stdout, stderr: s.stderr}, nil)
		a.Close()
		s.done <- err
	}()
	t.Cleanup(func() {
		if err := s.stop(t); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := s.c.Get(e.issuer + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v\n%s", err, s.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &liveApp{server: s, app: a, clk: clk, cfg: cfg}
}

// dbView reads the SQLite file beside the running server, read-only.
type dbView struct{ db *sql.DB }

func openDBView(t testing.TB, path string) *dbView {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &dbView{db: db}
}

// dbTables are every table of the schema: a "nothing was written" check
// compares all of them, not a chosen few.
var dbTables = []string{"users", "sessions", "refresh_tokens", "events", "throttles", "signing_keys"}

// dbSnapshot is each table's rows, rendered and sorted.
type dbSnapshot map[string][]string

// snapshot is every row of tables (dbTables when none are named), for
// asserting that a refused request changed nothing.
func (v *dbView) snapshot(t testing.TB, tables ...string) dbSnapshot {
	t.Helper()
	if len(tables) == 0 {
		tables = dbTables
	}
	snap := dbSnapshot{}
	for _, tbl := range tables {
		rows, err := v.db.Query("SELECT * FROM " + tbl)
		if err != nil {
			t.Fatalf("snapshot %s: %v", tbl, err)
		}
		cols, _ := rows.Columns()
		var out []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%q", vals))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		sort.Strings(out)
		snap[tbl] = out
	}
	return snap
}

func (v *dbView) count(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := v.db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// changed names the tables whose rows differ between two snapshots, except
// those in allowed.
func changed(before, after dbSnapshot, allowed ...string) []string {
	var out []string
	for _, tbl := range dbTables {
		if slices.Contains(allowed, tbl) {
			continue
		}
		if !slices.Equal(before[tbl], after[tbl]) {
			out = append(out, fmt.Sprintf("%s (%d → %d rows)", tbl, len(before[tbl]), len(after[tbl])))
		}
	}
	return out
}

// leakMarkers must never appear in an error body: they would mean an internal
// error, a query or a stack reached the client.
var leakMarkers = []string{"sql", "store:", "goroutine", ".go:", "panic", "modernc", "pgx", "runtime.", "identity:", "token:", "keys:"}

// checkErrorResponse asserts the shape every error shares: the exact status,
// X-Request-Id, no leaked internals, and either an RFC 9457 problem (oauth
// == "") or an RFC 6749 §5.2 error whose code is oauth.
func checkErrorResponse(t testing.TB, r *response, status int, oauth string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	rid := r.header.Get("X-Request-Id")
	if rid == "" {
		t.Errorf("no X-Request-Id")
	}
	low := strings.ToLower(string(r.body))
	for _, m := range leakMarkers {
		if strings.Contains(low, m) {
			t.Errorf("error body leaks %q: %s", m, r.body)
		}
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("error body is not a JSON object: %q", r.body)
	}
	if m["request_id"] != rid {
		t.Errorf("request_id %v, header %q", m["request_id"], rid)
	}
	if oauth != "" {
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("OAuth error content type %q", ct)
		}
		if m["error"] != oauth {
			t.Errorf("error %v, want %q: %s", m["error"], oauth, r.body)
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("OAuth error without Cache-Control: no-store")
		}
		return m
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("problem content type %q: %s", ct, r.body)
	}
	typ, _ := m["type"].(string)
	title, _ := m["title"].(string)
	if !strings.HasPrefix(typ, "https://") || title == "" {
		t.Errorf("problem without type/title: %s", r.body)
	}
	if st, _ := m["status"].(float64); int(st) != status {
		t.Errorf("problem status %v, HTTP status %d", m["status"], status)
	}
	return m
}

// problemFields lists the "field" of each entry of a problem's "errors".
func problemFields(m map[string]any) []string {
	var out []string
	l, _ := m["errors"].([]any)
	for _, e := range l {
		if f, ok := e.(map[string]any)["field"].(string); ok {
			out = append(out, f)
		}
	}
	return out
}

// request sends one request; a nil body sends none, streamed sends the body
// without a Content-Length (chunked), so the server only learns its size by
// reading it.
type request struct {
	method, path, ctype string
	body                string
	streamed            bool
	hdr                 []string // name, value pairs; "Authorization" may repeat
}

func (s *liveApp) send(t testing.TB, c *http.Client, q request) *response {
	t.Helper()
	var body io.Reader = strings.NewReader(q.body)
	if q.streamed {
		body = io.MultiReader(strings.NewReader(q.body)) // hides the length
	}
	req, err := http.NewRequest(q.method, s.issuer+q.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if q.ctype != "" {
		req.Header.Set("Content-Type", q.ctype)
	}
	for i := 0; i+1 < len(q.hdr); i += 2 {
		req.Header.Add(q.hdr[i], q.hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

// http1 is a client that speaks HTTP/1.1 only: oversized header blocks are
// refused by the HTTP/2 client itself, before the server could answer.
func (s *liveApp) http1(t testing.TB) *http.Client {
	cfg := s.c.Transport.(*http.Transport).TLSClientConfig.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	tr := &http.Transport{TLSClientConfig: cfg, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// jwtParts decodes a compact JWS's header and claims.
func jwtParts(t testing.TB, tok string) (hdr, claims map[string]any) {
	t.Helper()
	p := strings.Split(tok, ".")
	if len(p) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(p))
	}
	for i, dst := range []*map[string]any{&hdr, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(p[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatal(err)
		}
	}
	return hdr, claims
}

func b64json(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// with returns a copy of claims with k set to v.
func with(claims map[string]any, k string, v any) map[string]any {
	c := make(map[string]any, len(claims))
	for ck, cv := range claims {
		c[ck] = cv
	}
	c[k] = v
	return c
}

// forgedTokens are access tokens a hostile client could present, each with
// the victim's real claims.
func forgedTokens(t *testing.T, s *liveApp, real string) map[string]string {
	t.Helper()
	hdr, claims := jwtParts(t, real)
	kid, _ := hdr["kid"].(string)
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}

	// Signed by a key of the attacker's, claiming the real key id and another.
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string]string{"other key, real kid": kid, "other key, own kid": "attacker-key"} {
		sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", k))
		if err != nil {
			t.Fatal(err)
		}
		jws, err := sg.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		out[name], _ = jws.CompactSerialize()
	}
	// The key the attacker embeds in the header (jwk) must not be trusted.
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv}, (&jose.SignerOptions{EmbedJWK: true}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := sg.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out["embedded jwk"], _ = jws.CompactSerialize()

	// alg none in the spellings scanners try, with and without a signature.
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		h := b64json(t, map[string]any{"alg": alg, "typ": "at+jwt", "kid": kid})
		out["alg "+alg] = h + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
	}
	out["alg none, real signature kept"] = b64json(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}) + "." + strings.SplitN(real, ".", 3)[1] + "." + strings.SplitN(real, ".", 3)[2]

	// HS256 keyed with the published JWKS bytes (key confusion).
	h := b64json(t, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": kid})
	in := h + "." + base64.RawURLEncoding.EncodeToString(payload)
	mac := hmac.New(sha256.New, s.app.ring.JWKS())
	mac.Write([]byte(in))
	out["HS256 with the JWKS as secret"] = in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	// Signed by Gatehouse's own key but wrong in a claim or the type.
	sign := func(c map[string]any, typ string) string {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := s.app.ring.Sign(b, typ)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	out["wrong audience"] = sign(with(claims, "aud", "someone-else"), "at+jwt")
	out["wrong issuer"] = sign(with(claims, "iss", "https://evil.example"), "at+jwt")
	out["no sid"] = sign(with(claims, "sid", ""), "at+jwt")
	out["typ JWT, not an access token"] = sign(claims, "JWT")
	out["not yet valid"] = sign(with(claims, "nbf", float64(s.clk.Now().Add(time.Hour).Unix())), "at+jwt")
	out["tampered claims"] = strings.SplitN(real, ".", 3)[0] + "." + b64json(t, with(claims, "roles", []string{"admin"})) + "." + strings.SplitN(real, ".", 3)[2]
	return out
}

// TestBadInput sends malformed, oversized, wrong-type and hostile requests to
// every identity endpoint and asserts the exact status, the error shape, and
// that not one row of the database changed.
func TestBadInput(t *testing.T) {
	s := startLiveApp(t, "identity:\n  lockout: {ip_failures: 1000}\n  password: {hash_queue_timeout: 60s}\n", liveOptions{})
	db := openDBView(t, s.db)

	// Fixtures: the victim, and mallory whose session the victim must not end.
	r := s.signup(t, "victim@example.com", pw)
	wantStatus(t, r, http.StatusCreated)
	vAccess, vRefresh := r.str(t, "access_token"), r.str(t, "refresh_token")
	_, vClaims := jwtParts(t, vAccess)
	vSession := vClaims["sid"].(string)
	r = s.signup(t, "mallory@example.com", pw)
	wantStatus(t, r, http.StatusCreated)
	mAccess := r.str(t, "access_token")
	_, mClaims := jwtParts(t, mAccess)
	mSession := mClaims["sid"].(string)
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	big := strings.Repeat("a", 1<<20) // the body limit is 1 MiB; every body below exceeds it
	bigJSON := `{"email":"` + big + `@example.com","password":"` + pw + `"}`
	bigForm := form("grant_type", "password", "username", "victim@example.com", "password", big)
	email5K := strings.Repeat("e", 5000) + "@example.com"
	pw10K := strings.Repeat("p", 10000)
	signupJSON := func(email, password string) string {
		b, _ := json.Marshal(map[string]string{"email": email, "password": password})
		return string(b)
	}

	type tcase struct {
		name   string
		q      request
		status int
		oauth  string   // the RFC 6749 error code; "" expects a problem
		fields []string // the problem must name these fields
		// http1 sends over HTTP/1.1 and checks only the status: net/http answers
		// an oversized header block itself, before any Gatehouse handler runs.
		http1 bool
	}
	const signup, tokenPath, revoke = "/auth/v1/signup", "/auth/v1/token", "/auth/v1/revoke"
	post := func(path, ctype, body string, hdr ...string) request {
		return request{method: "POST", path: path, ctype: ctype, body: body, hdr: hdr}
	}
	hugeHeader := []string{"X-Padding", strings.Repeat("h", 64<<10)}
	cases := []tcase{
		// POST /auth/v1/signup: strict JSON.
		{name: "signup/malformed JSON", q: post(signup, jsonType, `{"email":"a@example.com","password":`), status: 400},
		{name: "signup/not JSON at all", q: post(signup, jsonType, `email=a@example.com`), status: 400},
		{name: "signup/text/plain", q: post(signup, "text/plain", signupJSON("tp@example.com", pw)), status: 415},
		{name: "signup/multipart", q: post(signup, "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nmp@example.com\r\n--x--\r\n"), status: 415},
		{name: "signup/form", q: post(signup, formType, form("email", "f@example.com", "password", pw)), status: 415},
		{name: "signup/no content type", q: post(signup, "", signupJSON("nct@example.com", pw)), status: 415},
		{name: "signup/garbage content type", q: post(signup, "application/json;;;", signupJSON("gct@example.com", pw)), status: 415},
		{name: "signup/over 1 MiB, Content-Length", q: post(signup, jsonType, bigJSON), status: 413},
		{name: "signup/over 1 MiB, streamed", q: request{method: "POST", path: signup, ctype: jsonType, body: bigJSON, streamed: true}, status: 413},
		{name: "signup/empty body", q: post(signup, jsonType, ""), status: 400},
		{name: "signup/empty object", q: post(signup, jsonType, `{}`), status: 400, fields: []string{"email", "password"}},
		{name: "signup/missing password", q: post(signup, jsonType, `{"email":"mp@example.com"}`), status: 400, fields: []string{"password"}},
		{name: "signup/missing email", q: post(signup, jsonType, `{"password":"`+pw+`"}`), status: 400, fields: []string{"email"}},
		{name: "signup/unknown field roles", q: post(signup, jsonType, `{"email":"r@example.com","password":"`+pw+`","roles":["admin"]}`), status: 400, fields: []string{"roles"}},
		{name: "signup/unknown field plan", q: post(signup, jsonType, `{"email":"p@example.com","password":"`+pw+`","plan":"premium"}`), status: 400, fields: []string{"plan"}},
		{name: "signup/number for email", q: post(signup, jsonType, `{"email":42,"password":"`+pw+`"}`), status: 400, fields: []string{"email"}},
		{name: "signup/object for password", q: post(signup, jsonType, `{"email":"o@example.com","password":{"x":1}}`), status: 400, fields: []string{"password"}},
		{name: "signup/array body", q: post(signup, jsonType, `[{"email":"arr@example.com","password":"`+pw+`"}]`), status: 400},
		{name: "signup/null body", q: post(signup, jsonType, `null`), status: 400, fields: []string{"email", "password"}},
		{name: "signup/string body", q: post(signup, jsonType, `"victim@example.com"`), status: 400},
		{name: "signup/two objects", q: post(signup, jsonType, signupJSON("two@example.com", pw)+`{}`), status: 400},
		{name: "signup/trailing garbage", q: post(signup, jsonType, signupJSON("tg@example.com", pw)+`x`), status: 400},
		{name: "signup/5 KB email", q: post(signup, jsonType, signupJSON(email5K, pw)), status: 400},
		{name: "signup/10,000-character password", q: post(signup, jsonType, signupJSON("long@example.com", pw10K)), status: 400},
		{name: "signup/200-character password (over max_length)", q: post(signup, jsonType, signupJSON("l200@example.com", strings.Repeat("q", 200))), status: 400, fields: []string{"password"}},
		{name: "signup/short password", q: post(signup, jsonType, signupJSON("short@example.com", "abc")), status: 400, fields: []string{"password"}},
		{name: "signup/common password", q: post(signup, jsonType, signupJSON("common@example.com", "password123")), status: 400, fields: []string{"password"}},
		{name: "signup/display-name email", q: post(signup, jsonType, signupJSON("Eve <eve@example.com>", pw)), status: 400, fields: []string{"email"}},
		{name: "signup/not an email", q: post(signup, jsonType, signupJSON("not-an-email", pw)), status: 400, fields: []string{"email"}},
		{name: "signup/header injection in email", q: post(signup, jsonType, signupJSON("a@example.com\r\nBcc: x@example.com", pw)), status: 400, fields: []string{"email"}},
		{name: "signup/invalid UTF-8 in email", q: post(signup, jsonType, "{\"email\":\"\xff\xfe@example.com\",\"password\":\""+pw+"\"}"), status: 400},
		// encoding/json turns invalid UTF-8 into U+FFFD without an error, so
		// unless the decoder checks, this creates an account whose password is
		// not the bytes the client sent.
		{name: "signup/invalid UTF-8 in password", q: post(signup, jsonType, "{\"email\":\"utf8@example.com\",\"password\":\"plum-\xff-kettle-orbit\"}"), status: 400},
		// A duplicate key is read last-wins by encoding/json: a filter in front
		// that reads the first sees another account than the one created.
		{name: "signup/duplicate email key", q: post(signup, jsonType, `{"email":"first@example.com","email":"second@example.com","password":"`+pw+`"}`), status: 400},
		{name: "signup/oversized header block", q: post(signup, jsonType, signupJSON("hdr@example.com", pw), hugeHeader...), status: 431, http1: true},

		// POST /auth/v1/token: RFC 6749 errors.
		{name: "token/malformed form", q: post(tokenPath, formType, "grant_type=password&username=%zz"), status: 400, oauth: "invalid_request"},
		{name: "token/malformed JSON", q: post(tokenPath, jsonType, `{"grant_type":"password",`), status: 400, oauth: "invalid_request"},
		{name: "token/text/plain", q: post(tokenPath, "text/plain", form("grant_type", "password", "username", "victim@example.com", "password", pw)), status: 400, oauth: "invalid_request"},
		{name: "token/multipart", q: post(tokenPath, "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\npassword\r\n--x--\r\n"), status: 400, oauth: "invalid_request"},
		{name: "token/no content type", q: post(tokenPath, "", form("grant_type", "refresh_token", "refresh_token", vRefresh)), status: 400, oauth: "invalid_request"},
		{name: "token/over 1 MiB, Content-Length", q: post(tokenPath, formType, bigForm), status: 413},
		{name: "token/over 1 MiB, streamed", q: request{method: "POST", path: tokenPath, ctype: formType, body: bigForm, streamed: true}, status: 413},
		{name: "token/over 1 MiB JSON, streamed", q: request{method: "POST", path: tokenPath, ctype: jsonType, body: `{"grant_type":"` + big + `"}`, streamed: true}, status: 413},
		{name: "token/empty form", q: post(tokenPath, formType, ""), status: 400, oauth: "invalid_request"},
		{name: "token/empty JSON body", q: post(tokenPath, jsonType, ""), status: 400, oauth: "invalid_request"},
		{name: "token/missing grant_type", q: post(tokenPath, formType, form("username", "victim@example.com", "password", pw)), status: 400, oauth: "invalid_request"},
		{name: "token/empty grant_type", q: post(tokenPath, formType, "grant_type=&refresh_token="+url.QueryEscape(vRefresh)), status: 400, oauth: "invalid_request"},
		{name: "token/unknown grant_type", q: post(tokenPath, formType, form("grant_type", "client_credentials")), status: 400, oauth: "unsupported_grant_type"},
		{name: "token/grant_type case", q: post(tokenPath, formType, form("grant_type", "Refresh_Token", "refresh_token", vRefresh)), status: 400, oauth: "unsupported_grant_type"},
		{name: "token/password grant without password", q: post(tokenPath, formType, form("grant_type", "password", "username", "victim@example.com")), status: 400, oauth: "invalid_request"},
		{name: "token/password grant without username", q: post(tokenPath, formType, form("grant_type", "password", "password", pw)), status: 400, oauth: "invalid_request"},
		{name: "token/refresh grant without token", q: post(tokenPath, formType, form("grant_type", "refresh_token")), status: 400, oauth: "invalid_request"},
		{name: "token/repeated grant_type", q: post(tokenPath, formType, "grant_type=password&grant_type=refresh_token&refresh_token="+url.QueryEscape(vRefresh)), status: 400, oauth: "invalid_request"},
		{name: "token/repeated refresh_token", q: post(tokenPath, formType, "grant_type=refresh_token&refresh_token="+url.QueryEscape(vRefresh)+"&refresh_token=ghr_x"), status: 400, oauth: "invalid_request"},
		{name: "token/repeated password", q: post(tokenPath, formType, "grant_type=password&username=victim%40example.com&password=a&password="+url.QueryEscape(pw)), status: 400, oauth: "invalid_request"},
		{name: "token/repeated unknown parameter", q: post(tokenPath, formType, "grant_type=refresh_token&refresh_token="+url.QueryEscape(vRefresh)+"&x=1&x=2"), status: 400, oauth: "invalid_request"},
		// RFC 6749 §3.2 forbids repeated parameters; a JSON body's duplicate key
		// is one. encoding/json keeps the last value silently.
		{name: "token/JSON duplicate grant_type", q: post(tokenPath, jsonType, `{"grant_type":"password","grant_type":"refresh_token","refresh_token":"ghr_x"}`), status: 400, oauth: "invalid_request"},
		{name: "token/JSON number for username", q: post(tokenPath, jsonType, `{"grant_type":"password","username":42,"password":"`+pw+`"}`), status: 400, oauth: "invalid_request"},
		{name: "token/JSON array body", q: post(tokenPath, jsonType, `["grant_type","password"]`), status: 400, oauth: "invalid_request"},
		{name: "token/JSON null body", q: post(tokenPath, jsonType, `null`), status: 400, oauth: "invalid_request"},
		{name: "token/JSON bool for grant_type", q: post(tokenPath, jsonType, `{"grant_type":true}`), status: 400, oauth: "invalid_request"},
		{name: "token/JSON two objects", q: post(tokenPath, jsonType, `{"grant_type":"password"}{"grant_type":"refresh_token"}`), status: 400, oauth: "invalid_request"},
		// decodeJSON rejects anything after the object; params only looks for a
		// second value, so a stray closing bracket slips through.
		{name: "token/JSON trailing bracket", q: post(tokenPath, jsonType, `{"grant_type":"client_credentials"}}`), status: 400, oauth: "invalid_request"},
		{name: "token/5 KB username", q: post(tokenPath, formType, form("grant_type", "password", "username", email5K, "password", pw)), status: 400, oauth: "invalid_request"},
		{name: "token/10,000-character password", q: post(tokenPath, formType, form("grant_type", "password", "username", "victim@example.com", "password", pw10K)), status: 400, oauth: "invalid_request"},
		{name: "token/invalid UTF-8 in form value", q: post(tokenPath, formType, "grant_type=password&username=victim%40example.com&password=%FF%FE"), status: 400, oauth: "invalid_request"},
		// The same bytes in JSON: checkParams means to refuse them, but they
		// reach it already rewritten to U+FFFD, and a sign-in is attempted.
		{name: "token/invalid UTF-8 in JSON value", q: post(tokenPath, jsonType, "{\"grant_type\":\"password\",\"username\":\"victim@example.com\",\"password\":\"\xff\xfe\"}"), status: 400, oauth: "invalid_request"},
		{name: "token/access token as refresh_token", q: post(tokenPath, formType, form("grant_type", "refresh_token", "refresh_token", vAccess)), status: 400, oauth: "invalid_grant"},
		{name: "token/made-up refresh token", q: post(tokenPath, formType, form("grant_type", "refresh_token", "refresh_token", "ghr_"+strings.Repeat("A", 43))), status: 400, oauth: "invalid_grant"},
		{name: "token/refresh token with a changed character", q: post(tokenPath, formType, form("grant_type", "refresh_token", "refresh_token", vRefresh[:len(vRefresh)-1]+flip(vRefresh[len(vRefresh)-1]))), status: 400, oauth: "invalid_grant"},
		{name: "token/not an email as username", q: post(tokenPath, formType, form("grant_type", "password", "username", "victim", "password", pw)), status: 400, oauth: "invalid_grant"},
		{name: "token/unavailable scope", q: post(tokenPath, formType, form("grant_type", "refresh_token", "refresh_token", vRefresh, "scope", "admin")), status: 400, oauth: "invalid_scope"},
		{name: "token/oversized header block", q: post(tokenPath, formType, form("grant_type", "refresh_token", "refresh_token", vRefresh), hugeHeader...), status: 431, http1: true},

		// POST /auth/v1/revoke (RFC 7009): 200 for tokens it does not know.
		{name: "revoke/text/plain", q: post(revoke, "text/plain", form("token", vRefresh)), status: 400, oauth: "invalid_request"},
		{name: "revoke/no content type", q: post(revoke, "", form("token", vRefresh)), status: 400, oauth: "invalid_request"},
		{name: "revoke/malformed JSON", q: post(revoke, jsonType, `{"token":`), status: 400, oauth: "invalid_request"},
		{name: "revoke/missing token", q: post(revoke, formType, form("token_type_hint", "refresh_token")), status: 400, oauth: "invalid_request"},
		{name: "revoke/repeated token", q: post(revoke, formType, "token="+url.QueryEscape(vRefresh)+"&token=x"), status: 400, oauth: "invalid_request"},
		{name: "revoke/bad token_type_hint", q: post(revoke, formType, form("token", vRefresh, "token_type_hint", "id_token")), status: 400, oauth: "unsupported_token_type"},
		{name: "revoke/over 1 MiB, streamed", q: request{method: "POST", path: revoke, ctype: formType, body: "token=" + big, streamed: true}, status: 413},
		{name: "revoke/5 KB token", q: post(revoke, formType, form("token", strings.Repeat("t", 5000))), status: 400, oauth: "invalid_request"},
		{name: "revoke/unknown refresh token", q: post(revoke, formType, form("token", "ghr_"+strings.Repeat("B", 43))), status: 200},
		{name: "revoke/garbage token", q: post(revoke, formType, form("token", "not-a-token")), status: 200},

		// Endpoints behind an access token.
		{name: "logout/no token", q: post("/auth/v1/logout", "", ""), status: 401},
		{name: "logout/bad scope", q: post("/auth/v1/logout?scope=everyone", "", "", bearer(vAccess)...), status: 400, fields: []string{"scope"}},
		{name: "logout/repeated scope picks neither silently", q: post("/auth/v1/logout?scope=bogus&scope=global", "", "", bearer(vAccess)...), status: 400, fields: []string{"scope"}},
		{name: "logout/refresh token as bearer", q: post("/auth/v1/logout", "", "", bearer(vRefresh)...), status: 401},
		{name: "logout/Basic credentials", q: post("/auth/v1/logout", "", "", "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("victim@example.com:"+pw))), status: 401},
		{name: "logout/two Authorization headers", q: post("/auth/v1/logout", "", "", "Authorization", "Bearer "+vAccess, "Authorization", "Bearer "+mAccess), status: 401},
		{name: "logout/token in the query string", q: post("/auth/v1/logout?access_token="+vAccess, "", ""), status: 401},
		{name: "logout/oversized header block", q: post("/auth/v1/logout", "", "", append(bearer(vAccess), hugeHeader...)...), status: 431, http1: true},
		{name: "sessions/no token", q: request{method: "GET", path: "/auth/v1/sessions"}, status: 401},
		{name: "sessions/empty bearer", q: request{method: "GET", path: "/auth/v1/sessions", hdr: []string{"Authorization", "Bearer "}}, status: 401},
		{name: "sessions/refresh token as bearer", q: request{method: "GET", path: "/auth/v1/sessions", hdr: bearer(vRefresh)}, status: 401},
		{name: "sessions/20 KB bearer", q: request{method: "GET", path: "/auth/v1/sessions", hdr: bearer(strings.Repeat("x.", 10<<10))}, status: 401},
		{name: "session delete/another user's session", q: request{method: "DELETE", path: "/auth/v1/sessions/" + mSession, hdr: bearer(vAccess)}, status: 404},
		{name: "session delete/unknown id", q: request{method: "DELETE", path: "/auth/v1/sessions/00000000-0000-0000-0000-000000000000", hdr: bearer(vAccess)}, status: 404},
		{name: "session delete/invalid UTF-8 id", q: request{method: "DELETE", path: "/auth/v1/sessions/%FF%FE", hdr: bearer(vAccess)}, status: 404},
		{name: "session delete/SQL in the id", q: request{method: "DELETE", path: "/auth/v1/sessions/" + url.PathEscape("x' OR '1'='1"), hdr: bearer(vAccess)}, status: 404},
		{name: "session delete/4 KB id", q: request{method: "DELETE", path: "/auth/v1/sessions/" + strings.Repeat("9", 4096), hdr: bearer(vAccess)}, status: 404},
		{name: "session delete/no token", q: request{method: "DELETE", path: "/auth/v1/sessions/" + vSession}, status: 401},
		{name: "session delete/refresh token as bearer", q: request{method: "DELETE", path: "/auth/v1/sessions/" + vSession, hdr: bearer(vRefresh)}, status: 401},
		{name: "user/no token", q: request{method: "GET", path: "/auth/v1/user"}, status: 401},
		{name: "user/refresh token as bearer", q: request{method: "GET", path: "/auth/v1/user", hdr: bearer(vRefresh)}, status: 401},
		{name: "user/lower-case scheme and junk token", q: request{method: "GET", path: "/auth/v1/user", hdr: []string{"Authorization", "bearer not.a.jwt"}}, status: 401},
		{name: "user/oversized header block", q: request{method: "GET", path: "/auth/v1/user", hdr: append(bearer(vAccess), hugeHeader...)}, status: 431, http1: true},

		// Wrong methods and unknown paths.
		{name: "jwks/POST", q: post("/.well-known/jwks.json", jsonType, `{}`), status: 405},
		{name: "jwks/DELETE", q: request{method: "DELETE", path: "/.well-known/jwks.json"}, status: 405},
		{name: "discovery/PUT", q: request{method: "PUT", path: "/.well-known/openid-configuration", ctype: jsonType, body: `{"issuer":"https://evil.example"}`}, status: 405},
		{name: "well-known/unknown document", q: request{method: "GET", path: "/.well-known/oauth-authorization-server"}, status: 404},
		{name: "auth/unknown path", q: request{method: "GET", path: "/auth/v1/x"}, status: 404},
		{name: "auth/unknown path POST", q: post("/auth/v1/x", jsonType, signupJSON("x@example.com", pw)), status: 404},
		{name: "auth/GET token endpoint", q: request{method: "GET", path: "/auth/v1/token?grant_type=password&username=victim%40example.com&password=" + url.QueryEscape(pw)}, status: 405},
		{name: "auth/GET signup", q: request{method: "GET", path: "/auth/v1/signup"}, status: 405},
		{name: "auth/PUT user", q: request{method: "PUT", path: "/auth/v1/user", ctype: jsonType, body: `{"roles":["admin"]}`, hdr: bearer(vAccess)}, status: 405},
		{name: "auth/DELETE sessions without id", q: request{method: "DELETE", path: "/auth/v1/sessions/", hdr: bearer(vAccess)}, status: 404},
		{name: "auth/sub-path of a session", q: request{method: "DELETE", path: "/auth/v1/sessions/" + vSession + "/x", hdr: bearer(vAccess)}, status: 404},
		{name: "auth/unknown version", q: post("/auth/v2/signup", jsonType, signupJSON("v2@example.com", pw)), status: 404},
	}
	for name, tok := range forgedTokens(t, s, vAccess) {
		cases = append(cases,
			tcase{name: "user/forged token: " + name, q: request{method: "GET", path: "/auth/v1/user", hdr: bearer(tok)}, status: 401},
			tcase{name: "logout/forged token: " + name, q: post("/auth/v1/logout?scope=global", "", "", bearer(tok)...), status: 401},
			tcase{name: "session delete/forged token: " + name, q: request{method: "DELETE", path: "/auth/v1/sessions/" + vSession, hdr: bearer(tok)}, status: 401},
			tcase{name: "revoke/forged token: " + name, q: post(revoke, formType, form("token", tok)), status: 200},
		)
	}

	h1 := s.http1(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := db.snapshot(t)
			client := s.c
			if c.http1 {
				client = h1
			}
			r := s.send(t, client, c.q)
			if c.http1 {
				if r.status != c.status {
					t.Fatalf("status %d, want %d: %.200s", r.status, c.status, r.body)
				}
			} else if c.status >= 400 {
				m := checkErrorResponse(t, r, c.status, c.oauth)
				if fs := problemFields(m); len(c.fields) > 0 && !slices.Equal(fs, c.fields) {
					t.Errorf("problem names fields %v, want %v: %s", fs, c.fields, r.body)
				}
			} else {
				if r.status != c.status {
					t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
				}
				if r.header.Get("X-Request-Id") == "" {
					t.Errorf("no X-Request-Id")
				}
			}
			if r.status == http.StatusUnauthorized {
				checkWWWAuthenticate(t, r, c.q)
			}
			if diff := changed(before, db.snapshot(t)); len(diff) > 0 {
				t.Errorf("the request wrote to %v", diff)
			}
		})
	}

	// The victim and mallory are still signed in: no bad request above ended
	// a session.
	if n := db.count(t, "SELECT count(*) FROM sessions WHERE id IN (?, ?) AND revoked_at IS NULL", vSession, mSession); n != 2 {
		t.Errorf("%d of the two fixture sessions are alive", n)
	}
	wantStatus(t, s.get(t, "/auth/v1/user", vAccess), http.StatusOK)
	wantStatus(t, s.get(t, "/auth/v1/user", mAccess), http.StatusOK)
}

// checkWWWAuthenticate: RFC 6750 §3 — a 401 names the Bearer scheme, and
// carries error="invalid_token" exactly when the request had credentials.
func checkWWWAuthenticate(t *testing.T, r *response, q request) {
	t.Helper()
	wa := r.header.Get("WWW-Authenticate")
	if !strings.HasPrefix(wa, "Bearer") {
		t.Errorf("401 with WWW-Authenticate %q", wa)
		return
	}
	sentBearer := false
	for i := 0; i+1 < len(q.hdr); i += 2 {
		if strings.EqualFold(q.hdr[i], "Authorization") && len(q.hdr[i+1]) > len("Bearer ") && strings.EqualFold(q.hdr[i+1][:7], "Bearer ") {
			sentBearer = true
		}
	}
	single := strings.Count(strings.Join(q.hdr, "\n"), "Authorization") == 1
	if sentBearer && single && !strings.Contains(wa, `error="invalid_token"`) {
		t.Errorf("401 for a presented token without error=\"invalid_token\": %q", wa)
	}
	if !sentBearer && strings.Contains(wa, "error=") {
		t.Errorf("401 without credentials names an error (RFC 6750 §3.1): %q", wa)
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// TestBadInputExpiredToken: an access token past exp (plus the verifier's
// leeway) is refused with invalid_token everywhere, by the injected clock, and
// nothing is written.
func TestBadInputExpiredToken(t *testing.T) {
	s := startLiveApp(t, "", liveOptions{})
	db := openDBView(t, s.db)
	r := s.signup(t, "late@example.com", pw)
	wantStatus(t, r, http.StatusCreated)
	access := r.str(t, "access_token")
	_, claims := jwtParts(t, access)
	sid := claims["sid"].(string)

	start := s.clk.Now()
	// Just inside the 30 s leeway it still works.
	s.clk.Set(start.Add(s.cfg.Tokens.AccessTTL.D() + 20*time.Second))
	wantStatus(t, s.get(t, "/auth/v1/user", access), http.StatusOK)

	s.clk.Set(start.Add(s.cfg.Tokens.AccessTTL.D() + time.Minute))
	before := db.snapshot(t)
	for _, q := range []request{
		{method: "GET", path: "/auth/v1/user"},
		{method: "GET", path: "/auth/v1/sessions"},
		{method: "DELETE", path: "/auth/v1/sessions/" + sid},
		{method: "POST", path: "/auth/v1/logout?scope=global"},
	} {
		q.hdr = []string{"Authorization", "Bearer " + access}
		r := s.send(t, s.c, q)
		checkErrorResponse(t, r, http.StatusUnauthorized, "")
		checkWWWAuthenticate(t, r, q)
	}
	if diff := changed(before, db.snapshot(t)); len(diff) > 0 {
		t.Errorf("requests with an expired token wrote to %v", diff)
	}
	if n := db.count(t, "SELECT count(*) FROM sessions WHERE id = ? AND revoked_at IS NULL", sid); n != 1 {
		t.Error("an expired token ended its session")
	}
}

// TestTokenEndpointIgnoresUnknownParameters: RFC 6749 §3.2 — unknown request
// parameters are ignored, in forms and in JSON bodies, for both grants.
func TestTokenEndpointIgnoresUnknownParameters(t *testing.T) {
	s := startLiveApp(t, "", liveOptions{})
	r := s.signup(t, "extra@example.com", pw)
	wantStatus(t, r, http.StatusCreated)
	rt := r.str(t, "refresh_token")

	r = do(t, s.c, "POST", s.issuer+"/auth/v1/token", formType, form("grant_type", "refresh_token", "refresh_token", rt, "client_id", "ios-app", "nonce", "n-0S6_WzA2Mj", "roles", "admin"))
	wantStatus(t, r, http.StatusOK)
	rt = r.str(t, "refresh_token")
	if _, c := jwtParts(t, r.str(t, "access_token")); fmt.Sprint(c["roles"]) != "[]" {
		t.Errorf("an unknown parameter reached the token: roles %v", c["roles"])
	}
	b, _ := json.Marshal(map[string]any{"grant_type": "refresh_token", "refresh_token": rt, "device": "pixel", "unused": nil})
	r = do(t, s.c, "POST", s.issuer+"/auth/v1/token", jsonType, string(b))
	wantStatus(t, r, http.StatusOK)

	r = do(t, s.c, "POST", s.issuer+"/auth/v1/token", formType, form("grant_type", "password", "username", "extra@example.com", "password", pw, "client_id", "ios-app", "plan", "premium"))
	wantStatus(t, r, http.StatusOK)
	if _, c := jwtParts(t, r.str(t, "access_token")); c["plan"] != "free" {
		t.Errorf("an unknown parameter reached the token: plan %v", c["plan"])
	}
}

// TestRequestIDNotTakenFromUntrustedPeer: a client cannot choose the request
// id that errors and logs are filed under.
func TestRequestIDNotTakenFromUntrustedPeer(t *testing.T) {
	s := startLiveApp(t, "", liveOptions{})
	r := s.send(t, s.c, request{method: "GET", path: "/auth/v1/x", hdr: []string{"X-Request-Id", "attacker-chosen-id"}})
	m := checkErrorResponse(t, r, http.StatusNotFound, "")
	if id := r.header.Get("X-Request-Id"); id == "attacker-chosen-id" || m["request_id"] == "attacker-chosen-id" {
		t.Fatalf("request id taken from an untrusted peer: %q", id)
	}
}
