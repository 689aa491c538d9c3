package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
)

// JUnitSuites is the JUnit XML document (exported so tests and callers can
// parse it back).
type JUnitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Suites   []JUnitSuite `xml:"testsuite"`
}

// JUnitSuite is one suite: the scan of one target.
type JUnitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Time      string      `xml:"time,attr"`
	Cases     []JUnitCase `xml:"testcase"`
}

// JUnitCase is one check.
type JUnitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Failure   *JUnitFailure `xml:"failure,omitempty"`
	Error     *JUnitFailure `xml:"error,omitempty"`
}

// JUnitFailure carries the findings of a failed check (or a check's error).
type JUnitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// JUnit writes one testcase per check; a check with findings fails, listing
// them; a check that could not finish is an error.
func JUnit(w io.Writer, r *scan.Report) error {
	suite := JUnitSuite{
		Name: "gatehouse-scan " + r.Target, Timestamp: r.Started.UTC().Format("2006-01-02T15:04:05"),
		Time: fmt.Sprintf("%.3f", r.Finished.Sub(r.Started).Seconds()),
	}
	byCheck := map[string][]scan.Finding{}
	for _, f := range r.Findings {
		byCheck[f.Check] = append(byCheck[f.Check], f)
	}
	for _, c := range r.Checks {
		tc := JUnitCase{Name: c.ID, ClassName: "gatehouse.scan"}
		if fs := byCheck[c.ID]; len(fs) > 0 {
			var b strings.Builder
			worst := scan.SeverityInfo
			for _, f := range fs {
				if f.Severity > worst {
					worst = f.Severity
				}
				fmt.Fprintf(&b, "[%s] %s %s: %s %s (%s)\n", f.Severity, f.ID, f.Title, f.Method, f.URL, f.Fingerprint)
			}
			tc.Failure = &JUnitFailure{Message: fmt.Sprintf("%d finding(s)", len(fs)), Type: worst.String(), Text: b.String()}
			suite.Failures++
		} else if c.Error != "" {
			tc.Error = &JUnitFailure{Message: c.Error, Type: "incomplete"}
			suite.Errors++
		}
		suite.Cases = append(suite.Cases, tc)
	}
	suite.Tests = len(suite.Cases)
	doc := JUnitSuites{Name: "gatehouse-scan", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors, Suites: []JUnitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write junit report: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write junit report: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}
