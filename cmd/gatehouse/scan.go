package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
	"github.com/gatehouse-dev/gatehouse/internal/scan/checks"
	"github.com/gatehouse-dev/gatehouse/internal/scan/openapi"
	"github.com/gatehouse-dev/gatehouse/internal/scan/report"
)

// userFlags collects repeatable --user name:password values.
type userFlags []scan.Credential

func (u *userFlags) String() string { return fmt.Sprintf("%d user(s)", len(*u)) }

func (u *userFlags) Set(v string) error {
	name, pw, ok := strings.Cut(v, ":")
	if !ok || name == "" || pw == "" {
		return errors.New("want name:password")
	}
	*u = append(*u, scan.Credential{Name: name, Password: pw})
	return nil
}

const scanUsage = "scan URL [--spec FILE] [--user name:password]... [--token T] [--format text|json|sarif|junit|html] [--out FILE] [--fail-on high] [flags]"

// cmdScan runs the security scanner against URL. Exit 0: no finding at or above
// --fail-on; 1: such findings; 2: the scan itself failed.
func cmdScan(ctx context.Context, e env, args []string) error {
	fs := newFlags(e, "scan", scanUsage)
	var users userFlags
	fs.Var(&users, "user", "test account `name:password` (repeatable; two or more enable ownership checks)")
	specPath := fs.String("spec", "", "OpenAPI 3.0/3.1 `file` (YAML or JSON) listing the operations")
	loginURL := fs.String("login-url", "", "token endpoint for the password grant (default URL/auth/v1/token)")
	token := fs.String("token", "", "a ready bearer token (default $GATEHOUSE_SCAN_TOKEN)")
	caFile := fs.String("ca", "", "PEM `file` with a private CA to trust")
	budget := fs.Int("budget", 2000, "maximum number of requests")
	concurrency := fs.Int("concurrency", 4, "requests in flight (1-32)")
	timeout := fs.Duration("timeout", 10*time.Minute, "total scan time")
	format := fs.String("format", "text", "report format: text, json, sarif, junit or html")
	out := fs.String("out", "", "write the report to `file` (default stdout)")
	failOn := fs.String("fail-on", "high", "exit 1 when a finding is at or above: info, low, medium or high")
	baseline := fs.String("baseline", "", "previous JSON report `file`: report only new findings")
	suppress := fs.String("suppress", "", "YAML/JSON `file` listing {id or fingerprint, reason} to remove")

	var target string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		target, args = args[0], args[1:]
	}
	if err := parseFlags(e, fs, args); err != nil {
		return helpOK(err)
	}
	if target == "" {
		return usageError("scan: a target URL is required: gatehouse %s", scanUsage)
	}
	if *budget < 1 {
		return usageError("scan: --budget must be at least 1")
	}
	if *concurrency < 1 || *concurrency > 32 {
		return usageError("scan: --concurrency must be between 1 and 32")
	}
	if *timeout <= 0 {
		return usageError("scan: --timeout must be positive")
	}
	if !validFormat(*format) {
		return usageError("scan: --format %q: want one of %s", *format, strings.Join(report.Formats(), ", "))
	}
	minSev, err := scan.ParseSeverity(*failOn)
	if err != nil {
		return usageError("scan: --fail-on: %v", err)
	}
	if *token == "" {
		*token = e.getenv("GATEHOUSE_SCAN_TOKEN")
	}

	var spec *openapi.Spec
	if *specPath != "" {
		b, err := readLimited(*specPath, openapi.MaxSize)
		if err != nil {
			return usageError("scan: --spec: %v", err)
		}
		if spec, err = openapi.Parse(b); err != nil {
			return usageError("scan: --spec %s: %v", *specPath, err)
		}
	}
	var sups []scan.Suppression
	if *suppress != "" {
		b, err := readLimited(*suppress, scan.MaxFilterFile)
		if err != nil {
			return usageError("scan: --suppress: %v", err)
		}
		if sups, err = scan.ParseSuppressions(b); err != nil {
			return usageError("scan: --suppress %s: %v", *suppress, err)
		}
	}
	var known map[string]bool
	if *baseline != "" {
		b, err := readLimited(*baseline, scan.MaxFilterFile)
		if err != nil {
			return usageError("scan: --baseline: %v", err)
		}
		if known, err = scan.ReadBaseline(b); err != nil {
			return usageError("scan: --baseline %s: %v", *baseline, err)
		}
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if *caFile != "" {
		pem, err := readLimited(*caFile, 1<<20)
		if err != nil {
			return usageError("scan: --ca: %v", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return usageError("scan: --ca %s: no PEM certificate found", *caFile)
		}
		tlsCfg.RootCAs = pool
	}
	version := scanVersion()
	t, err := scan.NewTarget(scan.TargetOptions{
		URL: target, Spec: spec, Users: users, Token: *token, LoginURL: *loginURL,
		Client: scan.ClientOptions{TLS: tlsCfg, Budget: *budget, Concurrency: *concurrency, UserAgent: "gatehouse-scan/" + version},
	})
	if err != nil {
		return usageError("scan: %v", err)
	}
	opts := scan.Options{Checks: checks.All(), Timeout: *timeout, ToolVersion: version}
	if isTerminal(e.stderr) {
		opts.Progress = progressBar(e.stderr)
	}
	rep, err := scan.Run(ctx, t, opts)
	if opts.Progress != nil {
		fmt.Fprintln(e.stderr)
	}
	if err != nil {
		return &exitError{code: 2, msg: t.Mask.Mask(err.Error())}
	}
	rep.Suppress(sups)
	rep.DropKnown(known)

	var buf bytes.Buffer
	if err := report.Write(&buf, *format, rep); err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	if *out != "" {
		// 0600: evidence is masked, but a report still maps the API's weaknesses.
		if err := os.WriteFile(*out, buf.Bytes(), 0o600); err != nil {
			return &exitError{code: 2, msg: fmt.Sprintf("scan: --out: %v", err)}
		}
	} else if _, err := e.stdout.Write(buf.Bytes()); err != nil {
		return &exitError{code: 2, msg: fmt.Sprintf("scan: write report: %v", err)}
	}
	if n := rep.CountAtLeast(minSev); n > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("scan: %d finding(s) at or above %s", n, minSev)}
	}
	return nil
}

func validFormat(f string) bool {
	for _, v := range report.Formats() {
		if f == v {
			return true
		}
	}
	return false
}

// readLimited reads a file, refusing one larger than limit.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

func scanVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// isTerminal reports whether w is a terminal (the progress bar is drawn only then).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func progressBar(w io.Writer) func(scan.Progress) {
	return func(p scan.Progress) {
		const width = 30
		filled := 0
		if p.Total > 0 {
			filled = p.Done * width / p.Total
		}
		fmt.Fprintf(w, "\r[%s%s] %d/%d checks, %d/%d requests  %-16s", strings.Repeat("#", filled), strings.Repeat(" ", width-filled),
			p.Done, p.Total, p.Requests, p.Budget, p.Current)
	}
}
