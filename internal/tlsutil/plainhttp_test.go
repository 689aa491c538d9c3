package tlsutil

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestPlainHTTPHandler(t *testing.T) {
	const html = "text/html,application/xhtml+xml,*/*;q=0.8"
	tests := []struct {
		name, method, target, host, accept string
		opts                               PlainHTTPOptions
		wantStatus                         int
		wantLocation                       string
	}{
		{name: "browser GET", method: "GET", target: "/v1/notes?x=1&y=%2F", host: "api.example.com", accept: html,
			wantStatus: 301, wantLocation: "https://api.example.com/v1/notes?x=1&y=%2F"},
		{name: "browser HEAD", method: "HEAD", target: "/", host: "api.example.com", accept: "text/html",
			wantStatus: 301, wantLocation: "https://api.example.com/"},
		{name: "https port kept", method: "GET", target: "/a", host: "api.example.com:8080", accept: html,
			opts: PlainHTTPOptions{HTTPSPort: "8443"}, wantStatus: 301, wantLocation: "https://api.example.com:8443/a"},
		{name: "port 443 dropped", method: "GET", target: "/a", host: "api.example.com", accept: html,
			opts: PlainHTTPOptions{HTTPSPort: "443"}, wantStatus: 301, wantLocation: "https://api.example.com/a"},
		{name: "ipv6 literal", method: "GET", target: "/a", host: "[::1]:80", accept: html,
			opts: PlainHTTPOptions{HTTPSPort: "8443"}, wantStatus: 301, wantLocation: "https://[::1]:8443/a"},
		{name: "case and trailing dot", method: "GET", target: "/", host: "API.Example.COM.", accept: html,
			opts: PlainHTTPOptions{Hosts: []string{"api.example.com"}}, wantStatus: 301, wantLocation: "https://api.example.com/"},
		{name: "escaped path kept", method: "GET", target: "/a%2Fb/c%20d", host: "h.example", accept: html,
			wantStatus: 301, wantLocation: "https://h.example/a%2Fb/c%20d"},
		{name: "double slash path stays on host", method: "GET", target: "//evil.example/x", host: "h.example", accept: html,
			wantStatus: 301, wantLocation: "https://h.example//evil.example/x"},

		{name: "api GET json", method: "GET", target: "/v1/notes", host: "api.example.com", accept: "application/json", wantStatus: 403},
		{name: "api GET no accept", method: "GET", target: "/v1/notes", host: "api.example.com", wantStatus: 403},
		{name: "POST with html accept", method: "POST", target: "/auth/v1/token", host: "api.example.com", accept: html, wantStatus: 403},
		{name: "PUT", method: "PUT", target: "/v1/notes/1", host: "api.example.com", wantStatus: 403},
		{name: "DELETE", method: "DELETE", target: "/v1/notes/1", host: "api.example.com", accept: html, wantStatus: 403},
		{name: "OPTIONS", method: "OPTIONS", target: "/", host: "api.example.com", accept: html, wantStatus: 403},
		{name: "text/htmlx is not html", method: "GET", target: "/", host: "api.example.com", accept: "text/htmlx", wantStatus: 403},

		{name: "host not allowed", method: "GET", target: "/", host: "evil.example", accept: html,
			opts: PlainHTTPOptions{Hosts: []string{"api.example.com"}}, wantStatus: 400},
		{name: "wildcard allows subdomain", method: "GET", target: "/", host: "eu.example.com", accept: html,
			opts: PlainHTTPOptions{Hosts: []string{"api.example.com", "*.example.com"}}, wantStatus: 301, wantLocation: "https://eu.example.com/"},
		{name: "wildcard does not allow the bare domain", method: "GET", target: "/", host: "example.com", accept: html,
			opts: PlainHTTPOptions{Hosts: []string{"*.example.com"}}, wantStatus: 400},
		{name: "wildcard does not allow a suffix match", method: "GET", target: "/", host: "evilexample.com", accept: html,
			opts: PlainHTTPOptions{Hosts: []string{"*.example.com"}}, wantStatus: 400},
		{name: "host with slash", method: "GET", target: "/", host: "evil.example/x", accept: html, wantStatus: 400},
		{name: "host with at", method: "GET", target: "/", host: "user@evil.example", accept: html, wantStatus: 400},
		{name: "empty host", method: "GET", target: "/", host: "", accept: html, wantStatus: 400},
		{name: "wildcard host", method: "GET", target: "/", host: "*.example.com", accept: html, wantStatus: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://placeholder"+tc.target, strings.NewReader("password=secret"))
			r.Host = tc.host
			if tc.accept != "" {
				r.Header.Set("Accept", tc.accept)
			}
			w := httptest.NewRecorder()
			PlainHTTPHandler(tc.opts).ServeHTTP(w, r)
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d (%s)", w.Code, tc.wantStatus, w.Body)
			}
			if got := w.Header().Get("Location"); got != tc.wantLocation {
				t.Errorf("Location %q, want %q", got, tc.wantLocation)
			}
			if tc.wantStatus >= 400 {
				if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type %q", ct)
				}
				var p map[string]any
				if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p["status"] != float64(tc.wantStatus) {
					t.Errorf("not a problem document: %s", w.Body)
				}
				if tc.wantStatus == 403 && !strings.Contains(w.Body.String(), "https") {
					t.Errorf("the 403 does not say HTTPS is required: %s", w.Body)
				}
			}
			if w.Header().Get("Connection") != "close" {
				t.Error("plain-HTTP connection not closed")
			}
		})
	}
}

func TestPlainHTTPHandlerChallenge(t *testing.T) {
	var seen []string
	h := PlainHTTPHandler(PlainHTTPOptions{Challenge: func(w http.ResponseWriter, r *http.Request) bool {
		seen = append(seen, r.URL.Path)
		if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			w.Write([]byte("key-authz"))
			return true
		}
		return false
	}})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "http://h.example/.well-known/acme-challenge/tok", nil))
	if w.Code != 200 || w.Body.String() != "key-authz" {
		t.Fatalf("challenge not answered: %d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "http://h.example/v1/x", nil))
	if w.Code != 403 || len(seen) != 2 {
		t.Fatalf("non-challenge: %d, challenge hook saw %v", w.Code, seen)
	}
}

// Whatever arrives, the handler redirects only to https on an allowed host, or
// answers with an error.
func FuzzPlainHTTPHandler(f *testing.F) {
	f.Add("GET", "/v1/notes?x=1", "api.example.com", "text/html")
	f.Add("GET", "//evil.example/", "api.example.com:80", "text/html")
	f.Add("GET", "/", "evil.example", "text/html")
	f.Add("HEAD", "/%2e%2e/", "API.EXAMPLE.COM.", "text/html;q=0.1")
	f.Add("POST", "/auth/v1/token", "api.example.com", "*/*")
	f.Add("GET", "/", "[::1]", "text/html")
	f.Add("GET", "/", "api.example.com\r\nX: y", "text/html")
	h := PlainHTTPHandler(PlainHTTPOptions{HTTPSPort: "8443", Hosts: []string{"api.example.com"}})
	f.Fuzz(func(t *testing.T, method, path, host, accept string) {
		r, err := http.NewRequest(method, "http://placeholder/", nil)
		if err != nil {
			return
		}
		u, err := url.ParseRequestURI(path)
		if err != nil {
			return
		}
		r.URL = u
		r.Host = host
		r.Header.Set("Accept", accept)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case 301:
			loc, err := url.Parse(w.Header().Get("Location"))
			if err != nil || loc.Scheme != "https" || loc.Host != "api.example.com:8443" {
				t.Fatalf("redirect to %q", w.Header().Get("Location"))
			}
		case 400, 403:
		default:
			t.Fatalf("status %d", w.Code)
		}
	})
}
