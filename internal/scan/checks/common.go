package checks

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
)

// All returns every check in a stable order.
func All() []scan.Check {
	return []scan.Check{
		TLS{}, MissingAuth{}, Forgery{}, BOLA{}, Injection{}, CORS{}, Headers{},
		DebugEndpoints{}, RateLimit{}, Exposure{}, VerboseErrors{},
	}
}

// ruleByID finds a rule in a list; it panics on a programming error (an id
// that is not in the check's own catalogue), which tests catch.
func ruleByID(rules []scan.Rule, id string) scan.Rule {
	for _, r := range rules {
		if r.ID == id {
			return r
		}
	}
	panic("checks: unknown rule " + id)
}

// excerptLimit bounds the response text kept as evidence.
const excerptLimit = 600

// excerpt renders status, a few headers and the start of the body.
func excerpt(r *scan.Response, headers ...string) string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d %s\n", r.Status, http.StatusText(r.Status))
	if len(headers) == 0 {
		headers = []string{"Content-Type"}
	}
	for _, h := range headers {
		for _, v := range r.Header.Values(h) {
			fmt.Fprintf(&b, "%s: %s\n", h, v)
		}
	}
	body := string(r.Body)
	if len(body) > excerptLimit {
		body = body[:excerptLimit] + "…"
	}
	if body != "" {
		b.WriteString("\n")
		b.WriteString(body)
	}
	return b.String()
}

// requestLine renders "METHOD URL" plus an Authorization note.
func requestLine(t *scan.Target, method, path, auth string) string {
	s := method + " " + t.PathURL(path)
	if auth != "" {
		s += "\nAuthorization: " + auth
	}
	return s
}

// newFinding builds a finding for a request to path on the target.
func newFinding(t *scan.Target, r scan.Rule, check, method, path, param string, resp *scan.Response, auth, details string, headers ...string) scan.Finding {
	ev := scan.Evidence{Request: requestLine(t, method, path, auth), Response: excerpt(resp, headers...), Details: details}
	if resp != nil {
		ev.Status = resp.Status
	}
	return scan.NewFinding(r, check, method, t.PathURL(path), pathOnly(path), param, ev, t.Mask)
}

func pathOnly(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// isJSON reports a JSON content type.
func isJSON(h http.Header) bool {
	ct := strings.ToLower(h.Get("Content-Type"))
	return strings.Contains(ct, "json")
}
