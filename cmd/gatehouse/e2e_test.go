package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

const pw = "plum-kettle-orbit-42"

// TestEndToEnd drives the real binary path (run → serve) over real TLS: the
// README walkthrough, then checks that nothing secret reached the logs or the
// database file.
func TestEndToEnd(t *testing.T) {
	e := newTestEnv(t, "")
	s := startServer(t, e, nil)

	r := s.signup(t, "ada@example.com", pw)
	wantStatus(t, r, http.StatusCreated)
	if r.header.Get("Cache-Control") != "no-store" || !strings.Contains(r.header.Get("Strict-Transport-Security"), "max-age=") || r.header.Get("X-Request-Id") == "" {
		t.Fatalf("headers: %v", r.header)
	}
	signupRefresh := r.str(t, "refresh_token")

	r = s.login(t, "ada@example.com", pw)
	wantStatus(t, r, http.StatusOK)
	access, refresh := r.str(t, "access_token"), r.str(t, "refresh_token")
	if r.str(t, "token_type") != "Bearer" || r.json(t)["expires_in"].(float64) != 900 {
		t.Fatalf("token response: %s", r.body)
	}

	r = s.get(t, "/auth/v1/user", access)
	wantStatus(t, r, http.StatusOK)
	if r.str(t, "email") != "ada@example.com" {
		t.Fatalf("user: %s", r.body)
	}

	r = s.refresh(t, refresh)
	wantStatus(t, r, http.StatusOK)
	refresh2 := r.str(t, "refresh_token")
	access2 := r.str(t, "access_token")

	// The previous token inside the leeway: the same successor, no revocation.
	r = s.refresh(t, refresh)
	wantStatus(t, r, http.StatusOK)
	if r.str(t, "refresh_token") != refresh2 {
		t.Fatal("leeway replay returned a different successor")
	}
	// Rotate once more, then the first token is two generations old: reuse.
	r = s.refresh(t, refresh2)
	wantStatus(t, r, http.StatusOK)
	refresh3 := r.str(t, "refresh_token")
	r = s.refresh(t, refresh)
	wantStatus(t, r, http.StatusBadRequest)
	if r.str(t, "error") != "invalid_grant" {
		t.Fatalf("reuse: %s", r.body)
	}
	// The family is gone: its newest refresh token and its access tokens fail.
	wantStatus(t, s.refresh(t, refresh3), http.StatusBadRequest)
	r = s.get(t, "/auth/v1/user", access2)
	wantStatus(t, r, http.StatusUnauthorized)
	if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("WWW-Authenticate: %q", r.header.Get("WWW-Authenticate"))
	}

	// Sessions: the signup session is still alive; log it out globally.
	r = s.login(t, "ada@example.com", pw)
	access4 := r.str(t, "access_token")
	r = s.get(t, "/auth/v1/sessions", access4)
	wantStatus(t, r, http.StatusOK)
	if n := len(r.json(t)["sessions"].([]any)); n != 2 {
		t.Fatalf("sessions: %d, want 2: %s", n, r.body)
	}
	r = do(t, s.c, "POST", s.issuer+"/auth/v1/logout?scope=global", "", "", "Authorization", "Bearer "+access4)
	wantStatus(t, r, http.StatusNoContent)
	wantStatus(t, s.refresh(t, signupRefresh), http.StatusBadRequest)
	wantStatus(t, s.get(t, "/auth/v1/user", access4), http.StatusUnauthorized)

	// Wrong password and unknown account answer exactly alike.
	a := s.login(t, "ada@example.com", "wrong-password-1")
	b := s.login(t, "nobody@example.com", "wrong-password-1")
	if a.status != http.StatusBadRequest || b.status != a.status || a.str(t, "error_description") != b.str(t, "error_description") {
		t.Fatalf("enumeration: %d %s vs %d %s", a.status, a.body, b.status, b.body)
	}

	if err := s.stop(t); err != nil {
		t.Fatalf("serve returned %v", err)
	}

	// No secret in the logs or in the database file, byte for byte.
	secrets := []string{pw, refresh, refresh2, refresh3, signupRefresh, access, access2}
	logs := s.stderr.String() + s.stdout.String()
	for _, sec := range secrets {
		if strings.Contains(logs, sec) {
			t.Errorf("a secret (%d bytes) appears in the logs", len(sec))
		}
	}
	if !strings.Contains(logs, "login_succeeded") || !strings.Contains(logs, "refresh_token_reused") {
		t.Errorf("audit events missing from the log")
	}
	assertNotInFiles(t, []string{e.db, e.db + "-wal"}, append(append(secrets, "ada@example.com"), privateKeyMarkers()...))
}

// privateKeyMarkers are byte strings that a plaintext PKCS#8 EC or Ed25519 key
// would contain.
func privateKeyMarkers() []string {
	return []string{"PRIVATE KEY", "\x30\x81\x87\x02\x01\x00\x30\x13\x06\x07\x2a\x86\x48\xce\x3d\x02\x01", "\x30\x2e\x02\x01\x00\x30\x05\x06\x03\x2b\x65\x70"}
}

func assertNotInFiles(t *testing.T, files, needles []string) {
	t.Helper()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				t.Errorf("%s contains a secret in plaintext (%q…)", f, n[:min(len(n), 6)])
			}
		}
	}
}

// TestConcurrentRefresh: 20 concurrent refreshes with one token produce one
// successor and never a 5xx.
func TestConcurrentRefresh(t *testing.T) {
	s := startServer(t, newTestEnv(t, ""), nil)
	r := s.signup(t, "grace@example.com", pw)
	wantStatus(t, r, http.StatusCreated)
	rt := r.str(t, "refresh_token")
	var wg sync.WaitGroup
	got := make([]*response, 20)
	for i := range got {
		wg.Go(func() { got[i] = s.refresh(t, rt) })
	}
	wg.Wait()
	succ := map[string]bool{}
	for _, r := range got {
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		succ[r.str(t, "refresh_token")] = true
	}
	if len(succ) != 1 {
		t.Fatalf("%d different successors, want 1", len(succ))
	}
}

// TestParallelGuessing: 50 parallel wrong passwords for one account; the lock
// threshold (5) is never exceeded — the correct password is refused afterwards
// too, and the lock is per account (another account still signs in).
func TestParallelGuessing(t *testing.T) {
	s := startServer(t, newTestEnv(t, "identity:\n  lockout: {account_failures: 5, ip_failures: 100}\n  password: {hash_queue_timeout: 60s}\n"), nil)
	wantStatus(t, s.signup(t, "alan@example.com", pw), http.StatusCreated)
	wantStatus(t, s.signup(t, "other@example.com", pw), http.StatusCreated)
	var wg sync.WaitGroup
	got := make([]*response, 50)
	for i := range got {
		wg.Go(func() { got[i] = s.login(t, "alan@example.com", "not-the-password") })
	}
	wg.Wait()
	counts := map[int]int{}
	for _, r := range got {
		counts[r.status]++
	}
	if counts[http.StatusBadRequest] != 5 || counts[http.StatusTooManyRequests] != 45 {
		t.Fatalf("statuses %v: want exactly 5 password checks (400) and 45 refusals (429)", counts)
	}
	r := s.login(t, "alan@example.com", pw)
	wantStatus(t, r, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	wantStatus(t, s.login(t, "other@example.com", pw), http.StatusOK)
}

// TestIPThrottle: one IP spraying many accounts is stopped at ip_failures,
// whichever accounts it tries, and 50 parallel attempts do not overrun it.
func TestIPThrottle(t *testing.T) {
	s := startServer(t, newTestEnv(t, "identity:\n  lockout: {account_failures: 5, ip_failures: 10}\n  password: {hash_queue_timeout: 60s}\n"), nil)
	var wg sync.WaitGroup
	got := make([]*response, 50)
	for i := range got {
		wg.Go(func() { got[i] = s.login(t, fmt.Sprintf("spray%d@example.com", i), "Winter2026!") })
	}
	wg.Wait()
	counts := map[int]int{}
	for _, r := range got {
		counts[r.status]++
	}
	if counts[http.StatusBadRequest] != 10 || counts[http.StatusTooManyRequests] != 40 {
		t.Fatalf("statuses %v: want exactly 10 checks and 40 refusals", counts)
	}
}

// TestGracefulShutdown: a request in flight when SIGTERM (ctx cancel) arrives
// completes; new connections are refused afterwards.
func TestGracefulShutdown(t *testing.T) {
	s := startServer(t, newTestEnv(t, ""), nil)
	// Send half a sign-up body, stop the server, then send the rest: the
	// request is in flight for the whole shutdown.
	pr, pwr := io.Pipe()
	req, _ := http.NewRequest("POST", s.issuer+"/auth/v1/signup", pr)
	req.Header.Set("Content-Type", jsonType)
	body := `{"email":"late@example.com","password":"` + pw + `"}`
	type result struct {
		status int
		err    error
	}
	res := make(chan result, 1)
	// HTTP/1.1: the connection is active from its first request byte, so
	// Shutdown must wait for it (an HTTP/2 stream not yet acknowledged could be
	// refused by GOAWAY and retried, which would prove nothing).
	h1cfg := s.c.Transport.(*http.Transport).TLSClientConfig.Clone()
	h1cfg.NextProtos = []string{"http/1.1"}
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: h1cfg}}
	go func() {
		resp, err := h1.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		resp.Body.Close()
		res <- result{status: resp.StatusCode}
	}()
	if _, err := pwr.Write([]byte(body[:10])); err != nil {
		t.Fatal(err)
	}
	// Let the server accept the connection and start reading the body: a
	// connection still in the kernel's accept queue dies with the listener.
	time.Sleep(300 * time.Millisecond)
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop(t) }()
	// Wait until the listener is closed (new connections refused), then finish.
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still open after stop")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := pwr.Write([]byte(body[10:])); err != nil {
		t.Fatal(err)
	}
	pwr.Close()
	r := <-res
	if r.err != nil || r.status != http.StatusCreated {
		t.Fatalf("in-flight request: %d %v\n%s", r.status, r.err, s.stderr.String())
	}
	if err := <-stopped; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
