package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

func TestForwarded(t *testing.T) {
	for _, tc := range []struct {
		ip, host, want string
	}{
		{"203.0.113.7", "api.example.com", `for="203.0.113.7";host="api.example.com";proto=https`},
		{"127.0.0.1", "127.0.0.1:8443", `for="127.0.0.1";host="127.0.0.1:8443";proto=https`},
		// RFC 7239 §6: an IPv6 node is bracketed and the value quoted.
		{"2001:db8::1", "api.example.com", `for="[2001:db8::1]";host="api.example.com";proto=https`},
		{"::1", "[::1]:8443", `for="[::1]";host="[::1]:8443";proto=https`},
		{"fe80::1%eth0", "h", `for="[fe80::1%eth0]";host="h";proto=https`},
		// An IPv4-mapped address stays as the scope gave it (reqctx unmaps).
		{"::ffff:192.0.2.1", "h", `for="[::ffff:192.0.2.1]";host="h";proto=https`},
		// No client IP (no peer address): still well-formed.
		{"", "h", `for="";host="h";proto=https`},
		// Hostile host values cannot break out of the quoted string.
		{"192.0.2.1", `evil";for="10.0.0.1`, `for="192.0.2.1";host="evil\";for=\"10.0.0.1";proto=https`},
		{"192.0.2.1", "a\r\nb", `for="192.0.2.1";host="a\r\nb";proto=https`},
	} {
		if got := forwarded(tc.ip, tc.host); got != tc.want {
			t.Errorf("forwarded(%q, %q) = %s, want %s", tc.ip, tc.host, got, tc.want)
		}
	}
}

// rewriteThrough sends in through a plain httputil.ReverseProxy whose Rewrite is
// the gateway's, to a recording upstream, and returns what the upstream saw.
func rewriteThrough(t *testing.T, rt *route, base string, in *http.Request, sc *reqctx.Scope) *recorded {
	t.Helper()
	return rewriteVia(t, nil, rt, base, in, sc)
}

// rewriteVia is rewriteThrough over a given transport (nil: the default).
func rewriteVia(t *testing.T, tr http.RoundTripper, rt *route, base string, in *http.Request, sc *reqctx.Scope) *recorded {
	t.Helper()
	up := &recordingUpstream{}
	srv := httptest.NewServer(up)
	defer srv.Close()
	u, err := url.Parse(srv.URL + base)
	if err != nil {
		t.Fatal(err)
	}
	ups := &upstream{name: "rec", url: u}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { rewrite(pr, rt, ups) }, Transport: tr}
	w := httptest.NewRecorder()
	rp.ServeHTTP(w, in.WithContext(reqctx.With(in.Context(), sc)))
	if w.Code != http.StatusOK {
		t.Fatalf("proxy status %d: %s", w.Code, w.Body)
	}
	got := up.lastRequest()
	if got == nil {
		t.Fatal("upstream saw no request")
	}
	return got
}

func TestRewriteContract(t *testing.T) {
	claims := &token.Claims{Subject: "user-1", SessionID: "sess-1", Roles: []string{"admin", "editor"}, Plan: "premium", AMR: []string{"pwd", "otp"}}
	hostile := func() *http.Request {
		r := httptest.NewRequest("POST", "https://api.example.com/v1/notes/7?q=1&q=2", strings.NewReader(`{"a":1}`))
		r.Host = "api.example.com"
		r.RemoteAddr = "198.51.100.1:5555"
		h := r.Header
		h.Set("Authorization", "Bearer client-token")
		h.Set("Content-Type", "application/json")
		h.Set("Accept-Encoding", "gzip")
		h.Set("X-Custom", "kept")
		// Identity headers the client made up, in every spelling.
		h["Gatehouse-User-Id"] = []string{"victim"}
		h["gatehouse-user-id"] = []string{"victim-lower"}
		h["GATEHOUSE-ROLES"] = []string{"admin"}
		h["Gatehouse-Plan"] = []string{"enterprise", "second"}
		h["Gatehouse-Anything-Else"] = []string{"x"}
		h["Gatehouse-"] = []string{"bare prefix"}
		h["Gatehouse_User_Id"] = []string{"victim-underscore"}
		h["gAtEhOuSe_rOlEs"] = []string{"admin"}
		// Forwarding headers the client made up.
		h["X-Forwarded-For"] = []string{"6.6.6.6, 7.7.7.7"}
		h["X-Forwarded-Host"] = []string{"evil.example"}
		h["X-Forwarded-Proto"] = []string{"http"}
		h["X-Forwarded-Port"] = []string{"80"}
		h["X-Forwarded-Prefix"] = []string{"/admin"}
		h["x-forwarded-server"] = []string{"evil"}
		h["X_Forwarded_For"] = []string{"6.6.6.6"}
		h["Forwarded"] = []string{`for=6.6.6.6;proto=http`}
		h["X-Request-Id"] = []string{"client-chosen-id"}
		// Hop-by-hop, named and implied.
		h.Set("Connection", "X-Drop-Me")
		h.Set("X-Drop-Me", "1")
		h.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
		return r
	}
	sc := func(c *token.Claims) *reqctx.Scope {
		return &reqctx.Scope{RequestID: "req-42", ClientIP: "198.51.100.1", Claims: c}
	}

	t.Run("authenticated", func(t *testing.T) {
		rt := &route{rule: &policy.Rule{Access: policy.Authenticated}}
		got := rewriteThrough(t, rt, "", hostile(), sc(claims))
		h := got.Header
		for k, want := range map[string]string{
			"Gatehouse-User-Id":      "user-1",
			"Gatehouse-Session-Id":   "sess-1",
			"Gatehouse-Roles":        "admin,editor",
			"Gatehouse-Plan":         "premium",
			"Gatehouse-Auth-Methods": "pwd,otp",
			"X-Forwarded-For":        "198.51.100.1",
			"X-Forwarded-Host":       "api.example.com",
			"X-Forwarded-Proto":      "https",
			"Forwarded":              `for="198.51.100.1";host="api.example.com";proto=https`,
			"X-Request-Id":           "req-42",
			"X-Custom":               "kept",
			"Accept-Encoding":        "gzip",
			"Content-Type":           "application/json",
		} {
			if vs := h.Values(k); len(vs) != 1 || vs[0] != want {
				t.Errorf("%s = %q, want exactly %q", k, vs, want)
			}
		}
		for k, vs := range h {
			lk := strings.ToLower(k)
			switch {
			case strings.HasPrefix(lk, "gatehouse"):
				if _, ours := map[string]bool{"Gatehouse-User-Id": true, "Gatehouse-Session-Id": true, "Gatehouse-Roles": true, "Gatehouse-Plan": true, "Gatehouse-Auth-Methods": true}[k]; !ours {
					t.Errorf("client header %s: %q reached the upstream", k, vs)
				}
			case strings.HasPrefix(lk, "x-forwarded-"), strings.HasPrefix(lk, "x_forwarded"):
				if k != "X-Forwarded-For" && k != "X-Forwarded-Host" && k != "X-Forwarded-Proto" {
					t.Errorf("client forwarding header %s: %q reached the upstream", k, vs)
				}
			case lk == "authorization", lk == "proxy-authorization", lk == "x-drop-me", lk == "connection":
				t.Errorf("%s: %q reached the upstream", k, vs)
			}
		}
		if got.Method != "POST" || got.Path != "/v1/notes/7" || got.Body != `{"a":1}` {
			t.Errorf("request changed: %s %s %q", got.Method, got.Path, got.Body)
		}
	})

	t.Run("forward authorization", func(t *testing.T) {
		rt := &route{rule: &policy.Rule{Access: policy.Authenticated}, forwardAuth: true}
		got := rewriteThrough(t, rt, "", hostile(), sc(claims))
		if vs := got.Header.Values("Authorization"); len(vs) != 1 || vs[0] != "Bearer client-token" {
			t.Errorf("Authorization = %q, want the client's", vs)
		}
		if got.Header.Get("Proxy-Authorization") != "" {
			t.Error("Proxy-Authorization reached the upstream")
		}
	})

	t.Run("anonymous on a public route", func(t *testing.T) {
		rt := &route{rule: &policy.Rule{Access: policy.Public}}
		got := rewriteThrough(t, rt, "", hostile(), sc(nil))
		for k, vs := range got.Header {
			if strings.HasPrefix(strings.ToLower(k), "gatehouse") {
				t.Errorf("anonymous request carries %s: %q", k, vs)
			}
		}
	})

	t.Run("response rule asks for identity encoding", func(t *testing.T) {
		env, err := policy.NewEnv(policy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		prog, err := env.CompileResponse("response.body.owner_id == token.sub")
		if err != nil {
			t.Fatal(err)
		}
		rt := &route{rule: &policy.Rule{Access: policy.Authenticated, ResponseAllow: prog}}
		// A transport that adds no Accept-Encoding of its own shows what the
		// rewrite left (Go's default asks for gzip and undoes it transparently).
		got := rewriteVia(t, &http.Transport{DisableCompression: true}, rt, "", hostile(), sc(claims))
		if ae := got.Header.Get("Accept-Encoding"); ae != "" {
			t.Errorf("Accept-Encoding %q sent for a route whose response is judged", ae)
		}
	})

	t.Run("upstream base path and IPv6 client", func(t *testing.T) {
		rt := &route{rule: &policy.Rule{Access: policy.Authenticated}}
		in := hostile()
		s := sc(claims)
		s.ClientIP = "2001:db8::7"
		got := rewriteThrough(t, rt, "/base", in, s)
		if got.Path != "/base/v1/notes/7" {
			t.Errorf("path %q, want the upstream's base joined", got.Path)
		}
		if f := got.Header.Get("Forwarded"); f != `for="[2001:db8::7]";host="api.example.com";proto=https` {
			t.Errorf("Forwarded %s", f)
		}
		if x := got.Header.Get("X-Forwarded-For"); x != "2001:db8::7" {
			t.Errorf("X-Forwarded-For %s", x)
		}
	})
}

func TestCheckResponse(t *testing.T) {
	h := newHarness(t, harnessOptions{routes: nil})
	env, err := policy.NewEnv(policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	prog, err := env.CompileResponse("response.body.owner_id == token.sub")
	if err != nil {
		t.Fatal(err)
	}
	judged := &route{name: "judged", rule: &policy.Rule{Access: policy.Authenticated, ResponseAllow: prog}}
	plain := &route{name: "plain", rule: &policy.Rule{Access: policy.Authenticated}}
	in := &policy.Input{Claims: &token.Claims{Subject: "alice"}}
	for _, tc := range []struct {
		name        string
		rt          *route
		status      int
		contentType string
		encoding    string
		body        string
		allow       bool
	}{
		{"owner", judged, 200, "application/json", "", `{"owner_id":"alice"}`, true},
		{"owner, charset", judged, 200, "application/json; charset=utf-8", "", `{"owner_id":"alice"}`, true},
		{"owner, +json", judged, 200, "application/vnd.api+json", "", `{"owner_id":"alice"}`, true},
		{"someone else", judged, 200, "application/json", "", `{"owner_id":"bob"}`, false},
		{"no owner field", judged, 200, "application/json", "", `{"id":"1"}`, false},
		{"a list", judged, 200, "application/json", "", `[{"owner_id":"alice"}]`, false},
		{"not JSON", judged, 200, "application/json", "", `{"owner_id":"alice"`, false},
		{"two documents", judged, 200, "application/json", "", `{"owner_id":"alice"}{"owner_id":"bob"}`, false},
		{"text", judged, 200, "text/plain", "", `{"owner_id":"alice"}`, false},
		{"no content type", judged, 200, "", "", `{"owner_id":"alice"}`, false},
		{"compressed", judged, 200, "application/json", "gzip", `{"owner_id":"alice"}`, false},
		{"identity encoding", judged, 200, "application/json", "identity", `{"owner_id":"alice"}`, true},
		{"too big", judged, 200, "application/json", "", `{"owner_id":"alice","pad":"` + strings.Repeat("x", maxJudgedBody) + `"}`, false},
		// Errors and redirects are not judged: they carry no object.
		{"upstream 404", judged, 404, "application/json", "", `{"error":"not found"}`, true},
		{"upstream 500", judged, 500, "text/html", "", `boom`, true},
		{"no rule", plain, 200, "text/plain", "", `anything`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/x", nil)
			req = req.WithContext(withRoute(req.Context(), &routeScope{route: tc.rt, input: in}))
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{}, Body: nopBody(tc.body), Request: req}
			resp.Header.Set("Server", "nginx")
			resp.Header.Set("X-Powered-By", "Express")
			if tc.contentType != "" {
				resp.Header.Set("Content-Type", tc.contentType)
			}
			if tc.encoding != "" {
				resp.Header.Set("Content-Encoding", tc.encoding)
			}
			err := h.gw.checkResponse(resp, tc.rt)
			if (err == nil) != tc.allow {
				t.Fatalf("checkResponse: %v, want allow=%v", err, tc.allow)
			}
			if resp.Header.Get("Server") != "" || resp.Header.Get("X-Powered-By") != "" {
				t.Error("fingerprint headers kept")
			}
			if err == nil && tc.rt == judged && tc.status == 200 {
				var v map[string]any
				if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v["owner_id"] != "alice" {
					t.Errorf("body after judging: %v %v", v, err)
				}
			}
		})
	}
}

type stringBody struct{ *strings.Reader }

func (stringBody) Close() error { return nil }

func nopBody(s string) stringBody { return stringBody{strings.NewReader(s)} }

func TestHasHeaderPrefix(t *testing.T) {
	for _, tc := range []struct {
		k    string
		want bool
	}{
		{"Gatehouse-User-Id", true},
		{"gatehouse-user-id", true},
		{"GATEHOUSE-X", true},
		{"Gatehouse_User_Id", true},
		{"Gatehouse-", true},
		{"Gatehouse", false},
		{"Gatehouses-X", false},
		{"X-Gatehouse-User-Id", false},
		{"", false},
	} {
		if got := hasHeaderPrefix(tc.k, "gatehouse-"); got != tc.want {
			t.Errorf("hasHeaderPrefix(%q) = %v", tc.k, got)
		}
	}
}

func TestStrippedHeader(t *testing.T) {
	t.Parallel()
	for k, want := range map[string]bool{
		"Gatehouse-User-Id": true, "gatehouse_plan": true, "GATEHOUSE-X": true,
		"X-Forwarded-Prefix": true, "x_forwarded_port": true,
		"X-Real-Ip": true, "X_REAL_IP": true, "True-Client-Ip": true, "X-Client-Ip": true,
		"Cf-Connecting-Ip": true, "X-Cluster-Client-Ip": true, "Forwarded-For": true, "forwarded_for": true,
		"Gatehouse": false, "X-Real-Ipx": false, "X-Client-Id": false, "Forwarded": false, "Cf-Ray": false,
		"Accept": false, "X-Request-Id": false, "Authorization": false, "": false,
	} {
		if got := strippedHeader(k); got != want {
			t.Errorf("strippedHeader(%q) = %v, want %v", k, got, want)
		}
	}
}
