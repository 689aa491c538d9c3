package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
)

// ErrFormat is an unknown output format.
var ErrFormat = errors.New("unknown report format (want text, json, sarif, junit or html)")

// Formats lists the supported formats.
func Formats() []string { return []string{"text", "json", "sarif", "junit", "html"} }

// Write renders r in format to w.
func Write(w io.Writer, format string, r *scan.Report) error {
	switch strings.ToLower(format) {
	case "text":
		return Text(w, r)
	case "json":
		return JSON(w, r)
	case "sarif":
		return SARIF(w, r)
	case "junit":
		return JUnit(w, r)
	case "html":
		return HTML(w, r)
	}
	return fmt.Errorf("write report %q: %w", format, ErrFormat)
}

// JSON writes the report as indented JSON (the stable schema, version 1).
func JSON(w io.Writer, r *scan.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write json report: %w", err)
	}
	return nil
}

var severities = []scan.Severity{scan.SeverityHigh, scan.SeverityMedium, scan.SeverityLow, scan.SeverityInfo}

// Text writes a human summary grouped by severity.
func Text(w io.Writer, r *scan.Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "gatehouse scan %s\n", r.Target)
	fmt.Fprintf(&b, "started %s, finished %s, %d of %d requests used\n",
		r.Started.Format("2006-01-02 15:04:05Z07:00"), r.Finished.Format("2006-01-02 15:04:05Z07:00"), r.RequestsUsed, r.Budget)
	counts := r.CountBySeverity()
	fmt.Fprintf(&b, "findings: %d high, %d medium, %d low, %d info", counts[scan.SeverityHigh], counts[scan.SeverityMedium], counts[scan.SeverityLow], counts[scan.SeverityInfo])
	if r.Suppressed > 0 || r.Known > 0 {
		fmt.Fprintf(&b, " (%d suppressed, %d already in the baseline)", r.Suppressed, r.Known)
	}
	b.WriteString("\n")
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	for _, c := range r.Checks {
		if c.Error != "" {
			fmt.Fprintf(&b, "check %s incomplete: %s\n", c.ID, c.Error)
		}
	}
	for _, sev := range severities {
		if counts[sev] == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n== %s (%d) ==\n", strings.ToUpper(sev.String()), counts[sev])
		for _, f := range r.Findings {
			if f.Severity != sev {
				continue
			}
			fmt.Fprintf(&b, "\n[%s] %s\n", f.ID, f.Title)
			fmt.Fprintf(&b, "  where:       %s %s", f.Method, f.URL)
			if f.Param != "" {
				fmt.Fprintf(&b, " (%s)", f.Param)
			}
			fmt.Fprintf(&b, "\n  fingerprint: %s\n", f.Fingerprint)
			if f.Evidence.Details != "" {
				fmt.Fprintf(&b, "  details:     %s\n", f.Evidence.Details)
			}
			fmt.Fprintf(&b, "  request:     %s\n", indent(f.Evidence.Request))
			if f.Evidence.Response != "" {
				fmt.Fprintf(&b, "  response:    %s\n", indent(firstLines(f.Evidence.Response, 8)))
			}
			fmt.Fprintf(&b, "  fix:         %s\n", f.Fix)
		}
	}
	if len(r.Findings) == 0 {
		b.WriteString("\nNo findings.\n")
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write text report: %w", err)
	}
	return nil
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n               ") }

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "\n")
}
