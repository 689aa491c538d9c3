package checks

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
)

// CORS sends a foreign Origin (and the "null" origin) and reads the
// Access-Control-Allow-* answer.
type CORS struct{}

var _ scan.Check = CORS{}

var corsRules = []scan.Rule{
	{ID: "GH-CORS-001", Title: "Any origin is reflected with credentials allowed", Severity: scan.SeverityHigh,
		Fix: "Allow only an explicit list of trusted origins; never echo the Origin header back when Access-Control-Allow-Credentials is true."},
	{ID: "GH-CORS-002", Title: "Wildcard origin with credentials allowed", Severity: scan.SeverityHigh,
		Fix: "Do not combine Access-Control-Allow-Origin: * with Access-Control-Allow-Credentials: true; list trusted origins instead."},
	{ID: "GH-CORS-003", Title: "Any origin is reflected (without credentials)", Severity: scan.SeverityLow,
		Fix: "Allow only the origins that need browser access; a mobile API usually needs no CORS at all."},
}

// ID implements scan.Check.
func (CORS) ID() string { return "cors" }

// Phase implements scan.Check.
func (CORS) Phase() scan.Phase { return scan.PhaseActive }

// Rules implements scan.Check.
func (CORS) Rules() []scan.Rule { return corsRules }

// EvilOrigin is the foreign origin sent (example TLD: never a real site).
const EvilOrigin = "https://evil.example"

// Run implements scan.Check.
func (CORS) Run(ctx context.Context, t *scan.Target) ([]scan.Finding, error) {
	path, tok := "/", ""
	if p := t.Baseline.Probe; p != nil {
		path, tok = p.Path, t.Token()
	}
	var out []scan.Finding
	for _, origin := range []string{EvilOrigin, "null"} {
		r, err := t.Do(ctx, scan.Request{Method: http.MethodGet, Path: path, Token: tok, Header: http.Header{"Origin": {origin}}})
		if err != nil {
			return out, ignoreBackoff(err)
		}
		acao := strings.TrimSpace(r.Header.Get("Access-Control-Allow-Origin"))
		creds := strings.EqualFold(strings.TrimSpace(r.Header.Get("Access-Control-Allow-Credentials")), "true")
		var id string
		switch {
		case acao == origin && creds:
			id = "GH-CORS-001"
		case acao == "*" && creds:
			id = "GH-CORS-002"
		case acao == origin && origin != "null":
			id = "GH-CORS-003"
		default:
			continue
		}
		out = append(out, newFinding(t, ruleByID(corsRules, id), "cors", http.MethodGet, path, "origin:"+origin, r, "",
			fmt.Sprintf("Sent Origin: %s; got Access-Control-Allow-Origin: %q, Access-Control-Allow-Credentials: %v.", origin, acao, creds),
			"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials"))
		if id == "GH-CORS-002" {
			break // the null origin would say the same
		}
	}
	return out, nil
}
