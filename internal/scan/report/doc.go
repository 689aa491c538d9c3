// Package report renders a finished scan.Report as text, JSON, SARIF 2.1.0,
// JUnit XML or a self-contained HTML page.
//
// It must never: load external assets in the HTML report, write a value into
// HTML without escaping it, or put anything into a report that is not already
// in the (masked) scan.Report.
package report
