package protect

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// WAFOptions configure a WAF. The zero value is paranoia level 1, threshold 5,
// blocking.
type WAFOptions struct {
	// Paranoia is the CRS paranoia level 1–4; higher catches more and refuses
	// more legitimate input. Zero means 1.
	Paranoia int
	// Threshold is the inbound anomaly score at which a request is blocked (a
	// critical rule scores 5, error 4, warning 3, notice 2). Zero means 5, CRS's
	// default: one critical match blocks.
	Threshold int
	// ReportOnly evaluates every rule but never blocks: CheckRequest returns a
	// Violation with ActionReported for a request that would have been blocked.
	ReportOnly bool
	// ExtraDirectives are SecLang lines appended after the CRS (exclusions,
	// ctl:ruleRemoveById…). Empty means none.
	ExtraDirectives string
}

// Errors from NewWAF.
var ErrWAFOptions = errors.New("protect: invalid WAF options")

// blockingRuleID is CRS's inbound anomaly-score evaluation rule: it matches when
// the score reached the threshold, which is how report-only learns "would block".
const blockingRuleID = 949110

// WAF is a compiled Coraza engine with the OWASP Core Rule Set. It is safe for
// concurrent use; compile one per distinct WAFOptions and share it between routes.
type WAF struct {
	waf  coraza.WAF
	opts WAFOptions
}

// NewWAF compiles the CRS with opts. It takes about a second and tens of MiB, so
// do it at start-up, once per distinct configuration.
func NewWAF(opts WAFOptions) (*WAF, error) {
	if opts.Paranoia == 0 {
		opts.Paranoia = 1
	}
	if opts.Threshold == 0 {
		opts.Threshold = 5
	}
	if opts.Paranoia < 1 || opts.Paranoia > 4 {
		return nil, fmt.Errorf("%w: paranoia %d is not 1–4", ErrWAFOptions, opts.Paranoia)
	}
	if opts.Threshold < 1 || opts.Threshold > 1000 {
		return nil, fmt.Errorf("%w: threshold %d is not 1–1000", ErrWAFOptions, opts.Threshold)
	}
	engine := "On"
	if opts.ReportOnly {
		engine = "DetectionOnly"
	}
	// Why these settings: the gateway hands the WAF a body it has already
	// buffered and bounded, so Coraza keeps it in memory and never spills to
	// disk; responses are judged by FilterResponse, not by CRS's 95x rules,
	// which would need the whole body twice. PUT, PATCH and DELETE are
	// allowed because REST APIs use them; the route table already decides
	// which methods reach a route.
	directives := fmt.Sprintf(`
Include @coraza.conf-recommended
Include @crs-setup.conf.example
SecRuleEngine %s
SecRequestBodyAccess On
SecRequestBodyLimit 13107200
SecRequestBodyInMemoryLimit 13107200
SecRequestBodyLimitAction ProcessPartial
SecResponseBodyAccess Off
SecAuditEngine Off
SecAction "id:900000,phase:1,pass,nolog,t:none,setvar:tx.blocking_paranoia_level=%d"
SecAction "id:900110,phase:1,pass,nolog,t:none,setvar:tx.inbound_anomaly_score_threshold=%d,setvar:tx.outbound_anomaly_score_threshold=4"
SecAction "id:900200,phase:1,pass,nolog,t:none,setvar:'tx.allowed_methods=GET HEAD POST OPTIONS PUT PATCH DELETE'"
Include @owasp_crs/*.conf
%s
`, engine, opts.Paranoia, opts.Threshold, opts.ExtraDirectives)
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(coreruleset.FS).WithDirectives(directives))
	if err != nil {
		return nil, fmt.Errorf("protect: compile waf: %w", err)
	}
	return &WAF{waf: w, opts: opts}, nil
}

// Options returns the options the WAF was compiled with, defaults filled in.
func (w *WAF) Options() WAFOptions { return w.opts }

// WAFResult is one request's WAF verdict.
type WAFResult struct {
	// Block: the anomaly score reached the threshold (in report-only mode: would
	// have reached it).
	Block bool
	// Score is the inbound anomaly score of the matched rules at or below the
	// blocking paranoia level.
	Score int
	// RuleIDs are the matched detection rules (scoring rules only), ascending.
	RuleIDs []int
	// Field is where the most severe match was, e.g. "query.q", "body.title".
	Field string
	// Matched lists every rule that matched, scoring or not, in match order
	// (regression testing compares it with the CRS tests' expectations).
	Matched []int
}

// Check runs the request phases of the CRS over r with its already-buffered
// body (nil for none). It does not read r.Body.
func (w *WAF) Check(r *http.Request, body []byte) (WAFResult, error) {
	tx := w.waf.NewTransaction()
	defer tx.Close()
	host, port, _ := net.SplitHostPort(r.RemoteAddr)
	p, _ := strconv.Atoi(port)
	tx.ProcessConnection(host, p, "", 0)
	// The raw request line when there is one (server requests): the WAF must
	// judge the bytes the client sent, not Go's re-encoding of them.
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	tx.ProcessURI(uri, r.Method, r.Proto)
	for k, vs := range r.Header {
		for _, v := range vs {
			tx.AddRequestHeader(k, v)
		}
	}
	if r.Host != "" {
		tx.AddRequestHeader("Host", r.Host)
		tx.SetServerName(r.Host)
	}
	if len(body) > 0 && r.Header.Get("Content-Length") == "" && len(r.TransferEncoding) == 0 {
		// Go moves Content-Length out of the header map on some paths; CRS
		// checks for it (920180), and the body we hand over is exactly this long.
		tx.AddRequestHeader("Content-Length", strconv.Itoa(len(body)))
	}
	for _, te := range r.TransferEncoding {
		tx.AddRequestHeader("Transfer-Encoding", te)
	}
	it := tx.ProcessRequestHeaders()
	if it == nil && len(body) > 0 {
		if it2, _, err := tx.WriteRequestBody(body); err != nil {
			return WAFResult{}, fmt.Errorf("protect: waf body: %w", err)
		} else if it2 != nil {
			it = it2
		}
	}
	if it == nil {
		it2, err := tx.ProcessRequestBody()
		if err != nil {
			return WAFResult{}, fmt.Errorf("protect: waf body: %w", err)
		}
		it = it2
	}
	res := WAFResult{Block: it != nil}
	best := types.RuleSeverity(99)
	for _, m := range tx.MatchedRules() {
		rule := m.Rule()
		res.Matched = append(res.Matched, rule.ID())
		if rule.ID() == blockingRuleID {
			res.Block = true
			continue
		}
		pts := severityScore(rule.Severity())
		if pts == 0 || !atOrBelowParanoia(rule.Tags(), w.opts.Paranoia) {
			continue
		}
		res.Score += pts
		res.RuleIDs = append(res.RuleIDs, rule.ID())
		if rule.Severity() < best && len(m.MatchedDatas()) > 0 {
			best = rule.Severity()
			md := m.MatchedDatas()[0]
			res.Field = wafField(md.Variable(), md.Key())
		}
	}
	slices.Sort(res.RuleIDs)
	res.RuleIDs = slices.Compact(res.RuleIDs)
	if res.Field == "" {
		res.Field = "request"
	}
	return res, nil
}

// severityScore is CRS's anomaly points per severity (crs-setup defaults).
func severityScore(s types.RuleSeverity) int {
	switch s {
	case types.RuleSeverityCritical:
		return 5
	case types.RuleSeverityError:
		return 4
	case types.RuleSeverityWarning:
		return 3
	case types.RuleSeverityNotice:
		return 2
	}
	return 0
}

func atOrBelowParanoia(tags []string, pl int) bool {
	for _, t := range tags {
		if rest, ok := strings.CutPrefix(t, "paranoia-level/"); ok {
			n, err := strconv.Atoi(rest)
			return err == nil && n <= pl
		}
	}
	return true
}

// wafField maps a Coraza variable to the field-path vocabulary of Finding.
func wafField(v variables.RuleVariable, key string) string {
	key = safeKey(key)
	switch v {
	case variables.ArgsGet, variables.ArgsGetNames:
		return "query." + key
	case variables.ArgsPost, variables.ArgsPostNames, variables.RequestBody, variables.JSON:
		if key == "" {
			return "body"
		}
		return "body." + strings.TrimPrefix(key, "json.")
	case variables.Args, variables.ArgsNames:
		return "args." + key
	case variables.RequestHeaders, variables.RequestHeadersNames:
		return "header." + key
	case variables.RequestCookies, variables.RequestCookiesNames:
		return "cookie." + key
	case variables.RequestURI, variables.RequestURIRaw, variables.RequestFilename, variables.RequestBasename, variables.RequestLine:
		return "path"
	case variables.RequestMethod:
		return "method"
	}
	return strings.ToLower(v.Name())
}
