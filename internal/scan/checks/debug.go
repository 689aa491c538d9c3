package checks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
)

// DebugEndpoints requests well-known debug, metrics and spec paths without a
// token; a 2xx whose content matches what that endpoint serves is a finding
// (the content match keeps soft-404 "200 for everything" servers quiet).
type DebugEndpoints struct{}

var _ scan.Check = DebugEndpoints{}

var debugRules = []scan.Rule{
	{ID: "GH-EXP-001", Title: "Debug, metrics or spec endpoint exposed", Severity: scan.SeverityHigh,
		Fix: "Serve debug and metrics endpoints only on an internal admin listener (or behind authentication); never deploy .env or .git to a web root."},
}

// ID implements scan.Check.
func (DebugEndpoints) ID() string { return "debug-endpoints" }

// Phase implements scan.Check.
func (DebugEndpoints) Phase() scan.Phase { return scan.PhaseActive }

// Rules implements scan.Check.
func (DebugEndpoints) Rules() []scan.Rule { return debugRules }

type debugPath struct {
	path     string
	severity scan.Severity
	match    *regexp.Regexp
	what     string
}

var debugPaths = []debugPath{
	{"/.env", scan.SeverityHigh, regexp.MustCompile(`(?m)^[A-Z][A-Z0-9_]{2,}=\S*`), "environment file with configuration and likely secrets"},
	{"/.git/config", scan.SeverityHigh, regexp.MustCompile(`\[core\]|\[remote "`), "Git metadata: the source code can be downloaded"},
	{"/debug/pprof/", scan.SeverityHigh, regexp.MustCompile(`Types of profiles available|goroutine\?debug=|/debug/pprof/`), "Go pprof: heap and goroutine dumps may hold secrets; CPU profiling is a DoS lever"},
	{"/actuator", scan.SeverityMedium, regexp.MustCompile(`"_links"\s*:|"actuator"`), "Spring Boot actuator"},
	{"/actuator/env", scan.SeverityHigh, regexp.MustCompile(`"propertySources"|"activeProfiles"`), "Spring Boot environment (configuration values)"},
	{"/server-status", scan.SeverityMedium, regexp.MustCompile(`Apache Server Status|Server uptime|Total Accesses`), "Apache mod_status with client addresses and URLs"},
	{"/metrics", scan.SeverityMedium, regexp.MustCompile(`(?m)^# (?:HELP|TYPE) \w+`), "Prometheus metrics revealing internals and traffic"},
	{"/swagger.json", scan.SeverityLow, regexp.MustCompile(`"(?:swagger|openapi)"\s*:\s*"\d`), "API description (maps every route for an attacker)"},
	{"/openapi.yaml", scan.SeverityLow, regexp.MustCompile(`(?m)^(?:openapi|swagger):\s*["']?\d`), "API description (maps every route for an attacker)"},
	{"/openapi.json", scan.SeverityLow, regexp.MustCompile(`"(?:swagger|openapi)"\s*:\s*"\d`), "API description (maps every route for an attacker)"},
}

// Run implements scan.Check.
func (DebugEndpoints) Run(ctx context.Context, t *scan.Target) ([]scan.Finding, error) {
	var out []scan.Finding
	prefixes := []string{""}
	if t.Base.Path != "" {
		prefixes = append(prefixes, t.Base.Path) // both the host root and the API root
	}
	for _, pre := range prefixes {
		for _, d := range debugPaths {
			full := pre + d.path
			r, err := t.Client.Do(ctx, scan.Request{Method: http.MethodGet, Path: full})
			if err != nil {
				if errors.Is(err, scan.ErrBackoff) {
					continue
				}
				return out, err
			}
			if !scan.Is2xx(r.Status) || t.SoftNotFound(r) || !d.match.Match(r.Body) {
				continue
			}
			f := scan.NewFinding(debugRules[0], "debug-endpoints", http.MethodGet, r.URL.String(), full, d.path,
				scan.Evidence{Request: "GET " + r.URL.String(), Status: r.Status, Response: excerpt(r),
					Details: fmt.Sprintf("%s answers %d without authentication: %s.", full, r.Status, d.what)}, t.Mask)
			f.Severity = d.severity
			out = append(out, f)
		}
	}
	return out, nil
}
