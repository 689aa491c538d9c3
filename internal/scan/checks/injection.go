package checks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
)

// Injection sends harmless probes (quotes, a tautology, a semicolon, template
// expressions, a script marker) in query and path parameters of GET operations
// and judges the answers by error leakage and anomalies. It never sends a
// payload that could change data.
type Injection struct{}

var _ scan.Check = Injection{}

var injectionRules = []scan.Rule{
	{ID: "GH-INJ-001", Title: "Database error leaked on an injection probe", Severity: scan.SeverityHigh,
		Fix: "Use parameterised queries everywhere, and return a generic error body (log the detail server-side under a request id)."},
	{ID: "GH-INJ-002", Title: "Template expression evaluated (server-side template injection)", Severity: scan.SeverityHigh,
		Fix: "Never build templates from input; pass input only as data to a fixed template."},
	{ID: "GH-INJ-003", Title: "Input reflected unescaped in an HTML response", Severity: scan.SeverityMedium,
		Fix: "Escape output for its context (html/template does this) and serve API responses as application/json with X-Content-Type-Options: nosniff."},
	{ID: "GH-INJ-004", Title: "Server error on a quote where normal input succeeds", Severity: scan.SeverityMedium,
		Fix: "Validate input against the spec and use parameterised queries; a quote must never reach query text."},
}

// ID implements scan.Check.
func (Injection) ID() string { return "injection" }

// Phase implements scan.Check.
func (Injection) Phase() scan.Phase { return scan.PhaseActive }

// Rules implements scan.Check.
func (Injection) Rules() []scan.Rule { return injectionRules }

// Probes are deliberately inert: no statements, no sleeps, no command syntax.
const (
	benignValue  = "gatehouse"
	templateOut  = "gh49gh"
	scriptMarker = "<script>gh_xss_7</script>"
)

var probes = []struct{ name, value string }{
	{"quote", "gatehouse'"},
	{"double-quote", `gatehouse"`},
	{"tautology", "' OR '1'='1"},
	{"semicolon", "gatehouse;"},
	{"template", "gh{{7*7}}gh"},
	{"template-dollar", "gh${7*7}gh"},
	{"script", scriptMarker},
}

var sqlErrorPatterns = []*regexp.Regexp{
	regexp.MustCompile(`SQLITE_ERROR|sqlite3?\.\w*Error|SQLiteException`),
	regexp.MustCompile(`(?i)you have an error in your sql syntax|syntax error at or near|unterminated quoted string|quoted string not properly terminated`),
	regexp.MustCompile(`(?i)\bsyntax error\b`),
	regexp.MustCompile(`\bORA-\d{5}\b`),
	regexp.MustCompile(`\bPG::\w+|\bpq: |\bpsql\b|PSQLException|SQLSTATE\[?\w*`),
	regexp.MustCompile(`\bMySQL\b|\bMariaDB\b|mysqli?_`),
	regexp.MustCompile(`(?i)ODBC|JDBC|Microsoft OLE DB|Unclosed quotation mark`),
}

// sqlError returns the first database error signature in b, or "".
func sqlError(b []byte) string {
	for _, re := range sqlErrorPatterns {
		if m := re.Find(b); m != nil {
			return string(m)
		}
	}
	return ""
}

type injectionPoint struct {
	template string // operation path template, for the fingerprint
	param    string
	build    func(v string) string // request path with the value in place
}

func (Injection) points(t *scan.Target) []injectionPoint {
	var pts []injectionPoint
	if t.Spec != nil {
		for _, op := range t.Spec.Operations {
			if op.Method != http.MethodGet {
				continue
			}
			base, ok := t.FillPath(op, func(string) string { return firstOr(t.Baseline.Values, "1") })
			if !ok {
				continue
			}
			for _, p := range op.Params {
				switch p.In {
				case "query":
					name := p.Name
					q := scan.QueryFor(op)
					pts = append(pts, injectionPoint{op.Path, "query:" + name, func(v string) string {
						vals, _ := url.ParseQuery(strings.TrimPrefix(q, "?"))
						vals.Set(name, v)
						return base + "?" + vals.Encode()
					}})
				case "path":
					name, tmpl := p.Name, op.Path
					pts = append(pts, injectionPoint{op.Path, "path:" + name, func(v string) string {
						out, _ := t.FillPath(op, func(n string) string {
							if n == name {
								return v
							}
							return firstOr(t.Baseline.Values, "1")
						})
						if out == "" {
							return tmpl
						}
						return out + scan.QueryFor(op)
					}})
				}
			}
		}
	} else {
		paths := []string{"/"}
		if pr := t.Baseline.Probe; pr != nil {
			paths = append(paths, pathOnly(pr.Path))
		}
		for _, p := range paths {
			p := p
			pts = append(pts, injectionPoint{p, "query:q", func(v string) string { return p + "?q=" + url.QueryEscape(v) }})
		}
	}
	if len(pts) > 20 {
		pts = pts[:20]
	}
	return pts
}

// Run implements scan.Check.
func (c Injection) Run(ctx context.Context, t *scan.Target) ([]scan.Finding, error) {
	var out []scan.Finding
	tok := t.Token()
	auth := ""
	if tok != "" {
		auth = "Bearer <session token>"
	}
	for _, pt := range c.points(t) {
		benign, err := t.Do(ctx, scan.Request{Method: http.MethodGet, Path: pt.build(benignValue), Token: tok})
		if err != nil {
			if errors.Is(err, scan.ErrBackoff) {
				continue
			}
			return out, err
		}
		benignSQL := sqlError(benign.Body)
		reported := map[string]bool{}
		for _, pr := range probes {
			path := pt.build(pr.value)
			resp, err := t.Do(ctx, scan.Request{Method: http.MethodGet, Path: path, Token: tok})
			if err != nil {
				if errors.Is(err, scan.ErrBackoff) {
					break
				}
				return out, err
			}
			add := func(id, details string) {
				if reported[id] {
					return
				}
				reported[id] = true
				out = append(out, newFinding(t, ruleByID(injectionRules, id), "injection", http.MethodGet, pt.template, pt.param, resp, auth,
					fmt.Sprintf("Probe %s (%q): %s", pr.name, pr.value, details)))
			}
			if sig := sqlError(resp.Body); sig != "" && benignSQL == "" {
				add("GH-INJ-001", fmt.Sprintf("the response contains %q; the same request with %q did not.", sig, benignValue))
			}
			if strings.HasPrefix(pr.name, "template") && strings.Contains(string(resp.Body), templateOut) && !strings.Contains(string(benign.Body), templateOut) {
				add("GH-INJ-002", fmt.Sprintf("the response contains %q: the expression 7*7 was evaluated.", templateOut))
			}
			if pr.name == "script" && strings.Contains(string(resp.Body), scriptMarker) && !isJSON(resp.Header) {
				add("GH-INJ-003", fmt.Sprintf("the marker came back unescaped with Content-Type %q.", resp.Header.Get("Content-Type")))
			}
			if strings.Contains(pr.name, "quote") && resp.Status >= 500 && benign.Status < 500 && sqlError(resp.Body) == "" {
				add("GH-INJ-004", fmt.Sprintf("status %d, while %q got %d.", resp.Status, benignValue, benign.Status))
			}
		}
	}
	return out, nil
}
