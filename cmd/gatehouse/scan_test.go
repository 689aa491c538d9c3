package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// scanAPI is a tiny API for the scan command's tests: secure unless vulnerable
// (then /debug/pprof/ is open: high, and nosniff is missing: low).
type scanAPI struct {
	vulnerable bool
	mu         sync.Mutex
	failures   int
	calls      int
}

func (s *scanAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Strict-Transport-Security", "max-age=31536000")
	if !s.vulnerable {
		w.Header().Set("X-Content-Type-Options", "nosniff")
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/auth/v1/token":
		w.Header().Set("Cache-Control", "no-store")
		_ = r.ParseForm()
		tok := map[string]string{"a@x:pw-a": "tok-a-0123456789", "b@x:pw-b": "tok-b-0123456789"}[r.PostForm.Get("username")+":"+r.PostForm.Get("password")]
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.failures >= 3 {
			w.WriteHeader(429)
			return
		}
		if tok == "" {
			s.failures++
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":"invalid_grant"}`)
			return
		}
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer"}`, tok)
	case "/v1/me":
		auth := r.Header.Get("Authorization")
		if auth != "Bearer tok-a-0123456789" && auth != "Bearer tok-b-0123456789" {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":"unauthorized"}`)
			return
		}
		s.mu.Lock()
		s.calls++
		limited := s.calls > 50
		s.mu.Unlock()
		if limited {
			w.WriteHeader(429)
			return
		}
		fmt.Fprint(w, `{"sub":"a"}`)
	case "/debug/pprof/":
		if s.vulnerable {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "Types of profiles available:")
			return
		}
		fallthrough
	default:
		w.WriteHeader(404)
		fmt.Fprint(w, `{"error":"not found"}`)
	}
}

const scanTestSpec = `openapi: 3.0.3
info: {title: t, version: "1"}
security: [{bearer: []}]
paths:
  /v1/me:
    get:
      responses:
        "200": {description: me}
components:
  securitySchemes:
    bearer: {type: http, scheme: bearer}
`

type scanFixture struct {
	url, ca, spec, dir string
	api                *scanAPI
}

func newScanFixture(t *testing.T, vulnerable bool) *scanFixture {
	t.Helper()
	api := &scanAPI{vulnerable: vulnerable}
	srv := httptest.NewUnstartedServer(api)
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the TLS check's refused handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	f := &scanFixture{api: api, url: srv.URL, dir: dir, ca: filepath.Join(dir, "ca.pem"), spec: filepath.Join(dir, "openapi.yaml")}
	if err := os.WriteFile(f.ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.spec, []byte(scanTestSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// args returns a full command line; it also resets the API's rate-limit
// counters, since each run's rate-limit check trips them on purpose.
func (f *scanFixture) args(extra ...string) []string {
	f.api.mu.Lock()
	f.api.failures, f.api.calls = 0, 0
	f.api.mu.Unlock()
	return append([]string{"gatehouse", "scan", f.url, "--ca", f.ca, "--spec", f.spec, "--user", "a@x:pw-a", "--user", "b@x:pw-b"}, extra...)
}

// runScan runs the command and returns stdout, stderr and the exit code.
func runScan(t *testing.T, args []string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), args, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
	code := 0
	if err != nil {
		var ee *exitError
		if !errors.As(err, &ee) {
			t.Fatalf("error without an exit code: %v", err)
		}
		code = ee.code
		stderr.WriteString(ee.msg)
	}
	return stdout.String(), stderr.String(), code
}

func (f *scanFixture) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestScanBadInvocations(t *testing.T) {
	f := newScanFixture(t, false)
	closed := freePort(t)
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"no url", []string{"gatehouse", "scan"}, "target URL is required"},
		{"unknown flag", f.args("--nope"), "flag provided but not defined"},
		{"extra argument", f.args("extra"), "unexpected argument"},
		{"not a url", []string{"gatehouse", "scan", "ftp://x"}, "not an absolute http(s) URL"},
		{"concurrency 0", f.args("--concurrency", "0"), "between 1 and 32"},
		{"concurrency 33", f.args("--concurrency", "33"), "between 1 and 32"},
		{"budget 0", f.args("--budget", "0"), "at least 1"},
		{"timeout 0", f.args("--timeout", "0s"), "positive"},
		{"bad format", f.args("--format", "pdf"), "--format"},
		{"bad fail-on", f.args("--fail-on", "critical"), "--fail-on"},
		{"user without password", f.args("--user", "nobody"), "name:password"},
		{"missing spec", f.args("--spec", filepath.Join(f.dir, "nope.yaml")), "--spec"},
		{"invalid spec", f.args("--spec", f.write(t, "bad.yaml", "swagger: '2.0'\n")), "invalid OpenAPI"},
		{"bad ca", f.args("--ca", f.write(t, "bad.pem", "not pem")), "no PEM certificate"},
		{"suppression without reason", f.args("--suppress", f.write(t, "sup.yaml", "- id: GH-HDR-001\n")), "reason is required"},
		{"bad baseline", f.args("--baseline", f.write(t, "base.json", "{}")), "--baseline"},
		{"unreachable target", []string{"gatehouse", "scan", "https://" + closed, "--timeout", "30s"}, "unreachable"},
		{"wrong password", []string{"gatehouse", "scan", f.url, "--ca", f.ca, "--user", "a@x:wrong"}, "could not sign in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runScan(t, tc.args)
			if code != 2 || !strings.Contains(stderr, tc.msg) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.msg)
			}
			if strings.Contains(stderr, "pw-a") || strings.Contains(stderr, ":wrong") {
				t.Errorf("a password reached stderr: %q", stderr)
			}
		})
	}
}

func TestScanHelp(t *testing.T) {
	stdout, _, code := runScan(t, []string{"gatehouse", "scan", "--help"})
	if code != 0 || !strings.Contains(stdout, "--fail-on") {
		t.Fatalf("help: exit %d\n%s", code, stdout)
	}
}

func TestScanSecureExitsZero(t *testing.T) {
	f := newScanFixture(t, false)
	stdout, stderr, code := runScan(t, f.args("--format", "json"))
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
	var rep struct {
		Version      int   `json:"version"`
		RequestsUsed int   `json:"requests_used"`
		Findings     []any `json:"findings"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep.Version != 1 || len(rep.Findings) != 0 || rep.RequestsUsed == 0 {
		t.Fatalf("report %+v, %v\n%s", rep, err, stdout)
	}
	if strings.Contains(stdout, "pw-a") || strings.Contains(stdout, "tok-a-0123456789") {
		t.Fatal("a secret reached the report")
	}
}

func TestScanFailOnSuppressAndBaseline(t *testing.T) {
	f := newScanFixture(t, true)
	// high (pprof) and low (nosniff) findings.
	if _, stderr, code := runScan(t, f.args()); code != 1 || !strings.Contains(stderr, "at or above high") {
		t.Fatalf("default --fail-on high: exit %d %s", code, stderr)
	}
	sup := f.write(t, "sup.yaml", "- id: GH-EXP-001\n  reason: pprof is firewalled in production\n")
	if _, stderr, code := runScan(t, f.args("--suppress", sup)); code != 0 {
		t.Fatalf("suppressed high, --fail-on high: exit %d %s", code, stderr)
	}
	stdout, _, code := runScan(t, f.args("--suppress", sup, "--fail-on", "low", "--format", "json"))
	var got struct {
		Findings []struct {
			ID string `json:"id"`
		} `json:"findings"`
		Suppressed int `json:"suppressed"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	if code != 1 || len(got.Findings) != 1 || got.Findings[0].ID != "GH-HDR-001" || got.Suppressed != 1 {
		t.Fatalf("--fail-on low with suppression: exit %d, %+v", code, got)
	}

	first := filepath.Join(f.dir, "first.json")
	if _, _, code := runScan(t, f.args("--format", "json", "--out", first)); code != 1 {
		t.Fatalf("first run exit %d", code)
	}
	stdout, stderr, code := runScan(t, f.args("--format", "json", "--baseline", first, "--fail-on", "info"))
	if code != 0 {
		t.Fatalf("second run against its own baseline: exit %d %s\n%s", code, stderr, stdout)
	}
	var rep struct {
		Findings []any `json:"findings"`
		Known    int   `json:"known"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || len(rep.Findings) != 0 || rep.Known < 2 {
		t.Fatalf("baseline run: %+v %v", rep, err)
	}
}

func TestScanFormatsAndOut(t *testing.T) {
	f := newScanFixture(t, true)
	for _, tc := range []struct {
		format string
		check  func(string) error
	}{
		{"text", func(s string) error {
			if !strings.Contains(s, "== HIGH") || !strings.Contains(s, "GH-EXP-001") {
				return errors.New("text summary lacks the high finding")
			}
			return nil
		}},
		{"json", func(s string) error { var v map[string]any; return json.Unmarshal([]byte(s), &v) }},
		{"sarif", func(s string) error {
			var v struct {
				Version string `json:"version"`
				Runs    []any  `json:"runs"`
			}
			if err := json.Unmarshal([]byte(s), &v); err != nil || v.Version != "2.1.0" || len(v.Runs) != 1 {
				return fmt.Errorf("sarif: %v %+v", err, v)
			}
			return nil
		}},
		{"junit", func(s string) error { var v struct{ XMLName xml.Name }; return xml.Unmarshal([]byte(s), &v) }},
		{"html", func(s string) error {
			if !strings.HasPrefix(s, "<!DOCTYPE html>") || !strings.Contains(s, "<svg") {
				return errors.New("not the HTML report")
			}
			return nil
		}},
	} {
		t.Run(tc.format, func(t *testing.T) {
			out := filepath.Join(f.dir, "report."+tc.format)
			stdout, _, code := runScan(t, f.args("--format", tc.format, "--out", out))
			if code != 1 || stdout != "" {
				t.Fatalf("exit %d, stdout %q (want 1 and nothing: the report goes to --out)", code, stdout)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.check(string(b)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
