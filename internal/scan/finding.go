package scan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// Severity orders findings. The zero value is invalid; use SeverityInfo for notes.
type Severity int

// Severities, lowest first.
const (
	SeverityInfo Severity = iota + 1
	SeverityLow
	SeverityMedium
	SeverityHigh
)

var severityNames = map[Severity]string{
	SeverityInfo:   "info",
	SeverityLow:    "low",
	SeverityMedium: "medium",
	SeverityHigh:   "high",
}

// String returns the lowercase name ("high"), or "invalid".
func (s Severity) String() string {
	if n, ok := severityNames[s]; ok {
		return n
	}
	return "invalid"
}

// ParseSeverity accepts info, low, medium and high (case-insensitive).
func ParseSeverity(s string) (Severity, error) {
	for k, v := range severityNames {
		if strings.EqualFold(strings.TrimSpace(s), v) {
			return k, nil
		}
	}
	return 0, fmt.Errorf("parse severity %q: %w", s, ErrBadSeverity)
}

// MarshalText writes the lowercase name.
func (s Severity) MarshalText() ([]byte, error) {
	if _, ok := severityNames[s]; !ok {
		return nil, fmt.Errorf("marshal severity %d: %w", int(s), ErrBadSeverity)
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads the lowercase name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Rule describes one kind of finding: the catalogue entry behind a finding id.
type Rule struct {
	ID       string   `json:"id"`       // stable, e.g. GH-AUTH-002
	Title    string   `json:"title"`    // one line
	Severity Severity `json:"severity"` // default severity; a finding may differ
	Fix      string   `json:"fix"`      // how to remove the cause
}

// Evidence is what the scanner sent and saw, already masked.
type Evidence struct {
	Request  string `json:"request"`            // request line, e.g. "GET https://h/v1/notes"
	Status   int    `json:"status,omitempty"`   // response status, 0 when there was none
	Response string `json:"response,omitempty"` // excerpt of headers/body
	Details  string `json:"details,omitempty"`  // why this is a finding
}

// Finding is one problem. Fingerprint is derived from ID, Method, Path and Param
// only, so it is stable across runs.
type Finding struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Severity    Severity `json:"severity"`
	Check       string   `json:"check"`
	Method      string   `json:"method,omitempty"`
	Path        string   `json:"path,omitempty"` // normalised path or template
	Param       string   `json:"param,omitempty"`
	URL         string   `json:"url"`
	Fingerprint string   `json:"fingerprint"`
	Evidence    Evidence `json:"evidence"`
	Fix         string   `json:"fix"`
}

// NewFinding builds a finding from its rule, fills the fingerprint and masks
// the evidence with m (which may be nil).
func NewFinding(r Rule, check, method, url, path, param string, ev Evidence, m *Masker) Finding {
	np := NormalizePath(path)
	ev.Request = m.Mask(ev.Request)
	ev.Response = m.Mask(ev.Response)
	ev.Details = m.Mask(ev.Details)
	return Finding{
		ID: r.ID, Title: r.Title, Severity: r.Severity, Check: check,
		Method: method, Path: np, Param: param, URL: m.Mask(url),
		Fingerprint: Fingerprint(r.ID, method, np, param),
		Evidence:    ev, Fix: r.Fix,
	}
}

// Fingerprint hashes the identity of a finding. Timestamps, object ids and
// tokens never enter it, so the same weakness has the same fingerprint in every run.
func Fingerprint(id, method, path, param string) string {
	h := sha256.Sum256([]byte(id + "\x00" + strings.ToUpper(method) + "\x00" + NormalizePath(path) + "\x00" + param))
	return hex.EncodeToString(h[:16])
}

var (
	reNumeric = regexp.MustCompile(`^[0-9]+$`)
	reUUID    = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	reHexID   = regexp.MustCompile(`^[0-9a-fA-F]{16,}$`)
	reParam   = regexp.MustCompile(`^\{[^{}/]*\}$`)
)

// NormalizePath drops the query, replaces numeric, UUID and long hex segments and
// template parameters with "{}", and removes a trailing slash (except for "/").
func NormalizePath(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if p == "" {
		return "/"
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if reNumeric.MatchString(s) || reUUID.MatchString(s) || reHexID.MatchString(s) || reParam.MatchString(s) {
			segs[i] = "{}"
		}
	}
	out := strings.Join(segs, "/")
	if len(out) > 1 {
		out = strings.TrimSuffix(out, "/")
	}
	if !strings.HasPrefix(out, "/") {
		out = "/" + out
	}
	return out
}
