package checks

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
)

// VerboseErrors reads every recorded response (it sends nothing) for stack
// traces and framework debug pages.
type VerboseErrors struct{}

var _ scan.Check = VerboseErrors{}

var verboseRules = []scan.Rule{
	{ID: "GH-ERR-001", Title: "Stack trace or debug error page in a response", Severity: scan.SeverityMedium,
		Fix: "Turn off debug mode in production and return a generic error body; log the detail server-side under a request id."},
}

// ID implements scan.Check.
func (VerboseErrors) ID() string { return "verbose-errors" }

// Phase implements scan.Check.
func (VerboseErrors) Phase() scan.Phase { return scan.PhasePassive }

// Rules implements scan.Check.
func (VerboseErrors) Rules() []scan.Rule { return verboseRules }

var stackPatterns = []struct {
	name string
	re   *regexp.Regexp
}{
	{"go", regexp.MustCompile(`goroutine \d+ \[[a-z ]+\]:|\.go:\d+ \+0x[0-9a-f]+`)},
	{"python", regexp.MustCompile(`Traceback \(most recent call last\)|File "[^"]+\.py", line \d+`)},
	{"java", regexp.MustCompile(`(?m)^\s*at [\w$.]+\([\w$]+\.java:\d+\)|Exception in thread "`)},
	{"dotnet", regexp.MustCompile(`(?m)^\s*at [\w.<>]+\(.*\) in .+:line \d+|System\.\w+Exception:`)},
	{"node", regexp.MustCompile(`(?m)^\s*at .+\((?:/|[A-Z]:\\).+\.[cm]?js:\d+:\d+\)|node_modules/`)},
	{"php", regexp.MustCompile(`(?m)^#\d+ /.+\.php\(\d+\)|Fatal error: .+ in /.+\.php on line \d+`)},
	{"ruby", regexp.MustCompile(`(?m)/.+\.rb:\d+:in ` + "`")},
	{"debug-page", regexp.MustCompile(`Whitelabel Error Page|<title>Django Debug|Werkzeug Debugger|DEBUG = True`)},
}

// Run implements scan.Check.
func (VerboseErrors) Run(_ context.Context, t *scan.Target) ([]scan.Finding, error) {
	var out []scan.Finding
	seen := map[string]bool{}
	for _, ex := range t.Client.Exchanges() {
		if ex.URL == nil {
			continue
		}
		for _, p := range stackPatterns {
			m := p.re.Find(ex.Body)
			if m == nil {
				continue
			}
			path := strings.TrimPrefix(ex.URL.Path, t.Base.Path)
			resp := &scan.Response{Status: ex.Status, Header: ex.Header, Body: ex.Body}
			f := newFinding(t, verboseRules[0], "verbose-errors", ex.Method, path, p.name, resp, "",
				fmt.Sprintf("The response contains a %s stack trace or debug page (%q).", p.name, string(m)))
			if !seen[f.Fingerprint] {
				seen[f.Fingerprint] = true
				out = append(out, f)
			}
			break
		}
	}
	return out, nil
}
