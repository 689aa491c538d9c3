package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/demo"
)

// gwEcho is the integration tests' second upstream: it echoes what it received
// and serves the streaming, upgrade and slow endpoints.
type gwEcho struct {
	// release lets the streaming handlers send their second part; gated
	// records whether the client released them (true) or the handler gave up
	// waiting (false: the first part never reached the client on its own).
	release chan struct{}
	gated   atomic.Bool
	// upgradeUser is the Gatehouse-User-Id of the last upgrade request.
	upgradeUser atomic.Value
}

func newGWEcho() *gwEcho { return &gwEcho{release: make(chan struct{}, 1)} }

func (e *gwEcho) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasSuffix(r.URL.Path, "/stream"):
		e.stream(w, r, "text/event-stream", "data: one\n\n", "data: two\n\n")
	case strings.HasSuffix(r.URL.Path, "/chunked"):
		e.stream(w, r, "text/plain", "part one\n", "part two\n")
	case strings.HasSuffix(r.URL.Path, "/ws"):
		e.upgrade(w, r)
	case strings.HasPrefix(r.URL.Path, "/slow/"):
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	default:
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Server", "echo/0.1")
		_ = json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "path": r.URL.Path, "header": r.Header, "body_bytes": len(b)})
	}
}

func (e *gwEcho) stream(w http.ResponseWriter, r *http.Request, ct, first, second string) {
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, first)
	_ = http.NewResponseController(w).Flush()
	select {
	case <-e.release:
		e.gated.Store(true)
	case <-r.Context().Done():
		return
	case <-time.After(10 * time.Second):
		// Bounded so a buffering proxy fails the test instead of hanging it.
		e.gated.Store(false)
	}
	_, _ = io.WriteString(w, second)
}

// upgrade hand-rolls a 101 exchange, then answers each line upper-cased.
func (e *gwEcho) upgrade(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
		http.Error(w, "upgrade required", http.StatusUpgradeRequired)
		return
	}
	e.upgradeUser.Store(r.Header.Get("Gatehouse-User-Id"))
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	_ = brw.Flush()
	for {
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		_, _ = brw.WriteString(strings.ToUpper(line))
		if err := brw.Flush(); err != nil {
			return
		}
	}
}

// closedURL is an http URL on a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// gwRoutesYAML is the demo's protected route table plus one route per case the
// demo does not have.
func gwRoutesYAML(notesURL, echoURL, downURL string) string {
	return fmt.Sprintf(`identity:
  default_plan: free
plans:
  free: 100/h
  premium: 1000/h
upstreams:
  notes: {url: %[1]s, timeout: 10s}
  echo: {url: %[2]s, timeout: 10s}
  slow: {url: %[2]s, timeout: 300ms}
  down: {url: %[3]s, timeout: 2s}
routes:
  - {name: health, methods: [GET], path: /v1/health, upstream: notes, access: public}
  - {name: whoami, methods: [GET], path: /v1/whoami, upstream: notes}
  - {name: notes-search, methods: [GET], path: /v1/notes/search, upstream: notes, quota: true}
  - {name: notes, methods: [GET, POST], path: /v1/notes, upstream: notes, quota: true}
  - name: note
    methods: [GET]
    path: /v1/notes/{id}
    upstream: notes
    quota: true
    response_allow: response.body.owner_id == token.sub
  - {name: user, methods: [GET], path: "/v1/users/{id}", upstream: notes, allow: "request.path.id == token.sub"}
  - {name: admin-stats, methods: [GET], path: /v1/admin/stats, upstream: notes, roles: [admin]}
  - {name: echo, methods: [GET, POST], path: /echo/headers, upstream: echo}
  - {name: echo-public, methods: [GET], path: /echo/public, upstream: echo, access: public}
  - {name: echo-fwd, methods: [GET], path: /echo/fwd, upstream: echo, forward_authorization: true}
  - {name: echo-scope, methods: [GET], path: /echo/scoped, upstream: echo, scopes: [api]}
  - {name: echo-scope-missing, methods: [GET], path: /echo/scoped-admin, upstream: echo, scopes: [api, notes:admin]}
  - {name: echo-mfa, methods: [GET], path: /echo/mfa, upstream: echo, mfa: required}
  - name: echo-cel
    methods: [GET]
    path: /echo/cel/{kind}
    upstream: echo
    allow: request.path.kind == "mine" && request.headers["x-app"] == "mobile" && token.plan == "free"
  - {name: echo-stream, methods: [GET], path: /echo/stream, upstream: echo}
  - {name: echo-chunked, methods: [GET], path: /echo/chunked, upstream: echo}
  - {name: echo-ws, methods: [GET], path: /echo/ws, upstream: echo}
  - {name: echo-body, methods: [POST], path: /echo/body, upstream: echo, max_body_bytes: 1024}
  - {name: echo-quota, methods: [GET], path: /echo/quota, upstream: echo, quota: true}
  - {name: slow, methods: [GET], path: /slow/x, upstream: slow}
  - {name: down, methods: [GET], path: /down/x, upstream: down}
`, notesURL, echoURL, downURL)
}

// gwClients are clients for the test server that never follow redirects: one
// that negotiates HTTP/2 and one that speaks HTTP/1.1 (header names as sent).
func gwClients(t *testing.T, caFile string) (h2, h1 *http.Client, tlsCfg *tls.Config) {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tlsCfg = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	t2 := &http.Transport{TLSClientConfig: tlsCfg.Clone(), ForceAttemptHTTP2: true}
	t1 := &http.Transport{TLSClientConfig: tlsCfg.Clone()} // a custom TLS config without ForceAttemptHTTP2: HTTP/1.1
	t.Cleanup(t2.CloseIdleConnections)
	t.Cleanup(t1.CloseIdleConnections)
	return &http.Client{Transport: t2, Timeout: 30 * time.Second, CheckRedirect: noRedirect},
		&http.Client{Transport: t1, Timeout: 30 * time.Second, CheckRedirect: noRedirect}, tlsCfg
}

// gwSend sends one request; hdr are raw name, value pairs (names kept as given).
func gwSend(t *testing.T, c *http.Client, method, u, tok string, body io.Reader, hdr ...string) *response {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header[hdr[i]] = append(req.Header[hdr[i]], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

// wantProblem checks a problem+json answer and returns its type slug.
func wantProblem(t *testing.T, r *response, status int) string {
	t.Helper()
	wantStatus(t, r, status)
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json: %s", ct, r.body)
	}
	if int(r.json(t)["status"].(float64)) != status {
		t.Fatalf("problem status field: %s", r.body)
	}
	return strings.TrimPrefix(r.str(t, "type"), "https://gatehouse.dev/problems/")
}

// echoed is the echo upstream's view of a request.
type echoed struct {
	Header    http.Header `json:"header"`
	Path      string      `json:"path"`
	BodyBytes int         `json:"body_bytes"`
}

func decodeEcho(t *testing.T, r *response) echoed {
	t.Helper()
	wantStatus(t, r, http.StatusOK)
	var e echoed
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("echo: %v: %s", err, r.body)
	}
	return e
}

// TestGatewayContract drives the gateway through the real HTTPS listener (run →
// serve) in front of the demo's notes API and an echo upstream: every access
// mode, the upstream contract, ownership, quotas, routing errors, upstream
// failures, streaming, upgrades and body limits. Three accounts serve it all
// (argon2id is the slow part).
func TestGatewayContract(t *testing.T) {
	notes := httptest.NewServer(demo.NewUpstream(demo.Options{}))
	t.Cleanup(notes.Close)
	echo := newGWEcho()
	echoSrv := httptest.NewServer(echo)
	t.Cleanup(echoSrv.Close)

	e := newTestEnv(t, gwRoutesYAML(notes.URL, echoSrv.URL, closedURL(t)))
	// The admin account exists before the server starts, as `users create` makes it.
	var out syncBuffer
	if err := run(context.Background(), []string{"gatehouse", "users", "create", "--config", e.cfg, "--email", "root@example.com", "--roles", "admin", "--password-stdin"},
		func(string) string { return "" }, strings.NewReader(pw+"\n"), &out, &out); err != nil {
		t.Fatalf("users create: %v\n%s", err, out.String())
	}
	s := startServer(t, e, nil)
	h2, h1, tlsCfg := gwClients(t, e.ca)
	base := s.issuer

	signup := func(email string) (tok, id string) {
		r := s.signup(t, email, pw)
		wantStatus(t, r, http.StatusCreated)
		return r.str(t, "access_token"), r.str(t, "user_id")
	}
	alice, aliceID := signup("alice@example.com")
	bob, bobID := signup("bob@example.com")
	r := s.login(t, "root@example.com", pw)
	wantStatus(t, r, http.StatusOK)
	admin := r.str(t, "access_token")
	get := func(path, tok string, hdr ...string) *response {
		t.Helper()
		return gwSend(t, h2, "GET", base+path, tok, nil, hdr...)
	}

	t.Run("access modes", func(t *testing.T) {
		for _, tc := range []struct {
			path, tok string
			hdr       []string
			want      int
		}{
			{"/v1/health", "", nil, 200},          // public
			{"/v1/health", "not-a-jwt", nil, 200}, // a bad token on a public route is no token
			{"/echo/public", alice, nil, 200},
			{"/v1/whoami", "", nil, 401}, // authenticated
			{"/v1/whoami", "not-a-jwt", nil, 401},
			{"/v1/whoami", alice + "x", nil, 401}, // a broken signature
			{"/v1/whoami", alice, nil, 200},
			{"/v1/admin/stats", "", nil, 401}, // roles
			{"/v1/admin/stats", alice, nil, 403},
			{"/v1/admin/stats", admin, nil, 200},
			{"/echo/scoped", alice, nil, 200}, // scopes: tokens carry "api"
			{"/echo/scoped", "", nil, 401},
			{"/echo/scoped-admin", alice, nil, 403},
			{"/echo/scoped-admin", admin, nil, 403},
			{"/echo/mfa", "", nil, 401}, // mfa: password sign-ins are one factor
			{"/echo/mfa", alice, nil, 403},
			{"/echo/mfa", admin, nil, 403},
			{"/v1/users/" + aliceID, alice, nil, 200}, // CEL allow
			{"/v1/users/" + aliceID, bob, nil, 403},
			{"/v1/users/" + aliceID, admin, nil, 403},
			{"/v1/users/" + aliceID, "", nil, 401},
			{"/echo/cel/mine", alice, []string{"X-App", "mobile"}, 200},
			{"/echo/cel/mine", alice, []string{"X-App", "web"}, 403},
			{"/echo/cel/yours", alice, []string{"X-App", "mobile"}, 403},
			{"/echo/cel/mine", admin, []string{"X-App", "mobile"}, 200}, // plan claim "free" by default
		} {
			r := get(tc.path, tc.tok, tc.hdr...)
			if r.status != tc.want {
				t.Errorf("GET %s (%s): %d, want %d: %s", tc.path, who(tc.tok, alice, bob, admin), r.status, tc.want, r.body)
				continue
			}
			switch tc.want {
			case 401:
				typ := wantProblem(t, r, 401)
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") || typ != "unauthorized" && typ != "invalid-token" {
					t.Errorf("GET %s: 401 %q, WWW-Authenticate %q", tc.path, typ, r.header.Get("WWW-Authenticate"))
				}
			case 403:
				if typ := wantProblem(t, r, 403); typ != "forbidden" {
					t.Errorf("GET %s: 403 %q", tc.path, typ)
				}
			}
		}
		// The token really is a password sign-in: amr ["pwd"].
		if got := decodeEcho(t, get("/echo/headers", alice)).Header.Get("Gatehouse-Auth-Methods"); got != "pwd" {
			t.Errorf("Gatehouse-Auth-Methods %q, want pwd", got)
		}
	})

	t.Run("ownership on the demo upstream", func(t *testing.T) {
		r := gwSend(t, h2, "POST", base+"/v1/notes", alice, strings.NewReader(`{"title":"alice's","body":"secret"}`), "Content-Type", "application/json")
		wantStatus(t, r, http.StatusCreated)
		id := r.str(t, "id")
		if r.str(t, "owner_id") != aliceID {
			t.Fatalf("note owner %q, want %q", r.str(t, "owner_id"), aliceID)
		}
		wantStatus(t, get("/v1/notes/"+id, alice), 200)
		// Bob asks for Alice's note by its (enumerable) id: the upstream hands it
		// over, the response rule turns it into a 404 with nothing of the note.
		r = get("/v1/notes/"+id, bob)
		if typ := wantProblem(t, r, 404); typ != "not-found" || strings.Contains(string(r.body), "secret") || strings.Contains(string(r.body), aliceID) {
			t.Fatalf("bob read alice's note: %s", r.body)
		}
		// A note that does not exist looks the same to Bob.
		missing := get("/v1/notes/999999", bob)
		if missing.status != 404 {
			t.Fatalf("missing note: %d", missing.status)
		}
		// Bob's own list does not show it either.
		if r := get("/v1/notes", bob); r.status != 200 || strings.Contains(string(r.body), "secret") {
			t.Fatalf("bob's list: %d %s", r.status, r.body)
		}
		// Profiles: only one's own (the CEL allow rule), before the upstream is asked.
		wantStatus(t, get("/v1/users/"+aliceID, alice), 200)
		if typ := wantProblem(t, get("/v1/users/"+aliceID, bob), 403); typ != "forbidden" {
			t.Fatalf("bob read alice's profile: %s", typ)
		}
		wantStatus(t, get("/v1/users/"+bobID, bob), 200)
	})

	t.Run("client identity headers never reach the upstream", func(t *testing.T) {
		spoof := []string{
			"Gatehouse-User-Id", bobID, "gatehouse-roles", "admin", "GATEHOUSE-PLAN", "premium",
			"gAtEhOuSe-AuTh-MeThOdS", "pwd,otp", "Gatehouse-Email", "bob@example.com",
			"Gatehouse-Session-Id", "sess-x", "Gatehouse_User_Id", bobID, "Gatehouse-Anything", "x",
		}
		for name, c := range map[string]*http.Client{"HTTP/2": h2, "HTTP/1.1": h1} {
			// The demo's whoami echoes every Gatehouse-* header it receives.
			r := gwSend(t, c, "GET", base+"/v1/whoami", alice, nil, spoof...)
			wantStatus(t, r, 200)
			var who map[string]string
			if err := json.Unmarshal(r.body, &who); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"Gatehouse-User-Id": aliceID, "Gatehouse-Roles": "", "Gatehouse-Plan": "free", "Gatehouse-Auth-Methods": "pwd"}
			for k, v := range want {
				if who[k] != v {
					t.Errorf("%s: upstream saw %s = %q, want %q", name, k, who[k], v)
				}
			}
			for k, v := range who {
				if _, ok := want[k]; !ok && k != "Gatehouse-Session-Id" {
					t.Errorf("%s: client header %s = %q reached the upstream", name, k, v)
				}
				if k == "Gatehouse-Session-Id" && v == "sess-x" {
					t.Errorf("%s: client session id reached the upstream", name)
				}
			}
			// The echo upstream shows every header, including the underscore spelling.
			got := decodeEcho(t, gwSend(t, c, "GET", base+"/echo/headers", alice, nil, spoof...)).Header
			for k, v := range got {
				if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "gatehouse-") && strings.Contains(strings.Join(v, ","), bobID) {
					t.Errorf("%s: %s = %q reached the upstream", name, k, v)
				}
			}
			// Anonymous on a public route: no identity at all.
			got = decodeEcho(t, gwSend(t, c, "GET", base+"/echo/public", "", nil, spoof...)).Header
			for k, v := range got {
				if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "gatehouse-") {
					t.Errorf("%s anonymous: %s = %q reached the upstream", name, k, v)
				}
			}
		}
	})

	t.Run("forwarding headers are rebuilt", func(t *testing.T) {
		host := strings.TrimPrefix(base, "https://")
		for name, c := range map[string]*http.Client{"HTTP/2": h2, "HTTP/1.1": h1} {
			got := decodeEcho(t, gwSend(t, c, "GET", base+"/echo/headers", alice, nil,
				"X-Forwarded-For", "6.6.6.6", "x-forwarded-for", "7.7.7.7", "Forwarded", "for=6.6.6.6;proto=http",
				"X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "http", "X-Forwarded-Prefix", "/admin",
				"X-Forwarded-Port", "80", "X-Request-Id", "client-id")).Header
			for k, want := range map[string]string{
				"X-Forwarded-For":    "127.0.0.1",
				"Forwarded":          `for="127.0.0.1";host="` + host + `";proto=https`,
				"X-Forwarded-Host":   host,
				"X-Forwarded-Proto":  "https",
				"X-Forwarded-Prefix": "",
				"X-Forwarded-Port":   "",
			} {
				if v := strings.Join(got.Values(k), "|"); v != want {
					t.Errorf("%s: upstream saw %s = %q, want %q", name, k, v, want)
				}
			}
			if id := got.Get("X-Request-Id"); id == "client-id" || id == "" {
				t.Errorf("%s: X-Request-Id %q", name, id)
			}
		}
	})

	t.Run("authorization is forwarded only when the route asks", func(t *testing.T) {
		if a := decodeEcho(t, get("/echo/headers", alice)).Header.Get("Authorization"); a != "" {
			t.Errorf("Authorization reached an upstream that did not ask for it: %q", a)
		}
		if a := decodeEcho(t, get("/echo/fwd", alice)).Header.Get("Authorization"); a != "Bearer "+alice {
			t.Errorf("forward_authorization: upstream saw %q", a)
		}
	})

	t.Run("routing errors", func(t *testing.T) {
		if typ := wantProblem(t, get("/v1/nothing-here", alice), 404); typ != "not-found" {
			t.Errorf("unknown path: %s", typ)
		}
		r := gwSend(t, h2, "DELETE", base+"/v1/notes", alice, nil)
		if typ := wantProblem(t, r, 405); typ != "method-not-allowed" || r.header.Get("Allow") != "GET, HEAD, POST" {
			t.Errorf("wrong method: %s, Allow %q", typ, r.header.Get("Allow"))
		}
		for _, p := range []string{"/v1/notes/1%2F2", "/v1/users/" + aliceID + "%2f..%2fadmin", "/v1%2Fadmin%2Fstats"} {
			if typ := wantProblem(t, get(p, admin), 400); typ != "bad-path" {
				t.Errorf("%s: %s", p, typ)
			}
		}
		// Dot segments, plain or encoded, never reach a route they do not name:
		// the server redirects to the clean path, where the route's own rules hold.
		for _, p := range []string{"/v1/users/" + aliceID + "/../../admin/stats", "/v1/users/" + aliceID + "/%2E%2E/%2E%2E/admin/stats"} {
			if r := get(p, alice); r.status == 200 {
				t.Errorf("%s answered 200: %s", p, r.body)
			}
		}
	})

	t.Run("upstream failures", func(t *testing.T) {
		r := get("/down/x", alice)
		if typ := wantProblem(t, r, 502); typ != "upstream-error" || strings.Contains(string(r.body), "127.0.0.1") {
			t.Errorf("upstream down: %s %s", typ, r.body)
		}
		if typ := wantProblem(t, get("/slow/x", alice), 504); typ != "upstream-timeout" {
			t.Errorf("slow upstream: %s", typ)
		}
		if sv := get("/echo/headers", alice).header.Get("Server"); sv != "" {
			t.Errorf("upstream Server header %q reached the client", sv)
		}
	})

	t.Run("body limits", func(t *testing.T) {
		if r := gwSend(t, h2, "POST", base+"/echo/body", alice, strings.NewReader(strings.Repeat("x", 1024))); decodeEcho(t, r).BodyBytes != 1024 {
			t.Errorf("body at the limit not passed whole")
		}
		if typ := wantProblem(t, gwSend(t, h2, "POST", base+"/echo/body", alice, strings.NewReader(strings.Repeat("x", 1025))), 413); typ != "too-large" {
			t.Errorf("declared length over the limit: %s", typ)
		}
		// No declared length (streamed): discovered while proxying.
		for name, c := range map[string]*http.Client{"HTTP/2": h2, "HTTP/1.1 chunked": h1} {
			r := gwSend(t, c, "POST", base+"/echo/body", alice, io.MultiReader(strings.NewReader(strings.Repeat("y", 4096))))
			if r.status != 413 {
				t.Errorf("%s: streamed body over the limit: %d %s", name, r.status, r.body)
			}
		}
	})

	t.Run("streaming arrives incrementally", func(t *testing.T) {
		for _, tc := range []struct{ path, first, second string }{
			{"/echo/stream", "data: one\n", "data: two\n"},
			{"/echo/chunked", "part one\n", "part two\n"},
		} {
			echo.gated.Store(false)
			req, _ := http.NewRequest("GET", base+tc.path, nil)
			req.Header.Set("Authorization", "Bearer "+alice)
			resp, err := h2.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(resp.Body)
			line, err := br.ReadString('\n')
			if err != nil || line != tc.first {
				t.Fatalf("%s: first part %q, %v", tc.path, line, err)
			}
			// Only now may the upstream send the rest: if the gateway had held
			// the first part back, the upstream would have given up waiting.
			echo.release <- struct{}{}
			rest, _ := io.ReadAll(br)
			resp.Body.Close()
			if !strings.Contains(string(rest), tc.second) {
				t.Errorf("%s: rest %q", tc.path, rest)
			}
			if !echo.gated.Load() {
				t.Errorf("%s: the first part reached the client only after the upstream finished", tc.path)
			}
			select { // drain a release nobody took
			case <-echo.release:
			default:
			}
		}
	})

	t.Run("upgrade", func(t *testing.T) {
		addr := strings.TrimPrefix(base, "https://")
		exchange := func(tok string) (*http.Response, *bufio.Reader, net.Conn) {
			cfg := tlsCfg.Clone()
			cfg.NextProtos = []string{"http/1.1"}
			conn, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			auth := ""
			if tok != "" {
				auth = "Authorization: Bearer " + tok + "\r\n"
			}
			fmt.Fprintf(conn, "GET /echo/ws HTTP/1.1\r\nHost: %s\r\n%sConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nGatehouse-User-Id: %s\r\n\r\n", addr, auth, bobID)
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			return resp, br, conn
		}
		resp, _, _ := exchange("")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("upgrade without a token: %d", resp.StatusCode)
		}
		resp.Body.Close()
		resp, br, conn := exchange(alice)
		if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
			t.Fatalf("upgrade: %d %v", resp.StatusCode, resp.Header)
		}
		for _, msg := range []string{"hello\n", "second frame\n"} {
			if _, err := io.WriteString(conn, msg); err != nil {
				t.Fatal(err)
			}
			got, err := br.ReadString('\n')
			if err != nil || got != strings.ToUpper(msg) {
				t.Fatalf("echo over the upgraded connection: %q %v", got, err)
			}
		}
		if u, _ := echo.upgradeUser.Load().(string); u != aliceID {
			t.Errorf("upgrade request carried Gatehouse-User-Id %q, want %q", u, aliceID)
		}
	})

	t.Run("plan quota", func(t *testing.T) {
		carol, _ := signup("carol@example.com")
		// The quota is a fixed window on the hour; keep the 101 requests inside one.
		if left := time.Until(time.Now().Truncate(time.Hour).Add(time.Hour)); left < 20*time.Second {
			t.Logf("waiting %v for the next hourly window", left)
			time.Sleep(left + 100*time.Millisecond)
		}
		for i := 1; i <= 100; i++ {
			r := get("/echo/quota", carol)
			if r.status != 200 {
				t.Fatalf("request %d: %d %s", i, r.status, r.body)
			}
			if p := r.header.Get("RateLimit-Policy"); p != `"plan_free";q=100;w=3600` {
				t.Fatalf("request %d: RateLimit-Policy %q", i, p)
			}
			if rl := r.header.Get("RateLimit"); !strings.HasPrefix(rl, fmt.Sprintf(`"plan_free";r=%d;t=`, 100-i)) {
				t.Fatalf("request %d: RateLimit %q", i, rl)
			}
		}
		before := time.Now()
		r := get("/echo/quota", carol)
		after := time.Now()
		if typ := wantProblem(t, r, 429); typ != "rate-limited" {
			t.Fatalf("101st: %s", typ)
		}
		ra, err := strconv.Atoi(r.header.Get("Retry-After"))
		if err != nil {
			t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
		}
		// Retry-After is the time to the end of the hourly window, in whole seconds.
		end := before.Truncate(time.Hour).Add(time.Hour)
		lo, hi := int(math.Ceil(end.Sub(after).Seconds())), int(math.Ceil(end.Sub(before).Seconds()))
		if ra < lo-1 || ra > hi+1 {
			t.Errorf("Retry-After %d, want %d..%d", ra, lo, hi)
		}
		if p := r.header.Get("RateLimit-Policy"); p != `"plan_free";q=100;w=3600` {
			t.Errorf("RateLimit-Policy %q", p)
		}
		if rl := r.header.Get("RateLimit"); rl != fmt.Sprintf(`"plan_free";r=0;t=%d`, ra) {
			t.Errorf("RateLimit %q, want r=0 and t=Retry-After (%d)", rl, ra)
		}
		// Other users and routes without a quota are unaffected.
		wantStatus(t, get("/echo/headers", carol), 200)
		wantStatus(t, get("/echo/quota", bob), 200)
	})
}

// who names a token in failure messages without printing it.
func who(tok, alice, bob, admin string) string {
	switch tok {
	case "":
		return "no token"
	case alice:
		return "alice"
	case bob:
		return "bob"
	case admin:
		return "admin"
	}
	return "bad token"
}
