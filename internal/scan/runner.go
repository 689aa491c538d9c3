package scan

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Phase says when a check runs.
type Phase int

// Phases, in the order they run.
const (
	// PhaseTransport checks run before any credential is sent (TLS, plain HTTP).
	PhaseTransport Phase = iota + 1
	// PhaseActive checks run concurrently after the baseline.
	PhaseActive
	// PhaseDisruptive checks run one at a time after the active ones, because
	// they may trip rate limits or lockouts that would disturb other checks.
	PhaseDisruptive
	// PhasePassive checks read the recorded exchanges and send nothing.
	PhasePassive
)

// Check is one small unit of the scan. Run returns what it found; an error
// means it could not finish (its findings so far are still reported).
type Check interface {
	ID() string
	Phase() Phase
	Rules() []Rule
	Run(ctx context.Context, t *Target) ([]Finding, error)
}

// CheckResult is how one check went.
type CheckResult struct {
	ID       string   `json:"id"`
	Rules    []string `json:"rules"`
	Findings int      `json:"findings"`
	Error    string   `json:"error,omitempty"`
}

// ReportVersion is the JSON report schema version.
const ReportVersion = 1

// Report is the result of a scan; every renderer reads it.
type Report struct {
	Version      int           `json:"version"`
	Tool         string        `json:"tool"`
	ToolVersion  string        `json:"tool_version"`
	Target       string        `json:"target"`
	Started      time.Time     `json:"started"`
	Finished     time.Time     `json:"finished"`
	RequestsUsed int           `json:"requests_used"`
	Budget       int           `json:"budget"`
	Notes        []string      `json:"notes,omitempty"`
	Checks       []CheckResult `json:"checks"`
	Rules        []Rule        `json:"rules"`
	Findings     []Finding     `json:"findings"`
	// Suppressed and Known count findings removed by --suppress and --baseline.
	Suppressed int `json:"suppressed"`
	Known      int `json:"known"`
}

// Progress is reported after each check.
type Progress struct {
	Done, Total int
	Requests    int
	Budget      int
	Current     string
}

// Options configure Run.
type Options struct {
	// Checks to run. Required.
	Checks []Check
	// Timeout bounds the whole scan. Zero means 10 minutes.
	Timeout time.Duration
	// Progress, if set, is called after each check (from one goroutine at a time).
	Progress func(Progress)
	// ToolVersion is written into the report. Empty means "dev".
	ToolVersion string
}

// Run scans t: transport checks, baseline, active, disruptive, then passive
// checks. It returns an error only when the scan as a whole failed
// (unreachable target, failed sign-in); a check's own failure is in its result.
func Run(ctx context.Context, t *Target, opts Options) (*Report, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Minute
	}
	if opts.ToolVersion == "" {
		opts.ToolVersion = "dev"
	}
	// Why: every loop in every check ends at this deadline, whatever it is doing.
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	rep := &Report{
		Version: ReportVersion, Tool: "gatehouse-scan", ToolVersion: opts.ToolVersion,
		Target: t.Base.String(), Started: t.Now().UTC(), Budget: t.Client.Budget(),
	}
	byPhase := map[Phase][]Check{}
	for _, c := range opts.Checks {
		byPhase[c.Phase()] = append(byPhase[c.Phase()], c)
		rep.Rules = append(rep.Rules, c.Rules()...)
	}
	sort.Slice(rep.Rules, func(i, j int) bool { return rep.Rules[i].ID < rep.Rules[j].ID })
	var (
		mu      sync.Mutex
		results = map[string]CheckResult{}
		done    int
	)
	record := func(c Check, fs []Finding, err error) {
		mu.Lock()
		defer mu.Unlock()
		res := CheckResult{ID: c.ID(), Findings: len(fs)}
		for _, r := range c.Rules() {
			res.Rules = append(res.Rules, r.ID)
		}
		if err != nil {
			res.Error = t.Mask.Mask(describe(err))
		}
		results[c.ID()] = res
		rep.Findings = append(rep.Findings, fs...)
		done++
		if opts.Progress != nil {
			opts.Progress(Progress{Done: done, Total: len(opts.Checks), Requests: t.Client.Used(), Budget: t.Client.Budget(), Current: c.ID()})
		}
	}
	runAll := func(cs []Check, parallel bool) {
		var wg sync.WaitGroup
		for _, c := range cs {
			if !parallel {
				fs, err := c.Run(ctx, t)
				record(c, fs, err)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				fs, err := c.Run(ctx, t)
				record(c, fs, err)
			}()
		}
		wg.Wait()
	}
	finish := func() *Report {
		rep.Finished = t.Now().UTC()
		rep.RequestsUsed = t.Client.Used()
		for _, c := range opts.Checks {
			res, ok := results[c.ID()]
			if !ok {
				res = CheckResult{ID: c.ID(), Error: "not run"}
				for _, r := range c.Rules() {
					res.Rules = append(res.Rules, r.ID)
				}
			}
			rep.Checks = append(rep.Checks, res)
		}
		SortFindings(rep.Findings)
		rep.Findings = dedupe(rep.Findings)
		if rep.Findings == nil {
			rep.Findings = []Finding{}
		}
		return rep
	}

	runAll(byPhase[PhaseTransport], true)
	if err := t.Prepare(ctx); err != nil {
		if errors.Is(err, ErrCertificate) {
			rep.Notes = append(rep.Notes, "the certificate does not verify, so only transport checks ran (pass --ca for a private CA)")
			return finish(), nil
		}
		if errors.Is(err, ErrUnreachable) || errors.Is(err, ErrLogin) {
			return nil, fmt.Errorf("scan %s: %w", t.Base, err)
		}
		rep.Notes = append(rep.Notes, t.Mask.Mask("baseline incomplete: "+describe(err)))
	}
	if len(t.Sessions) == 0 {
		rep.Notes = append(rep.Notes, "no --user or --token: token forgery, ownership and rate-limit checks are limited")
	} else if t.Baseline.Probe == nil {
		rep.Notes = append(rep.Notes, "no endpoint answered 2xx with the token and not without it, so forged tokens could not be judged")
	}
	runAll(byPhase[PhaseActive], true)
	runAll(byPhase[PhaseDisruptive], false)
	runAll(byPhase[PhasePassive], true)
	return finish(), nil
}

func describe(err error) string {
	switch {
	case errors.Is(err, ErrBudget):
		return "stopped: request budget exhausted"
	case errors.Is(err, context.DeadlineExceeded):
		return "stopped: scan time limit reached"
	case errors.Is(err, ErrBackoff):
		return "stopped: " + err.Error()
	}
	return err.Error()
}

// SortFindings orders by severity (high first), id, path, method, param.
func SortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if a.Method != b.Method {
			return a.Method < b.Method
		}
		return a.Param < b.Param
	})
}

// dedupe keeps the first finding per fingerprint (sorted input).
func dedupe(fs []Finding) []Finding {
	seen := map[string]bool{}
	out := fs[:0]
	for _, f := range fs {
		if seen[f.Fingerprint] {
			continue
		}
		seen[f.Fingerprint] = true
		out = append(out, f)
	}
	return out
}

// CountAtLeast counts findings with severity >= min.
func (r *Report) CountAtLeast(min Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity >= min {
			n++
		}
	}
	return n
}

// CountBySeverity returns counts for info..high.
func (r *Report) CountBySeverity() map[Severity]int {
	out := map[Severity]int{SeverityInfo: 0, SeverityLow: 0, SeverityMedium: 0, SeverityHigh: 0}
	for _, f := range r.Findings {
		out[f.Severity]++
	}
	return out
}
