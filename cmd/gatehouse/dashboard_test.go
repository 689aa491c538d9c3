package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const chromiumPath = "/usr/bin/chromium"

// TestDashboardBrowser drives Debian's chromium: an admin signs in to the
// dashboard, sees the ban a password spray earned, lifts it, and the address
// is let through again. Screenshots are kept as test artifacts.
//
// TLS: the admin listener serves the test's dev-CA certificate. Instead of
// --ignore-certificate-errors (which would trust any certificate for any
// origin), chromium is told to accept exactly this certificate's public key
// (--ignore-certificate-errors-spki-list with its SPKI hash), and only the
// test's loopback admin origin serves that key.
func TestDashboardBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("browser test skipped: %s is not installed (apt-get install chromium)", chromiumPath)
	}
	hook := newHookReceiver(t)
	c := newGWCluster(t, "memory")
	a := c.monitorReplica(t, "a", hook.srv.URL, `  detectors:
    brute_force_ip: {threshold: 6, window: 5m, ban_for: 15m}
    brute_force_account: {disabled: true}
`)
	cfg := filepath.Join(c.dir, "a.yaml")
	const adminEmail, adminPW = "root@example.com", "violet-anchor-lantern-77"
	var out, errb strings.Builder
	if err := run(t.Context(), []string{"gatehouse", "users", "create", "--config", cfg, "--email", adminEmail, "--roles", "admin", "--password-stdin"},
		func(string) string { return "" }, strings.NewReader(adminPW+"\n"), &out, &errb); err != nil {
		t.Fatalf("users create: %v %s", err, errb.String())
	}

	// The attack: a password spray from the cluster's address.
	wantStatus(t, a.signup(t, "target@example.com", pw), http.StatusCreated)
	for i := range 8 {
		loginFrom(t, a.c, a, "target@example.com", fmt.Sprintf("guess-%d", i))
	}
	attacker := c.clientIP.String()
	waitUntil(t, "ban", func() bool { return a.get(t, "/healthz", "").status == http.StatusForbidden })

	spki := spkiHash(t, c.ca.CertFile)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
		chromedp.WindowSize(1280, 1600),
	}
	actx, cancelA := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	ctx, cancel := context.WithTimeout(bctx, 40*time.Second)
	defer cancel()

	origin := "https://" + a.admin
	do := func(what string, act chromedp.Action[chromedp.Void]) {
		t.Helper()
		if _, err := chromedp.Run(ctx, act); err != nil {
			// Say where the browser was and what it showed.
			dctx, dcancel := context.WithTimeout(bctx, 5*time.Second)
			defer dcancel()
			loc, _ := chromedp.Run(dctx, chromedp.Location())
			body, _ := chromedp.Run(dctx, chromedp.Text(chromedp.CSS("body")))
			if b, err := chromedp.Run(dctx, chromedp.FullScreenshot(100)); err == nil {
				saveArtifact(t, "dashboard-failure.png", b)
			}
			t.Fatalf("browser: %s: %v (at %s, page text %q)", what, err, loc, body)
		}
	}
	text := func(sel chromedp.CSS) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("browser: text of %s: %v", sel, err)
		}
		return s
	}
	shot := func(name string) {
		t.Helper()
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("browser: screenshot: %v", err)
		}
		saveArtifact(t, name, b)
	}

	do("open the dashboard", chromedp.Navigate(origin+"/dashboard/"))
	do("see the sign-in form", chromedp.WaitVisible(chromedp.CSS("#email")))
	do("type the email", chromedp.SendKeys(chromedp.CSS("#email"), adminEmail))
	do("type the password", chromedp.SendKeys(chromedp.CSS("#password"), adminPW))
	do("sign in", chromedp.Click(chromedp.CSS("#sign-in")))
	do("dashboard loaded", chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`)))
	if who := text("#who"); !strings.Contains(who, adminEmail) {
		t.Fatalf("signed in as %q", who)
	}
	do("see a ban", chromedp.WaitVisible(chromedp.CSS(`#bans tbody tr[data-ban-id]`)))
	if bans := text("#bans tbody"); !strings.Contains(bans, attacker) || !strings.Contains(bans, "brute_force_ip") {
		t.Fatalf("the bans table does not show the attack's ban: %q", bans)
	}
	shot("dashboard-banned.png")
	do("lift the ban", chromedp.Click(chromedp.CSS(`#bans tbody tr[data-ban-id] button.lift`)))
	do("ban gone from the table", chromedp.WaitNotPresent(chromedp.CSS(`#bans tbody tr[data-ban-id]`)))
	shot("dashboard-lifted.png")

	waitUntil(t, "unban", func() bool { return a.get(t, "/healthz", "").status == http.StatusOK })
	lifted, _ := a.adminGet(t, c, "/admin/v1/events?type=ban_lifted")["events"].([]any)
	if len(lifted) != 1 || !strings.HasPrefix(detail(lifted[0].(map[string]any), "by"), "admin:") {
		t.Fatalf("ban_lifted events: %v", lifted)
	}
}

// spkiHash is the base64 SHA-256 of the leaf certificate's public key, the
// form chromium's --ignore-certificate-errors-spki-list takes.
func spkiHash(t *testing.T, certFile string) string {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", certFile)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// saveArtifact writes a test artifact under the test's temp dir and, when
// GATEHOUSE_TEST_ARTIFACTS names a directory, copies it there.
func saveArtifact(t *testing.T, name string, b []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("artifact: %s (%d bytes)", p, len(b))
	if dir := os.Getenv("GATEHOUSE_TEST_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("artifact copied to %s", filepath.Join(dir, name))
	}
}
