package checks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
)

// TLS checks the transport: protocol versions, cipher suites, the certificate
// (expiry, chain, host name), HSTS and whether plain HTTP is answered.
type TLS struct{}

var _ scan.Check = TLS{}

var tlsRules = []scan.Rule{
	{ID: "GH-TLS-001", Title: "Legacy TLS version accepted", Severity: scan.SeverityMedium,
		Fix: "Set the minimum TLS version to 1.2 (better 1.3) on the listener or load balancer."},
	{ID: "GH-TLS-002", Title: "Weak TLS 1.2 cipher suites accepted (CBC or RSA key exchange)", Severity: scan.SeverityMedium,
		Fix: "Offer only ECDHE key exchange with AEAD ciphers (AES-GCM, ChaCha20-Poly1305) for TLS 1.2; Go's default suite list does this."},
	{ID: "GH-TLS-003", Title: "Certificate expires within 30 days", Severity: scan.SeverityMedium,
		Fix: "Renew the certificate and automate renewal (ACME) so it never gets this close to expiry."},
	{ID: "GH-TLS-004", Title: "Certificate does not verify (chain or host name)", Severity: scan.SeverityHigh,
		Fix: "Serve the full chain from a trusted CA with the API's host name in subjectAltName."},
	{ID: "GH-TLS-005", Title: "HSTS missing or too short", Severity: scan.SeverityMedium,
		Fix: "Send Strict-Transport-Security: max-age=31536000; includeSubDomains on every HTTPS response."},
	{ID: "GH-TLS-006", Title: "API answers over plain HTTP", Severity: scan.SeverityHigh,
		Fix: "Do not listen on plain HTTP, or answer it only with a redirect to HTTPS and never with API data."},
}

// MinHSTSMaxAge is the shortest HSTS max-age accepted without a finding (180 days).
const MinHSTSMaxAge = 15552000

// ID implements scan.Check.
func (TLS) ID() string { return "tls" }

// Phase implements scan.Check: no credential has been sent yet.
func (TLS) Phase() scan.Phase { return scan.PhaseTransport }

// Rules implements scan.Check.
func (TLS) Rules() []scan.Rule { return tlsRules }

// Run implements scan.Check.
func (c TLS) Run(ctx context.Context, t *scan.Target) ([]scan.Finding, error) {
	var out []scan.Finding
	if t.Base.Scheme == "https" {
		fs, err := c.handshakes(ctx, t)
		out = append(out, fs...)
		if err != nil {
			return out, err
		}
		fs, err = c.hsts(ctx, t)
		out = append(out, fs...)
		if err != nil {
			return out, err
		}
	}
	fs, err := c.plainHTTP(ctx, t)
	return append(out, fs...), err
}

// handshake opens one TLS connection with cfg. Every handshake is charged to
// the budget like a request.
func handshake(ctx context.Context, t *scan.Target, cfg *tls.Config) (*tls.ConnectionState, error) {
	release, err := t.Client.Spend(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	host := t.Base.Host
	if t.Base.Port() == "" {
		host = net.JoinHostPort(t.Base.Hostname(), "443")
	}
	raw, err := (&net.Dialer{}).DialContext(hctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", host, err)
	}
	defer raw.Close()
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(hctx); err != nil {
		return nil, err
	}
	st := conn.ConnectionState()
	return &st, nil
}

// probeConfig is for inspection handshakes only: verification is done by hand
// afterwards (so a bad certificate becomes a finding instead of a failure),
// and nothing but the handshake is ever sent on these connections.
func probeConfig(t *scan.Target) *tls.Config {
	cfg := t.Client.TLSConfig()
	cfg.InsecureSkipVerify = true
	cfg.ServerName = t.Base.Hostname()
	cfg.MinVersion = tls.VersionTLS12
	cfg.MaxVersion = 0
	cfg.CipherSuites = nil
	return cfg
}

func (TLS) handshakes(ctx context.Context, t *scan.Target) ([]scan.Finding, error) {
	var out []scan.Finding
	st, err := handshake(ctx, t, probeConfig(t))
	if err != nil {
		if errors.Is(err, scan.ErrBudget) || ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	if len(st.PeerCertificates) > 0 {
		out = append(out, certFindings(t, st.PeerCertificates, t.Client.TLSConfig().RootCAs)...)
	}
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		cfg := probeConfig(t)
		cfg.MinVersion, cfg.MaxVersion = v, v
		_, err := handshake(ctx, t, cfg)
		if errors.Is(err, scan.ErrBudget) || ctx.Err() != nil {
			return out, err
		}
		name := tls.VersionName(v)
		switch {
		case err == nil:
			f := newFinding(t, ruleByID(tlsRules, "GH-TLS-001"), "tls", "TLS", "/", name, nil, "",
				fmt.Sprintf("A %s handshake with %s succeeded.", name, t.Base.Host))
			f.Evidence.Request = "TLS handshake offering only " + name
			out = append(out, f)
		case localRefusal(err):
			// The Go runtime itself would not offer this version: say so rather
			// than claim the server refused it.
			f := newFinding(t, ruleByID(tlsRules, "GH-TLS-001"), "tls", "TLS", "/", name+"-untested", nil, "",
				fmt.Sprintf("Could not test %s: the Go TLS client refused to offer it (%v).", name, err))
			f.Severity = scan.SeverityInfo
			f.Title = "Legacy TLS version could not be tested"
			out = append(out, f)
		}
	}
	var weak []string
	worst := scan.SeverityLow
	for _, cs := range weakSuites() {
		cfg := probeConfig(t)
		cfg.MaxVersion = tls.VersionTLS12
		cfg.CipherSuites = []uint16{cs.ID}
		_, err := handshake(ctx, t, cfg)
		if errors.Is(err, scan.ErrBudget) || ctx.Err() != nil {
			return out, err
		}
		if err == nil {
			weak = append(weak, cs.Name)
			if !strings.HasPrefix(cs.Name, "TLS_ECDHE_") || cs.Insecure {
				worst = scan.SeverityMedium
			}
		}
	}
	if len(weak) > 0 {
		f := newFinding(t, ruleByID(tlsRules, "GH-TLS-002"), "tls", "TLS", "/", "", nil, "",
			"Accepted with TLS 1.2: "+strings.Join(weak, ", "))
		f.Evidence.Request = "TLS 1.2 handshakes offering one weak suite each"
		f.Severity = worst
		out = append(out, f)
	}
	return out, nil
}

// localRefusal recognises errors raised by our own TLS stack before the
// server could answer.
func localRefusal(err error) bool {
	s := err.Error()
	return !strings.Contains(s, "remote error") && (strings.Contains(s, "no supported versions") ||
		strings.Contains(s, "unsupported") && strings.Contains(s, "version"))
}

// weakSuites are TLS 1.2 suites that use CBC mode or RSA key exchange (no
// forward secrecy), plus RC4 and 3DES.
func weakSuites() []*tls.CipherSuite {
	var out []*tls.CipherSuite
	all := append(tls.CipherSuites(), tls.InsecureCipherSuites()...)
	for _, cs := range all {
		tls12 := false
		for _, v := range cs.SupportedVersions {
			tls12 = tls12 || v == tls.VersionTLS12
		}
		if !tls12 {
			continue
		}
		if strings.Contains(cs.Name, "_CBC_") || strings.HasPrefix(cs.Name, "TLS_RSA_") || strings.Contains(cs.Name, "RC4") {
			out = append(out, cs)
		}
	}
	return out
}

// certFindings checks expiry (< 30 days), the chain and the host name.
func certFindings(t *scan.Target, chain []*x509.Certificate, roots *x509.CertPool) []scan.Finding {
	var out []scan.Finding
	leaf := chain[0]
	now := t.Now()
	left := leaf.NotAfter.Sub(now)
	subject := fmt.Sprintf("subject %q, issuer %q, valid %s to %s", leaf.Subject.String(), leaf.Issuer.String(),
		leaf.NotBefore.UTC().Format(time.DateOnly), leaf.NotAfter.UTC().Format(time.DateOnly))
	if left < 30*24*time.Hour {
		f := newFinding(t, ruleByID(tlsRules, "GH-TLS-003"), "tls", "TLS", "/", "expiry", nil, "", subject)
		f.Evidence.Request = "TLS handshake with " + t.Base.Host
		if left <= 0 {
			f.Severity, f.Title = scan.SeverityHigh, "Certificate has expired"
		}
		out = append(out, f)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	// Verify at a moment inside the leaf's validity, so an expired certificate
	// is reported once (above) and not again as a broken chain.
	at := now
	if !now.Before(leaf.NotAfter) {
		at = leaf.NotAfter.Add(-time.Second)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at}); err != nil {
		f := newFinding(t, ruleByID(tlsRules, "GH-TLS-004"), "tls", "TLS", "/", "chain", nil, "", subject+": "+err.Error())
		f.Evidence.Request = "TLS handshake with " + t.Base.Host
		out = append(out, f)
	}
	if err := leaf.VerifyHostname(t.Base.Hostname()); err != nil {
		f := newFinding(t, ruleByID(tlsRules, "GH-TLS-004"), "tls", "TLS", "/", "hostname", nil, "", subject+": "+err.Error())
		f.Evidence.Request = "TLS handshake with " + t.Base.Host
		out = append(out, f)
	}
	return out
}

func (TLS) hsts(ctx context.Context, t *scan.Target) ([]scan.Finding, error) {
	resp, err := t.Do(ctx, scan.Request{Method: http.MethodGet, Path: "/"})
	if err != nil {
		var cve *tls.CertificateVerificationError
		if errors.As(err, &cve) {
			return nil, nil // reported as GH-TLS-004
		}
		return nil, err
	}
	h := resp.Header.Get("Strict-Transport-Security")
	rule := ruleByID(tlsRules, "GH-TLS-005")
	if h == "" {
		return []scan.Finding{newFinding(t, rule, "tls", http.MethodGet, "/", "missing", resp, "",
			"No Strict-Transport-Security header.", "Strict-Transport-Security")}, nil
	}
	age := hstsMaxAge(h)
	if age < MinHSTSMaxAge {
		f := newFinding(t, rule, "tls", http.MethodGet, "/", "max-age", resp, "",
			fmt.Sprintf("max-age is %d seconds; at least %d (180 days) is expected.", age, MinHSTSMaxAge), "Strict-Transport-Security")
		f.Severity = scan.SeverityLow
		return []scan.Finding{f}, nil
	}
	return nil, nil
}

func hstsMaxAge(h string) int {
	for _, part := range strings.Split(h, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		if strings.EqualFold(k, "max-age") {
			n, err := strconv.Atoi(strings.Trim(v, `" `))
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// plainHTTP tries http:// on the target's host (its own port, then 80): never
// another host.
func (TLS) plainHTTP(ctx context.Context, t *scan.Target) ([]scan.Finding, error) {
	var out []scan.Finding
	seen := map[string]bool{}
	for _, port := range t.PlainPorts {
		if seen[port] || port == "" {
			continue
		}
		seen[port] = true
		u := url.URL{Scheme: "http", Host: net.JoinHostPort(t.Base.Hostname(), port), Path: t.Base.Path + "/"}
		if port == "80" {
			u.Host = t.Base.Hostname()
			if strings.Contains(u.Host, ":") {
				u.Host = "[" + u.Host + "]"
			}
		}
		resp, err := t.Client.Do(ctx, scan.Request{Method: http.MethodGet, Path: u.String()})
		if err != nil {
			if errors.Is(err, scan.ErrBudget) || ctx.Err() != nil {
				return out, err
			}
			continue // refused or not HTTP: good
		}
		if resp.URL != nil && resp.URL.Scheme == "https" {
			continue // followed a same-host redirect to HTTPS
		}
		if scan.Is2xx(resp.Status) {
			f := scan.NewFinding(ruleByID(tlsRules, "GH-TLS-006"), "tls", http.MethodGet, u.String(), "/", "port-"+port,
				scan.Evidence{Request: "GET " + u.String(), Status: resp.Status, Response: excerpt(resp),
					Details: "A plain-HTTP request was answered with content; anything sent this way (tokens, passwords) is readable on the network."}, t.Mask)
			out = append(out, f)
		}
	}
	return out, nil
}
