package report

import (
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
)

type bar struct {
	Label        string
	Count        int
	X, Y, W, H   int
	Color        string
	LabelY, TopY int
}

type htmlData struct {
	R      *scan.Report
	Bars   []bar
	Counts map[string]int
	Groups []htmlGroup
}

type htmlGroup struct {
	Severity string
	Findings []scan.Finding
}

var colors = map[scan.Severity]string{
	scan.SeverityHigh: "#c62828", scan.SeverityMedium: "#ef6c00", scan.SeverityLow: "#f9a825", scan.SeverityInfo: "#1565c0",
}

// htmlTemplate is self-contained: inline CSS and SVG, no scripts, no external
// fetches. html/template escapes every value by context.
var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"upper": strings.ToUpper,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gatehouse scan: {{.R.Target}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#222}
h1{font-size:1.5rem;margin-bottom:.2rem}
.meta{color:#555;margin-bottom:1.5rem}
.sev{display:inline-block;padding:.1rem .5rem;border-radius:.3rem;color:#fff;font-size:.8rem;font-weight:600}
.sev-high{background:#c62828}.sev-medium{background:#ef6c00}.sev-low{background:#f9a825;color:#222}.sev-info{background:#1565c0}
.finding{border:1px solid #ddd;border-radius:.4rem;padding:.8rem 1rem;margin:.8rem 0}
.finding h3{margin:.2rem 0 .5rem;font-size:1.05rem}
pre{background:#f5f5f5;padding:.6rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all;font-size:.85rem}
dt{font-weight:600;margin-top:.4rem}dd{margin-left:1rem}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}
.note{background:#fff8e1;padding:.5rem .8rem;border-left:4px solid #f9a825;margin:.4rem 0}
</style>
</head>
<body>
<h1>gatehouse scan report</h1>
<div class="meta">Target <strong>{{.R.Target}}</strong> · started {{.R.Started.Format "2006-01-02 15:04:05Z07:00"}} · finished {{.R.Finished.Format "2006-01-02 15:04:05Z07:00"}} · {{.R.RequestsUsed}} of {{.R.Budget}} requests · {{.R.Tool}} {{.R.ToolVersion}}</div>
{{range .R.Notes}}<div class="note">{{.}}</div>{{end}}
<h2>Findings by severity</h2>
<svg xmlns="http://www.w3.org/2000/svg" width="420" height="220" viewBox="0 0 420 220" role="img" aria-label="findings by severity">
<line x1="30" y1="180" x2="410" y2="180" stroke="#999"/>
{{range .Bars}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="{{.Color}}"><title>{{.Label}}: {{.Count}}</title></rect>
<text x="{{.X}}" y="{{.TopY}}" font-size="14">{{.Count}}</text>
<text x="{{.X}}" y="{{.LabelY}}" font-size="13">{{.Label}}</text>
{{end}}</svg>
<p>{{index .Counts "high"}} high · {{index .Counts "medium"}} medium · {{index .Counts "low"}} low · {{index .Counts "info"}} info{{if .R.Suppressed}} · {{.R.Suppressed}} suppressed{{end}}{{if .R.Known}} · {{.R.Known}} in the baseline{{end}}</p>
<h2>Checks</h2>
<table><tr><th>check</th><th>rules</th><th>findings</th><th>status</th></tr>
{{range .R.Checks}}<tr><td>{{.ID}}</td><td>{{range $i, $r := .Rules}}{{if $i}}, {{end}}{{$r}}{{end}}</td><td>{{.Findings}}</td><td>{{if .Error}}{{.Error}}{{else}}done{{end}}</td></tr>
{{end}}</table>
{{range .Groups}}<h2>{{upper .Severity}}</h2>
{{range .Findings}}<div class="finding">
<h3><span class="sev sev-{{.Severity}}">{{.Severity}}</span> {{.ID}} {{.Title}}</h3>
<dl>
<dt>Where</dt><dd>{{.Method}} {{.URL}}{{if .Param}} ({{.Param}}){{end}}</dd>
<dt>Fingerprint</dt><dd><code>{{.Fingerprint}}</code></dd>
{{if .Evidence.Details}}<dt>Details</dt><dd>{{.Evidence.Details}}</dd>{{end}}
<dt>Request</dt><dd><pre>{{.Evidence.Request}}</pre></dd>
{{if .Evidence.Response}}<dt>Response</dt><dd><pre>{{.Evidence.Response}}</pre></dd>{{end}}
<dt>Fix</dt><dd>{{.Fix}}</dd>
</dl>
</div>
{{end}}{{end}}
{{if not .R.Findings}}<p>No findings.</p>{{end}}
</body>
</html>
`))

// HTML writes a self-contained report with an SVG bar chart of findings by severity.
func HTML(w io.Writer, r *scan.Report) error {
	counts := r.CountBySeverity()
	maxCount := 1
	for _, n := range counts {
		if n > maxCount {
			maxCount = n
		}
	}
	d := htmlData{R: r, Counts: map[string]int{}}
	for i, sev := range severities {
		n := counts[sev]
		h := n * 150 / maxCount
		x := 50 + i*90
		d.Bars = append(d.Bars, bar{Label: sev.String(), Count: n, X: x, Y: 180 - h, W: 60, H: h, Color: colors[sev], LabelY: 200, TopY: 175 - h})
		d.Counts[sev.String()] = n
		var g htmlGroup
		for _, f := range r.Findings {
			if f.Severity == sev {
				g.Findings = append(g.Findings, f)
			}
		}
		if len(g.Findings) > 0 {
			g.Severity = sev.String()
			d.Groups = append(d.Groups, g)
		}
	}
	if err := htmlTemplate.Execute(w, d); err != nil {
		return fmt.Errorf("write html report: %w", err)
	}
	return nil
}
