package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/net/html"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
)

// hostile is a finding whose every text field tries to break out of its format.
const hostile = `<script>alert(1)</script>"]]></failure>&amp;`

func sample() *scan.Report {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rules := []scan.Rule{
		{ID: "GH-AUTH-002", Title: "Unsigned token accepted", Severity: scan.SeverityHigh, Fix: "verify"},
		{ID: "GH-HDR-001", Title: "nosniff missing", Severity: scan.SeverityLow, Fix: "send it"},
		{ID: "GH-RATE-003", Title: "lockout", Severity: scan.SeverityInfo, Fix: "prefer limits"},
	}
	r := &scan.Report{
		Version: scan.ReportVersion, Tool: "gatehouse-scan", ToolVersion: "test", Target: "https://127.0.0.1:8443",
		Started: start, Finished: start.Add(90 * time.Second), RequestsUsed: 321, Budget: 2000, Rules: rules,
		Notes: []string{"a note " + hostile},
		Checks: []scan.CheckResult{
			{ID: "auth-forgery", Rules: []string{"GH-AUTH-002"}, Findings: 2},
			{ID: "headers", Rules: []string{"GH-HDR-001"}, Findings: 1},
			{ID: "rate-limit", Rules: []string{"GH-RATE-003"}, Error: "stopped: request budget exhausted"},
			{ID: "cors", Rules: []string{"GH-CORS-001"}},
		},
	}
	add := func(rule scan.Rule, check, path, param, details string) {
		r.Findings = append(r.Findings, scan.NewFinding(rule, check, "GET", "https://127.0.0.1:8443"+path, path, param,
			scan.Evidence{Request: "GET https://127.0.0.1:8443" + path, Status: 200, Response: "HTTP 200 OK\n\n{\"a\":1}", Details: details}, nil))
	}
	add(rules[0], "auth-forgery", "/v1/me", "alg-none", "accepted "+hostile)
	add(rules[0], "auth-forgery", "/v1/me", "alg-None", "accepted")
	add(rules[1], "headers", "/v1/me", "", "missing")
	scan.SortFindings(r.Findings)
	return r
}

func TestSARIFValidatesAgainstTheSchema(t *testing.T) {
	var buf bytes.Buffer
	if err := SARIF(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	sch, err := c.Compile(filepath.Join("..", "testdata", "sarif-schema-2.1.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("SARIF output does not validate: %v\n%s", err, buf.String())
	}
	var log sarifLog
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || log.Schema == "" || len(log.Runs) != 1 {
		t.Fatalf("header: %+v", log)
	}
	run := log.Runs[0]
	if len(run.Tool.Driver.Rules) != 3 || len(run.Results) != 3 {
		t.Fatalf("rules %d results %d", len(run.Tool.Driver.Rules), len(run.Results))
	}
	for _, res := range run.Results {
		if res.PartialFingerprints["gatehouseFingerprint/v1"] == "" || res.Locations[0].PhysicalLocation.ArtifactLocation.URI == "" {
			t.Errorf("result without fingerprint or location: %+v", res)
		}
		if run.Tool.Driver.Rules[res.RuleIndex].ID != res.RuleID {
			t.Errorf("ruleIndex %d does not point at %s", res.RuleIndex, res.RuleID)
		}
	}
	if run.Results[0].Level != "error" || run.Results[2].Level != "note" {
		t.Errorf("levels: %s, %s", run.Results[0].Level, run.Results[2].Level)
	}

	// The validator itself must reject a broken log, or this test proves nothing.
	bad, _ := jsonschema.UnmarshalJSON(strings.NewReader(`{"version":"2.1.0","runs":[{"results":[{"level":"fatal"}]}]}`))
	if sch.Validate(bad) == nil {
		t.Fatal("the schema accepted an invalid SARIF log")
	}
}

func TestJUnit(t *testing.T) {
	var buf bytes.Buffer
	if err := JUnit(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	var doc JUnitSuites
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("JUnit does not parse: %v\n%s", err, buf.String())
	}
	if doc.Tests != 4 || doc.Failures != 2 || doc.Errors != 1 || len(doc.Suites) != 1 || len(doc.Suites[0].Cases) != 4 {
		t.Fatalf("counts: tests %d failures %d errors %d", doc.Tests, doc.Failures, doc.Errors)
	}
	byName := map[string]JUnitCase{}
	for _, c := range doc.Suites[0].Cases {
		byName[c.Name] = c
	}
	if f := byName["auth-forgery"].Failure; f == nil || f.Message != "2 finding(s)" || f.Type != "high" || !strings.Contains(f.Text, "GH-AUTH-002") {
		t.Errorf("auth-forgery failure: %+v", f)
	}
	if byName["cors"].Failure != nil || byName["cors"].Error != nil {
		t.Error("a clean check must pass")
	}
	if byName["rate-limit"].Error == nil {
		t.Error("an incomplete check must be an error")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	r := sample()
	if err := JSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var back scan.Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Version != 1 || len(back.Findings) != 3 || back.Findings[0].Severity != scan.SeverityHigh || back.Findings[0].Fingerprint != r.Findings[0].Fingerprint {
		t.Fatalf("round trip: %+v", back)
	}
	for _, key := range []string{`"version": 1`, `"target"`, `"started"`, `"finished"`, `"requests_used"`, `"findings"`, `"fingerprint"`, `"evidence"`, `"fix"`, `"severity": "high"`} {
		if !strings.Contains(buf.String(), key) {
			t.Errorf("JSON report lacks %s", key)
		}
	}
	known, err := scan.ReadBaseline(buf.Bytes())
	if err != nil || len(known) != 3 {
		t.Fatalf("a JSON report must be usable as a baseline: %v %v", known, err)
	}
}

func TestText(t *testing.T) {
	var buf bytes.Buffer
	if err := Text(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"findings: 2 high, 0 medium, 1 low, 0 info", "== HIGH (2) ==", "== LOW (1) ==", "[GH-AUTH-002]", "fix:", "check rate-limit incomplete"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "HIGH") > strings.Index(out, "LOW") {
		t.Error("high findings must come first")
	}
	buf.Reset()
	empty := sample()
	empty.Findings = nil
	_ = Text(&buf, empty)
	if !strings.Contains(buf.String(), "No findings.") {
		t.Error("an empty report must say so")
	}
}

func TestWriteFormats(t *testing.T) {
	for _, f := range Formats() {
		var buf bytes.Buffer
		if err := Write(&buf, f, sample()); err != nil || buf.Len() == 0 {
			t.Errorf("format %s: %v", f, err)
		}
	}
	if err := Write(&bytes.Buffer{}, "pdf", sample()); !errors.Is(err, ErrFormat) {
		t.Errorf("unknown format err = %v", err)
	}
}

func TestHTML(t *testing.T) {
	var buf bytes.Buffer
	if err := HTML(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var svg, rects, styles int
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script":
				t.Error("the report must not contain a script element (hostile text was not escaped?)")
			case "svg":
				svg++
			case "rect":
				rects++
			case "style":
				styles++
			case "link", "img", "iframe":
				t.Errorf("external-asset element <%s> in a self-contained report", n.Data)
			}
			for _, a := range n.Attr {
				if (a.Key == "src" || a.Key == "href") && strings.Contains(a.Val, "//") {
					t.Errorf("external reference %s=%q", a.Key, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if svg != 1 || rects != 4 || styles != 1 {
		t.Fatalf("svg %d rects %d styles %d", svg, rects, styles)
	}
	if !strings.Contains(buf.String(), "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("hostile text must appear HTML-escaped")
	}
}

// TestHTMLScreenshot opens the report in headless Chromium when it is installed.
func TestHTMLScreenshot(t *testing.T) {
	bin := "/usr/bin/chromium"
	if _, err := os.Stat(bin); err != nil {
		p, err := exec.LookPath("chromium")
		if err != nil {
			t.Skip("chromium is not installed (no /usr/bin/chromium): skipping the headless screenshot of the HTML report; install Debian's chromium to run it")
		}
		bin = p
	}
	var buf bytes.Buffer
	if err := HTML(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	page := buf.Bytes()
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, page, 0o600); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "shot.png")
	cmd := exec.CommandContext(t.Context(), bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--screenshot="+shot, "--window-size=1200,1600", "file://"+file)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	st, err := os.Stat(shot)
	if err != nil || st.Size() < 1000 {
		t.Fatalf("no screenshot produced: %v", err)
	}
}
