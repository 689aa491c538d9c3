package checks

import (
	"context"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
)

// Headers checks security headers: nosniff on API responses and no-store on
// token responses. (HSTS is part of the TLS check.)
type Headers struct{}

var _ scan.Check = Headers{}

var headerRules = []scan.Rule{
	{ID: "GH-HDR-001", Title: "X-Content-Type-Options: nosniff missing", Severity: scan.SeverityLow,
		Fix: "Send X-Content-Type-Options: nosniff on every response so browsers never sniff API data as HTML or script."},
	{ID: "GH-HDR-002", Title: "Token response may be cached (Cache-Control: no-store missing)", Severity: scan.SeverityMedium,
		Fix: "Send Cache-Control: no-store (and Pragma: no-cache) on every response carrying tokens or credentials (RFC 6749 §5.1)."},
}

// ID implements scan.Check.
func (Headers) ID() string { return "headers" }

// Phase implements scan.Check.
func (Headers) Phase() scan.Phase { return scan.PhaseActive }

// Rules implements scan.Check.
func (Headers) Rules() []scan.Rule { return headerRules }

// Run implements scan.Check.
func (Headers) Run(ctx context.Context, t *scan.Target) ([]scan.Finding, error) {
	var out []scan.Finding
	path, tok, auth := "/", "", ""
	if p := t.Baseline.Probe; p != nil {
		path, tok, auth = p.Path, t.Token(), "Bearer <session token>"
	}
	r, err := t.Do(ctx, scan.Request{Method: http.MethodGet, Path: path, Token: tok})
	if err != nil {
		return out, ignoreBackoff(err)
	}
	if !strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Content-Type-Options")), "nosniff") {
		out = append(out, newFinding(t, headerRules[0], "headers", http.MethodGet, path, "", r, auth,
			"The response has no X-Content-Type-Options: nosniff.", "Content-Type", "X-Content-Type-Options"))
	}
	if lr := t.LoginResponse; lr != nil && !strings.Contains(strings.ToLower(lr.Header.Get("Cache-Control")), "no-store") {
		// The body holds tokens: evidence shows headers only.
		ev := &scan.Response{Status: lr.Status, Header: lr.Header}
		f := newFinding(t, headerRules[1], "headers", http.MethodPost, t.LoginURL.Path, "", ev, "",
			"The token response has no Cache-Control: no-store.", "Content-Type", "Cache-Control", "Pragma")
		f.Evidence.Request = "POST " + t.LoginURL.String() + "\n(grant_type=password, credentials masked)"
		f.URL = t.LoginURL.String()
		out = append(out, f)
	}
	return out, nil
}
