package tlsutil

import (
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/problem"
)

// PlainHTTPOptions configure PlainHTTPHandler. The zero value redirects to port
// 443 for any plausible host name.
type PlainHTTPOptions struct {
	// HTTPSPort is the port browsers are sent to. "" and "443" leave it out of the URL.
	HTTPSPort string
	// Hosts, if not empty, are the only host names redirected to ("*.example.com"
	// allows the names under example.com); a request for any other Host gets 400. Why: a redirect built from an arbitrary Host header is an
	// open redirect that an intermediate cache may store for other users.
	Hosts []string
	// Challenge, optional, answers ACME HTTP-01 challenge requests and reports
	// whether it did (certmagic's ACMEIssuer.HandleHTTPChallenge).
	Challenge func(http.ResponseWriter, *http.Request) bool
}

// PlainHTTPHandler is the whole plain-HTTP listener: it answers ACME HTTP-01
// challenges, sends browser navigations (GET or HEAD accepting text/html) to the
// same host, path and query over HTTPS with 301, and answers everything else with
// a 403 problem saying HTTPS is required.
//
// It is deliberately not the main handler and never wraps it: nothing that arrives
// in plain text may reach an upstream or the identity API, because whatever it
// carried (passwords, tokens) was already exposed on the way. The request body is
// never read.
func PlainHTTPHandler(opts PlainHTTPOptions) http.Handler {
	port := opts.HTTPSPort
	if port == "443" {
		port = ""
	}
	hosts := make([]string, len(opts.Hosts))
	for i, h := range opts.Hosts {
		hosts[i] = strings.ToLower(h)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if opts.Challenge != nil && opts.Challenge(w, r) {
			return
		}
		// Why close: a client that sent one request in plain text should not be
		// encouraged to send more on the same connection.
		w.Header().Set("Connection", "close")
		if !browserNavigation(r) {
			problem.Write(w, problem.New(http.StatusForbidden, "https-required", "HTTPS required",
				"this server does not accept requests over plain HTTP; send them to the https:// address (anything already sent here, including credentials, travelled unencrypted)"), "")
			return
		}
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(strings.TrimSuffix(host, "."))
		if !hostLike(host) || strings.HasPrefix(host, "*.") || (len(hosts) > 0 && !hostAllowed(hosts, host)) {
			problem.Write(w, problem.New(http.StatusBadRequest, "unknown-host", "Unknown host",
				"this server does not serve the requested host"), "")
			return
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]" // IPv6 literal
		}
		if port != "" {
			host += ":" + port
		}
		u := url.URL{Scheme: "https", Host: host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
		if u.Path == "" {
			u.Path = "/"
		}
		http.Redirect(w, r, u.String(), http.StatusMovedPermanently)
	})
}

// hostAllowed reports whether host is one of hosts, where "*.example.com" allows
// any name under example.com (not example.com itself).
func hostAllowed(hosts []string, host string) bool {
	for _, h := range hosts {
		if h == host || (strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:]) && len(host) > len(h)-1) {
			return true
		}
	}
	return false
}

// browserNavigation reports a GET or HEAD whose Accept names text/html: what a
// browser or WebView sends when a user follows an http:// link.
func browserNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/html") {
				return true
			}
		}
	}
	return false
}
