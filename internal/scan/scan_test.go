package scan

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSeverity(t *testing.T) {
	for in, want := range map[string]Severity{"info": SeverityInfo, "LOW": SeverityLow, " medium ": SeverityMedium, "High": SeverityHigh} {
		got, err := ParseSeverity(in)
		if err != nil || got != want {
			t.Errorf("ParseSeverity(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "critical", "hi", "4"} {
		if _, err := ParseSeverity(bad); !errors.Is(err, ErrBadSeverity) {
			t.Errorf("ParseSeverity(%q) err = %v", bad, err)
		}
	}
	if _, err := Severity(0).MarshalText(); err == nil {
		t.Error("the zero severity must not marshal")
	}
}

func TestNormalizePathAndFingerprint(t *testing.T) {
	for in, want := range map[string]string{
		"":               "/",
		"/":              "/",
		"/v1/notes/42":   "/v1/notes/{}",
		"/v1/notes/{id}": "/v1/notes/{}",
		"/v1/users/3f2b1c9e-0000-4000-8000-00000000abcd/": "/v1/users/{}",
		"/v1/x/deadbeefdeadbeef?q=1#f":                    "/v1/x/{}",
		"v1/search":                                       "/v1/search",
	} {
		if got := NormalizePath(in); got != want {
			t.Errorf("NormalizePath(%q) = %q, want %q", in, got, want)
		}
	}
	a := Fingerprint("GH-BOLA-001", "get", "/v1/notes/17", "GET")
	b := Fingerprint("GH-BOLA-001", "GET", "/v1/notes/{id}", "GET")
	if a != b || len(a) != 32 {
		t.Errorf("fingerprints of the same weakness differ: %s %s", a, b)
	}
	if a == Fingerprint("GH-BOLA-001", "GET", "/v1/notes/{id}", "DELETE") {
		t.Error("the distinguishing parameter must change the fingerprint")
	}
}

func TestMask(t *testing.T) {
	m := &Masker{}
	m.Add("hunter2-password", "abc") // "abc" is too short to mask
	jwt := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
	for _, tc := range []struct{ in, mustNot, must string }{
		{"password=hunter2-password&user=a", "hunter2", "****"},
		{"Authorization: Bearer opaque-token-value", "opaque-token-value", "Bearer ****"},
		{"token " + jwt, "c2lnbmF0dXJl", "eyJhbGciOi"},
		{"Set-Cookie: sid=s3cr3t; HttpOnly", "s3cr3t", "Set-Cookie: ****"},
		{"Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz", "Basic ****"},
		{"Authorization: Bearer <forged token, header {}>", "", "<forged token"},
		{`{"password":"p@ss","refresh_token":"rt-1"}`, "p@ss", `"password":"****"`},
		{`{"h":"$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"}`, "ABCDEFGHIJ", "$2b$****"},
		{"key AKIAIOSFODNN7EXAMPLE", "IOSFODNN7EXAMPLE", "AKIAIOSF****"},
		{"card 4111 1111 1111 1111", "4111 1111", "****1111"},
		{"-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----", "MIIEv", "BEGIN PRIVATE KEY-----****"},
		{"abc stays", "", "abc stays"},
	} {
		got := m.Mask(tc.in)
		if tc.mustNot != "" && strings.Contains(got, tc.mustNot) {
			t.Errorf("Mask(%q) = %q still contains %q", tc.in, got, tc.mustNot)
		}
		if !strings.Contains(got, tc.must) {
			t.Errorf("Mask(%q) = %q, want it to contain %q", tc.in, got, tc.must)
		}
	}
	var nilM *Masker
	if got := nilM.Mask("Bearer x.y.z"); strings.Contains(got, "x.y.z") {
		t.Errorf("nil masker must still mask by pattern: %q", got)
	}
}

func TestLuhn(t *testing.T) {
	for in, want := range map[string]bool{"4111111111111111": true, "4111111111111112": false, "378282246310005": true, "123": false, "41111111111111a1": false} {
		if Luhn(in) != want {
			t.Errorf("Luhn(%q) != %v", in, want)
		}
	}
}

func newTestClient(t *testing.T, srv *httptest.Server, o ClientOptions) *Client {
	t.Helper()
	u, _ := url.Parse(srv.URL)
	c, err := NewClient(u, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientBudgetIsNeverExceeded(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if r.URL.Path == "/hop" {
			http.Redirect(w, r, "/done", http.StatusFound)
		}
	}))
	defer srv.Close()
	c := newTestClient(t, srv, ClientOptions{Budget: 25, Concurrency: 8})
	var wg sync.WaitGroup
	var budgetErrs atomic.Int64
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				path := "/x"
				if j%2 == 0 {
					path = "/hop" // a followed redirect costs a request too
				}
				if _, err := c.Do(t.Context(), Request{Path: path}); errors.Is(err, ErrBudget) {
					budgetErrs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if served.Load() > 25 {
		t.Fatalf("server saw %d requests with a budget of 25", served.Load())
	}
	if c.Used() != 25 || c.Remaining() != 0 || budgetErrs.Load() == 0 {
		t.Fatalf("used %d, remaining %d, budget errors %d", c.Used(), c.Remaining(), budgetErrs.Load())
	}
}

func TestClientRedirects(t *testing.T) {
	var otherHits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { otherHits.Add(1) }))
	defer other.Close()
	otherURL, _ := url.Parse(other.URL)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away-host":
			// localhost is another host name, even for the same machine.
			http.Redirect(w, r, "http://localhost:"+otherURL.Port()+"/", http.StatusFound)
		case "/away-port":
			http.Redirect(w, r, other.URL+"/", http.StatusFound)
		case "/same":
			http.Redirect(w, r, "/landed", http.StatusFound)
		default:
			_, _ = w.Write([]byte("landed"))
		}
	}))
	defer srv.Close()
	c := newTestClient(t, srv, ClientOptions{})
	for _, p := range []string{"/away-host", "/away-port"} {
		r, err := c.Do(t.Context(), Request{Path: p})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != http.StatusFound {
			t.Errorf("%s: status %d, want the 302 itself", p, r.Status)
		}
	}
	if otherHits.Load() != 0 {
		t.Fatalf("the other host received %d requests", otherHits.Load())
	}
	r, err := c.Do(t.Context(), Request{Path: "/same"})
	if err != nil || r.Status != 200 || string(r.Body) != "landed" {
		t.Fatalf("same-host redirect: %v %v", r, err)
	}
	if _, err := c.Do(t.Context(), Request{Path: "https://attacker.invalid/x"}); !errors.Is(err, ErrForeignURL) {
		t.Fatalf("a foreign absolute URL must be refused, got %v", err)
	}
}

func TestClientRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		header     string
		noRetry    bool
		wantStatus int
		wantCalls  int64
		wantSleep  time.Duration
		wantErr    error
	}{
		{"short wait honoured", "2", false, 200, 2, 2 * time.Second, nil},
		{"http date", "", false, 200, 2, 0, nil},
		{"too long: stop", "3600", false, 429, 1, 0, ErrBackoff},
		{"garbage: no wait", "soon", false, 429, 1, 0, nil},
		{"rate-limit check sees every 429", "1", true, 429, 1, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					h := tc.header
					if tc.name == "http date" {
						h = time.Now().Add(-time.Minute).UTC().Format(http.TimeFormat)
					}
					w.Header().Set("Retry-After", h)
					w.WriteHeader(429)
				}
			}))
			defer srv.Close()
			var slept []time.Duration
			c := newTestClient(t, srv, ClientOptions{Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }})
			r, err := c.Do(t.Context(), Request{Path: "/", NoRetry: tc.noRetry})
			if !errors.Is(err, tc.wantErr) && !(tc.wantErr == nil && err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if r == nil || r.Status != tc.wantStatus || calls.Load() != tc.wantCalls {
				t.Fatalf("status %v calls %d, want %d and %d", r, calls.Load(), tc.wantStatus, tc.wantCalls)
			}
			if tc.wantCalls == 2 && (len(slept) != 1 || slept[0] != tc.wantSleep) {
				t.Fatalf("slept %v, want one wait of %s", slept, tc.wantSleep)
			}
			if tc.wantCalls == 1 && len(slept) != 0 {
				t.Fatalf("slept %v, want none", slept)
			}
		})
	}
}

func TestClientOptionsBounds(t *testing.T) {
	u, _ := url.Parse("https://127.0.0.1:1")
	c, err := NewClient(u, ClientOptions{Concurrency: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if cap(c.sem) != 32 || c.Budget() != 2000 {
		t.Fatalf("concurrency %d budget %d", cap(c.sem), c.Budget())
	}
	for _, bad := range []string{"", "ftp://x", "/relative", "https://"} {
		u, _ := url.Parse(bad)
		if _, err := NewClient(u, ClientOptions{}); err == nil {
			t.Errorf("NewClient(%q) accepted", bad)
		}
	}
}

func TestBreakSignature(t *testing.T) {
	for _, tok := range []string{"aaa.bbb.cccccccc", "opaque-token", "a.b.", "AAAA.AAAA.AAAA"} {
		b := BreakSignature(tok)
		if b == tok || strings.Count(b, ".") != strings.Count(tok, ".") {
			t.Errorf("BreakSignature(%q) = %q", tok, b)
		}
	}
}
