package checks

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
	"github.com/gatehouse-dev/gatehouse/internal/scan/openapi"
)

// Exposure reads every recorded response (it sends nothing) for properties the
// spec does not declare and for secrets: password hashes, private keys, JWTs
// outside auth endpoints, AWS access key ids and card numbers.
type Exposure struct{}

var _ scan.Check = Exposure{}

var exposureRules = []scan.Rule{
	{ID: "GH-DATA-001", Title: "Response property not in the spec's response schema", Severity: scan.SeverityMedium,
		Fix: "Return explicit response DTOs instead of storage objects, or filter responses against the spec (additionalProperties: false) at the gateway."},
	{ID: "GH-DATA-002", Title: "Password hash in a response", Severity: scan.SeverityHigh,
		Fix: "Never serialise password hashes; exclude them in the data model's JSON mapping."},
	{ID: "GH-DATA-003", Title: "Private key in a response", Severity: scan.SeverityHigh,
		Fix: "Remove the key from the response and rotate it: assume it is compromised."},
	{ID: "GH-DATA-004", Title: "JWT in the body of a non-authentication endpoint", Severity: scan.SeverityMedium,
		Fix: "Return tokens only from the token endpoint; never embed tokens of other users or services in API data."},
	{ID: "GH-DATA-005", Title: "AWS access key id in a response", Severity: scan.SeverityHigh,
		Fix: "Remove the credential from the response, rotate it in IAM, and keep credentials in a secret store."},
	{ID: "GH-DATA-006", Title: "Payment card number in a response", Severity: scan.SeverityHigh,
		Fix: "Never return full card numbers (PCI DSS): return at most the last four digits."},
}

// ID implements scan.Check.
func (Exposure) ID() string { return "exposure" }

// Phase implements scan.Check.
func (Exposure) Phase() scan.Phase { return scan.PhasePassive }

// Rules implements scan.Check.
func (Exposure) Rules() []scan.Rule { return exposureRules }

var (
	reHash = regexp.MustCompile(`\$argon2(?:id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+|\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}|\$scrypt\$[^\s"']{10,}|\$7\$[./A-Za-z0-9]{11,}\$[^\s"']+|\$pbkdf2(?:-sha\d+)?\$\d+\$[^\s"']+|pbkdf2_sha(?:1|256|512)\$\d+\$[^\s"'$]+\$[A-Za-z0-9+/=]+`)
	rePriv = regexp.MustCompile(`-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----`)
	reJWTb = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)
	reAKIA = regexp.MustCompile(`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`)
	reCard = regexp.MustCompile(`\b(?:4\d{12}(?:\d{3})?|5[1-5]\d{14}|2[2-7]\d{14}|3[47]\d{13}|6(?:011|5\d{2})\d{12})\b`)
)

// authPath reports endpoints that legitimately return tokens.
func authPath(t *scan.Target, p string) bool {
	lp := strings.ToLower(p)
	if t.LoginURL != nil && strings.EqualFold(pathOnly(t.LoginURL.Path), pathOnly(p)) {
		return true
	}
	for _, s := range []string{"/auth", "token", "oauth", "login", "session", "signin", "signup", "jwks"} {
		if strings.Contains(lp, s) {
			return true
		}
	}
	return false
}

// Run implements scan.Check.
func (Exposure) Run(_ context.Context, t *scan.Target) ([]scan.Finding, error) {
	var out []scan.Finding
	seen := map[string]bool{}
	var ex scan.Exchange
	add := func(f scan.Finding) {
		// Evidence shows the request actually sent, not the template.
		f.URL = t.Mask.Mask(ex.URL.String())
		f.Evidence.Request = t.Mask.Mask(ex.Method + " " + ex.URL.String())
		if ex.Authed {
			f.Evidence.Request += "\nAuthorization: Bearer <session token>"
		}
		if !seen[f.Fingerprint] {
			seen[f.Fingerprint] = true
			out = append(out, f)
		}
	}
	for _, ex = range t.Client.Exchanges() {
		if ex.URL == nil || !strings.EqualFold(ex.URL.Hostname(), t.Base.Hostname()) {
			continue
		}
		resp := &scan.Response{Status: ex.Status, Header: ex.Header, Body: ex.Body, URL: ex.URL}
		path := strings.TrimPrefix(ex.URL.Path, t.Base.Path)
		auth := ""
		if ex.Authed {
			auth = "Bearer <session token>"
		}
		body := ex.Body
		// Fingerprint on the spec's template when the path matches one, so an
		// id such as a user name does not make the fingerprint run-specific.
		fpPath := path
		var op openapi.Operation
		var matched bool
		if t.Spec != nil {
			if op, matched = matchOperation(t.Spec, ex.Method, path); matched {
				fpPath = op.Path
			}
		}
		for _, s := range []struct {
			id, kind string
			re       *regexp.Regexp
			skip     bool
		}{
			{"GH-DATA-002", "password-hash", reHash, false},
			{"GH-DATA-003", "private-key", rePriv, false},
			{"GH-DATA-004", "jwt", reJWTb, authPath(t, ex.URL.Path)},
			{"GH-DATA-005", "aws-access-key", reAKIA, false},
		} {
			if s.skip {
				continue
			}
			if m := s.re.Find(body); m != nil {
				add(newFinding(t, ruleByID(exposureRules, s.id), "exposure", ex.Method, fpPath, s.kind, resp, auth,
					fmt.Sprintf("Found %s: %s", s.kind, t.Mask.Mask(string(m)))))
			}
		}
		for _, m := range reCard.FindAll(body, 8) {
			if scan.Luhn(string(m)) {
				add(newFinding(t, ruleByID(exposureRules, "GH-DATA-006"), "exposure", ex.Method, fpPath, "card-number", resp, auth,
					"Found a number that passes the Luhn check with a card-network prefix: "+t.Mask.Mask(string(m))))
				break
			}
		}
		if !matched || !scan.Is2xx(ex.Status) || !isJSON(ex.Header) {
			continue
		}
		sch := responseSchema(op, ex.Status)
		if sch == nil {
			continue
		}
		var v any
		if json.Unmarshal(body, &v) != nil {
			continue
		}
		var extra []string
		undeclared(v, sch, "", 0, &extra)
		for _, prop := range extra {
			f := newFinding(t, ruleByID(exposureRules, "GH-DATA-001"), "exposure", ex.Method, op.Path, prop, resp, auth,
				fmt.Sprintf("Property %q is returned by %s %s but not declared in the %d response schema.", prop, op.Method, op.Path, ex.Status))
			if sensitiveName(prop) {
				f.Severity = scan.SeverityHigh
			}
			add(f)
		}
	}
	return out, nil
}

// sensitiveName flags property names that suggest secrets or internals.
func sensitiveName(p string) bool {
	lp := strings.ToLower(p)
	for _, s := range []string{"password", "passwd", "hash", "secret", "token", "private", "ssn", "internal", "salt", "api_key", "apikey"} {
		if strings.Contains(lp, s) {
			return true
		}
	}
	return false
}

// matchOperation finds the spec operation whose template matches method and path.
func matchOperation(s *openapi.Spec, method, path string) (openapi.Operation, bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	best, bestScore := openapi.Operation{}, -1
	for _, op := range s.Operations {
		if op.Method != method {
			continue
		}
		ts := strings.Split(strings.Trim(op.Path, "/"), "/")
		if len(ts) != len(segs) {
			continue
		}
		score, ok := 0, true
		for i := range ts {
			switch {
			case ts[i] == segs[i]:
				score++
			case strings.HasPrefix(ts[i], "{") && strings.HasSuffix(ts[i], "}"):
			default:
				ok = false
			}
		}
		// Literal segments beat parameters: /notes/search over /notes/{id}.
		if ok && score > bestScore {
			best, bestScore = op, score
		}
	}
	return best, bestScore >= 0
}

func responseSchema(op openapi.Operation, status int) *openapi.Schema {
	code := fmt.Sprint(status)
	for _, k := range []string{code, code[:1] + "XX", "DEFAULT"} {
		if s, ok := op.Responses[k]; ok {
			return s
		}
	}
	return nil
}

// undeclared appends paths of object properties in v not declared by s.
func undeclared(v any, s *openapi.Schema, prefix string, depth int, out *[]string) {
	if s == nil || depth > 16 || len(*out) >= 32 {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		props, open := declared(s)
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			name := k
			if prefix != "" {
				name = prefix + "." + k
			}
			if ps, ok := props[k]; ok {
				undeclared(x[k], ps, name, depth+1, out)
			} else if !open {
				*out = append(*out, name)
			}
		}
	case []any:
		items := s.Items
		if items == nil {
			for _, sub := range append(append(append([]*openapi.Schema{}, s.AllOf...), s.AnyOf...), s.OneOf...) {
				if sub != nil && sub.Items != nil {
					items = sub.Items
				}
			}
		}
		for i, y := range x {
			if i >= 20 {
				break
			}
			undeclared(y, items, prefix+"[]", depth+1, out)
		}
	}
}

// declared merges the properties of s and its allOf/anyOf/oneOf members; open
// means undeclared properties are allowed by the schema (a map, or no
// properties declared anywhere).
func declared(s *openapi.Schema) (map[string]*openapi.Schema, bool) {
	props := map[string]*openapi.Schema{}
	open := s.AdditionalSchema != nil || s.PropertyNames
	all := append(append(append([]*openapi.Schema{s}, s.AllOf...), s.AnyOf...), s.OneOf...)
	for _, sub := range all {
		if sub == nil {
			continue
		}
		for k, v := range sub.Properties {
			props[k] = v
		}
		if sub != s && (sub.AdditionalSchema != nil || sub.PropertyNames) {
			open = true
		}
	}
	if len(props) == 0 {
		open = true
	}
	return props, open
}
