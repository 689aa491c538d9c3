package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs one command in-process and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb syncBuffer
	err := run(context.Background(), append([]string{"gatehouse"}, args...), func(string) string { return "" }, strings.NewReader(stdin), &out, &errb)
	code := 0
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
			if ee.msg != "" {
				errb.Write([]byte(ee.msg))
			}
		} else {
			code = 1
			errb.Write([]byte(err.Error()))
		}
	}
	return out.String(), errb.String(), code
}

func TestCLIHelpAndUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"serve", "--help"}, {"demo", "--help"}, {"config", "--help"}, {"config", "check", "--help"},
		{"migrate", "--help"}, {"keys", "--help"}, {"keys", "list", "--help"}, {"keys", "rotate", "--help"},
		{"users", "--help"}, {"users", "create", "--help"}, {"users", "grant", "--help"}, {"version", "--help"},
	} {
		out, errOut, code := runCLI(t, "", args...)
		if code != 0 || !strings.Contains(out, "Usage") {
			t.Errorf("%v: code %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	for _, args := range [][]string{
		{}, {"bogus"}, {"serve"}, {"serve", "--config"}, {"keys"}, {"keys", "explode", "--config", "x"},
		{"users", "create"}, {"config"}, {"config", "check"}, {"serve", "--config", "x", "extra"},
	} {
		if _, _, code := runCLI(t, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)", args, code)
		}
	}
	out, _, code := runCLI(t, "", "version")
	if code != 0 || !strings.Contains(out, "gatehouse") || !strings.Contains(out, "go1.") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestCLIConfigCheck(t *testing.T) {
	e := newTestEnv(t, "")
	out, _, code := runCLI(t, "", "config", "check", "--config", e.cfg)
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("valid config: %d %q", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("issuer: http://x\nstore: mysql://db\nserver:\n  listn: 1\ntokens:\n  access_ttl: 2h\nroutes:\n  - path: /v1/x/{id}\n    upstream: nope\n    allow: request.path.id ==\n"), 0o600)
	out, errOut, code := runCLI(t, "", "config", "check", "--config", bad)
	if code != 1 {
		t.Fatalf("bad config: exit %d", code)
	}
	for _, want := range []string{"bad.yaml:1:", "issuer", "store", "bad.yaml:4:", "listn", "access_ttl", "routes[0].upstream", "routes[0].allow"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "problem") {
		t.Errorf("stderr %q", errOut)
	}
	if _, _, code := runCLI(t, "", "config", "check", "--config", filepath.Join(t.TempDir(), "missing.yaml")); code != 1 {
		t.Errorf("missing file: exit %d", code)
	}
}

func TestCLIUsersKeysMigrate(t *testing.T) {
	e := newTestEnv(t, "plans:\n  free: 100/h\n  premium: 1000/h\nidentity:\n  default_plan: free\n")
	cfg := []string{"--config", e.cfg}
	if out, errOut, code := runCLI(t, "", append([]string{"migrate"}, cfg...)...); code != 0 || !strings.Contains(out, "sqlite") {
		t.Fatalf("migrate: %d %q %q", code, out, errOut)
	}
	// create: generated password (shown once) and one from stdin
	out, errOut, code := runCLI(t, "", append([]string{"users", "create", "--email", "root@example.com", "--roles", "admin"}, cfg...)...)
	if code != 0 || !strings.Contains(out, "password: ") {
		t.Fatalf("create: %d %q %q", code, out, errOut)
	}
	if _, errOut, code := runCLI(t, pw+"\n", append([]string{"users", "create", "--email", "ops@example.com", "--password-stdin", "--plan", "premium"}, cfg...)...); code != 0 {
		t.Fatalf("create from stdin: %d %q", code, errOut)
	}
	// bad input: weak password, duplicate, bad email, unknown plan
	for _, tc := range []struct {
		stdin string
		args  []string
		code  int
	}{
		{"password\n", []string{"--email", "weak@example.com", "--password-stdin"}, 1},
		{pw + "\n", []string{"--email", "ops@example.com", "--password-stdin"}, 1},
		{"", []string{"--email", "not-an-email"}, 2},
		{"", []string{"--email", "p@example.com", "--plan", "gold"}, 2},
		{"", []string{"--email", "empty@example.com", "--password-stdin"}, 2},
	} {
		if _, errOut, code := runCLI(t, tc.stdin, append(append([]string{"users", "create"}, tc.args...), cfg...)...); code != tc.code {
			t.Errorf("create %v: exit %d, want %d (%s)", tc.args, code, tc.code, errOut)
		}
	}
	out, _, code = runCLI(t, "", append([]string{"users", "list"}, cfg...)...)
	if code != 0 || !strings.Contains(out, "root@example.com") || !strings.Contains(out, "ops@example.com") || !strings.Contains(out, "premium") {
		t.Fatalf("list: %d %q", code, out)
	}
	for _, sub := range [][]string{
		{"lock", "--email", "ops@example.com"},
		{"unlock", "--email", "ops@example.com"},
		{"grant", "--email", "ops@example.com", "--roles", "support,admin", "--plan", "free"},
		{"revoke-sessions", "--email", "ops@example.com"},
	} {
		if out, errOut, code := runCLI(t, "", append(append([]string{"users"}, sub...), cfg...)...); code != 0 {
			t.Fatalf("%v: %d %q %q", sub, code, out, errOut)
		}
	}
	out, _, _ = runCLI(t, "", append([]string{"users", "list"}, cfg...)...)
	if !strings.Contains(out, "support,admin") {
		t.Fatalf("grant not visible: %q", out)
	}
	if _, _, code := runCLI(t, "", append([]string{"users", "lock", "--email", "nobody@example.com"}, cfg...)...); code != 1 {
		t.Errorf("lock unknown user: exit %d, want 1", code)
	}
	if _, _, code := runCLI(t, "", append([]string{"users", "lock", "--email", "a@example.com", "--id", "x"}, cfg...)...); code != 2 {
		t.Errorf("both --email and --id: exit %d, want 2", code)
	}

	out, _, code = runCLI(t, "", append([]string{"keys", "list"}, cfg...)...)
	if code != 0 || !strings.Contains(out, "active") || !strings.Contains(out, "next") {
		t.Fatalf("keys list: %d %q", code, out)
	}
	out, _, code = runCLI(t, "", append([]string{"keys", "rotate"}, cfg...)...)
	if code != 0 || !strings.Contains(out, "rotated") || !strings.Contains(out, "retiring") {
		t.Fatalf("keys rotate: %d %q", code, out)
	}
}
