package crstest

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	crstests "github.com/corazawaf/coraza-coreruleset/v4/tests"
	"github.com/gatehouse-dev/gatehouse/internal/protect"
)

var wafs sync.Map // "pl/reportOnly" → *protect.WAF

func waf(t testing.TB, pl int, reportOnly bool) *protect.WAF {
	key := fmt.Sprint(pl, reportOnly)
	if w, ok := wafs.Load(key); ok {
		return w.(*protect.WAF)
	}
	w, err := protect.NewWAF(protect.WAFOptions{Paranoia: pl, ReportOnly: reportOnly})
	if err != nil {
		t.Fatal(err)
	}
	wafs.Store(key, w)
	return w
}

func TestLoadShippedTests(t *testing.T) {
	cases, total, notRunnable, err := Load(crstests.FS)
	if err != nil {
		t.Fatal(err)
	}
	if total < 3000 || len(cases) < total/2 || len(cases)+notRunnable != total {
		t.Fatalf("loaded %d runnable of %d (%d not runnable)", len(cases), total, notRunnable)
	}
}

// TestKnownAttacksDetected is the always-on smoke check: classic payloads from
// the shipped tests are blocked at PL1 and the runner sees their rule ids.
func TestKnownAttacksDetected(t *testing.T) {
	cases, _, _, err := Load(crstests.FS)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"942100-1": true, "942100-2": true, "941100-1": true, "932160-1": true, "930100-1": true}
	w := waf(t, 1, false)
	seen := 0
	for _, c := range cases {
		if !want[c.Name] {
			continue
		}
		seen++
		r, body := c.Clone()
		res, err := w.Check(r, body)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Block || !c.Passes(res.Matched) {
			t.Errorf("%s: block=%v matched %v, expected %v", c.Name, res.Block, res.RuleIDs, c.ExpectIDs)
		}
	}
	if seen != len(want) {
		t.Fatalf("found %d of the %d smoke cases", seen, len(want))
	}
}

// TestBenignSample keeps a slice of the benign corpus clean at PL1 on every run.
func TestBenignSample(t *testing.T) {
	w := waf(t, 1, false)
	for _, b := range Benign(60) {
		res, err := w.Check(b.Request, b.Body)
		if err != nil {
			t.Fatal(err)
		}
		if res.Block {
			t.Errorf("%s blocked: rules %v field %s", b.Name, res.RuleIDs, res.Field)
		}
	}
}

// TestCRSReport produces the figures in docs/protection.md. It runs every
// runnable shipped test at PL4 (rule-level pass rate, CRS's own setting) and
// measures blocking at PL1 and PL2 plus false positives on the benign corpus.
// It takes minutes on a shared 2-core machine, so it runs only when asked.
func TestCRSReport(t *testing.T) {
	if os.Getenv("GATEHOUSE_CRS_REPORT") == "" {
		t.Skip("set GATEHOUSE_CRS_REPORT=1 to run all shipped CRS regression tests and the benign corpus (several minutes)")
	}
	cases, total, notRunnable, err := Load(crstests.FS)
	if err != nil {
		t.Fatal(err)
	}
	pls, err := RuleParanoia(coreruleset.FS)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("shipped tests: %d, runnable request-side: %d, not runnable: %d", total, len(cases), notRunnable)

	pass := 0
	var fails []string
	w4 := waf(t, 4, true)
	for _, c := range cases {
		r, body := c.Clone()
		res, err := w4.Check(r, body)
		if err != nil {
			t.Fatal(err)
		}
		if c.Passes(res.Matched) {
			pass++
		} else {
			fails = append(fails, c.Name)
		}
	}
	t.Logf("PL4 rule-level expectations met: %d / %d", pass, len(cases))
	sort.Strings(fails)
	if len(fails) > 60 {
		fails = fails[:60]
	}
	t.Logf("first failures: %s", strings.Join(fails, " "))

	for _, pl := range []int{1, 2} {
		w := waf(t, pl, false)
		attacks, detected, inScope, inScopeDetected := 0, 0, 0, 0
		for _, c := range cases {
			if len(c.ExpectIDs) == 0 {
				continue
			}
			attacks++
			scoped := true
			for _, id := range c.ExpectIDs {
				if p, ok := pls[id]; !ok || p > pl {
					scoped = false
				}
			}
			r, body := c.Clone()
			res, err := w.Check(r, body)
			if err != nil {
				t.Fatal(err)
			}
			if res.Block {
				detected++
			}
			if scoped {
				inScope++
				if res.Block {
					inScopeDetected++
				}
			}
		}
		fp := 0
		benign := Benign(240)
		var fpNames []string
		for _, b := range benign {
			res, err := w.Check(b.Request, b.Body)
			if err != nil {
				t.Fatal(err)
			}
			if res.Block {
				fp++
				if len(fpNames) < 10 {
					fpNames = append(fpNames, fmt.Sprintf("%s %v", b.Name, res.RuleIDs))
				}
			}
		}
		t.Logf("PL%d: blocked %d / %d tests expecting a rule; %d / %d whose rules are all at PL ≤ %d; false positives %d / %d benign",
			pl, detected, attacks, inScopeDetected, inScope, pl, fp, len(benign))
		for _, n := range fpNames {
			t.Logf("  PL%d false positive: %s", pl, n)
		}
	}
}
