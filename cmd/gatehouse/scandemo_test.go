package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/demo"
)

// startDemo runs `gatehouse demo` in-process on free loopback ports and waits
// until it answers. It returns the base URL and the demo directory.
func startDemo(t *testing.T, unprotected bool) (string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	https, admin, up := freePort(t), freePort(t), freePort(t)
	args := []string{"gatehouse", "demo", "--dir", dir, "--https", https, "--admin", admin, "--upstream", up}
	if unprotected {
		args = append(args, "--unprotected")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stdout, stderr syncBuffer
	go func() {
		done <- run(ctx, args, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("demo did not stop")
		}
	})
	env := &testEnv{ca: filepath.Join(dir, "ca.pem")}
	base := "https://" + https
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("demo exited: %v\n%s", err, stderr.String())
		default:
		}
		if _, err := os.Stat(env.ca); err == nil {
			c := env.client(t)
			if resp, err := c.Get(base + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return base, dir
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo not ready\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type scanJSON struct {
	Findings []struct {
		ID       string `json:"id"`
		Severity string `json:"severity"`
		Title    string `json:"title"`
	} `json:"findings"`
}

// scanDemo signs up two users and scans the demo with them and its spec.
func scanDemo(t *testing.T, base, dir string) scanJSON {
	t.Helper()
	env := &testEnv{ca: filepath.Join(dir, "ca.pem")}
	c := env.client(t)
	for _, u := range []string{"alice@example.com", "bob@example.com"} {
		body := `{"email":"` + u + `","password":"` + pw + `"}`
		r := do(t, c, "POST", base+"/auth/v1/signup", jsonType, body)
		wantStatus(t, r, http.StatusCreated)
	}
	spec := filepath.Join(dir, "openapi.yaml")
	if err := os.WriteFile(spec, demo.OpenAPI(), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "scan.json")
	// Exit 1 (findings at or above --fail-on) is expected for the unprotected demo.
	_, stderr, code := runScan(t, []string{"gatehouse", "scan", base, "--ca", env.ca, "--spec", spec,
		"--user", "alice@example.com:" + pw, "--user", "bob@example.com:" + pw,
		"--format", "json", "--out", out, "--fail-on", "high", "--budget", "1500"})
	if code == 2 {
		t.Fatalf("scan error: %s", stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep scanJSON
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report: %v", err)
	}
	return rep
}

func (r scanJSON) has(prefix string, minSeverity ...string) bool {
	for _, f := range r.Findings {
		if !strings.HasPrefix(f.ID, prefix) {
			continue
		}
		if len(minSeverity) == 0 {
			return true
		}
		for _, s := range minSeverity {
			if f.Severity == s {
				return true
			}
		}
	}
	return false
}

// TestScanDemoBeforeAndAfter is the scanner proving itself: the unprotected
// demo (authentication only) shows ownership, data-exposure, rate-limit and
// injection-leak findings; the protected demo shows none of those at high
// severity.
func TestScanDemoBeforeAndAfter(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the two demo scans take tens of seconds")
	}
	base, dir := startDemo(t, true)
	before := scanDemo(t, base, dir)
	for _, want := range []string{"GH-BOLA", "GH-DATA", "GH-RATE", "GH-INJ"} {
		if !before.has(want) {
			t.Errorf("unprotected demo: no %s finding; got %+v", want, before.Findings)
		}
	}

	base, dir = startDemo(t, false)
	after := scanDemo(t, base, dir)
	for _, bad := range []string{"GH-BOLA", "GH-DATA", "GH-RATE", "GH-INJ"} {
		if after.has(bad, "high") {
			t.Errorf("protected demo: %s finding at high severity: %+v", bad, after.Findings)
		}
	}
	t.Logf("unprotected: %d findings; protected: %d findings", len(before.Findings), len(after.Findings))
}
