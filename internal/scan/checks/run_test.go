package checks

import (
	"crypto/tls"
	"io"
	"log"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
)

func tlsAPI(t *testing.T, a *api) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(a)
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: aeadOnly}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// TestRunSecureHasNoFindings runs every check against the secure fake API: a
// scanner that cries wolf is not used.
func TestRunSecureHasNoFindings(t *testing.T) {
	srv := tlsAPI(t, newAPI(t))
	tgt := newTargetFor(t, srv, targetOpts{spec: true, users: []string{"alice@x", "bob@x"}})
	rep, err := scan.Run(t.Context(), tgt, scan.Options{Checks: All()})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 {
		t.Fatalf("secure API: findings %v", ids(rep.Findings))
	}
	for _, c := range rep.Checks {
		if c.Error != "" {
			t.Errorf("check %s: %s", c.ID, c.Error)
		}
	}
	if len(rep.Checks) != len(All()) || rep.RequestsUsed == 0 || rep.RequestsUsed > rep.Budget {
		t.Fatalf("checks %d, requests %d of %d", len(rep.Checks), rep.RequestsUsed, rep.Budget)
	}
}

// TestRunVulnerable runs every check against an API with every weakness on.
func TestRunVulnerable(t *testing.T) {
	a := newAPI(t, "bola", "leak", "sql", "cors-reflect", "no-nosniff", "token-cache", "pprof", "no-ratelimit", "alg-none", "no-hsts")
	srv := tlsAPI(t, a)
	tgt := newTargetFor(t, srv, targetOpts{spec: true, users: []string{"alice@x", "bob@x"}})
	rep, err := scan.Run(t.Context(), tgt, scan.Options{Checks: All()})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range rep.Findings {
		got[f.ID] = true
	}
	for _, id := range []string{"GH-BOLA-001", "GH-DATA-001", "GH-DATA-002", "GH-INJ-001", "GH-CORS-001", "GH-HDR-001", "GH-HDR-002",
		"GH-EXP-001", "GH-RATE-001", "GH-RATE-002", "GH-AUTH-002", "GH-TLS-005"} {
		if !got[id] {
			t.Errorf("missing %s; got %v", id, ids(rep.Findings))
		}
	}
	if rep.RequestsUsed < a.requestCount() {
		// Every HTTP request the server saw was counted (raw TLS handshakes are
		// counted too but never reach the handler).
		t.Errorf("report says %d requests, server saw %d", rep.RequestsUsed, a.requestCount())
	}
	if n := rep.CountAtLeast(scan.SeverityHigh); n == 0 {
		t.Error("no high findings")
	}
	fps := make([]string, 0, len(rep.Findings))
	for _, f := range rep.Findings {
		fps = append(fps, f.Fingerprint)
	}
	// Fingerprints are stable across runs.
	a2 := newAPI(t, "bola", "leak", "sql", "cors-reflect", "no-nosniff", "token-cache", "pprof", "no-ratelimit", "alg-none", "no-hsts")
	srv2 := tlsAPI(t, a2)
	tgt2 := newTargetFor(t, srv2, targetOpts{spec: true, users: []string{"alice@x", "bob@x"}})
	rep2, err := scan.Run(t.Context(), tgt2, scan.Options{Checks: All()})
	if err != nil {
		t.Fatal(err)
	}
	fps2 := make([]string, 0, len(rep2.Findings))
	for _, f := range rep2.Findings {
		if f.ID != "GH-TLS-006" {
			fps2 = append(fps2, f.Fingerprint)
		}
	}
	sort.Strings(fps)
	sort.Strings(fps2)
	if strings.Join(fps, ",") != strings.Join(fps2, ",") {
		t.Errorf("fingerprints differ between two runs:\n%v\n%v", ids(rep.Findings), ids(rep2.Findings))
	}
}

// TestRunNeverExceedsBudget counts requests at the server for several budgets.
func TestRunNeverExceedsBudget(t *testing.T) {
	for _, budget := range []int{1, 7, 40, 150} {
		a := newAPI(t, "no-ratelimit", "bola")
		srv := httptest.NewServer(a)
		tgt := newTargetFor(t, srv, targetOpts{spec: true, users: []string{"alice@x", "bob@x"}, budget: budget})
		rep, err := scan.Run(t.Context(), tgt, scan.Options{Checks: All()})
		srv.Close()
		if err != nil && budget > 5 {
			t.Fatalf("budget %d: %v", budget, err)
		}
		if a.requestCount() > budget {
			t.Fatalf("budget %d: the server saw %d requests", budget, a.requestCount())
		}
		if rep != nil && rep.RequestsUsed > budget {
			t.Fatalf("budget %d: report says %d", budget, rep.RequestsUsed)
		}
	}
}
