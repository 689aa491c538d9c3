package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/tlsutil"
)

// runPins runs `gatehouse pins` in-process.
func runPins(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), append([]string{"gatehouse", "pins"}, args...), func(string) string { return "" },
		strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), err
}

// opensslPin computes base64(SHA-256(SPKI DER)) with the openssl CLI: from a
// certificate (x509) or from a private key (pkey).
func opensslPin(t *testing.T, kind, file string) string {
	t.Helper()
	var script string
	switch kind {
	case "cert":
		script = `openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | openssl base64 -A`
	case "key":
		script = `openssl pkey -in "$1" -pubout -outform der | openssl dgst -sha256 -binary | openssl base64 -A`
	}
	out, err := exec.Command("bash", "-o", "pipefail", "-c", script, "bash", file).Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func TestPinsCommandMatchesOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed: the independent pin computation needs it (apt-get install openssl)")
	}
	env := newTransportEnv(t, transportOpts{tls: "    backup_key_file: BACKUP\n"})
	backup := filepath.Join(env.dir, "keys", "backup-key.pem")
	data, _ := os.ReadFile(env.cfg)
	if err := os.WriteFile(env.cfg, bytes.Replace(data, []byte("BACKUP"), []byte(backup), 1), 0o600); err != nil {
		t.Fatal(err)
	}

	out, _, err := runPins(t, "--config", env.cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(backup)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup key not created 0600: %v %v", st, err)
	}
	var ps tlsutil.PinSet
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	serving := opensslPin(t, "cert", filepath.Join(env.dir, tlsutil.DevCertFile))
	backupPin := opensslPin(t, "key", backup)
	if len(ps.Pins) != 1 || ps.Pins[0] != serving {
		t.Errorf("pins %v, openssl says the serving key is %s", ps.Pins, serving)
	}
	if len(ps.Backups) != 1 || ps.Backups[0] != backupPin {
		t.Errorf("backups %v, openssl says the backup key is %s", ps.Backups, backupPin)
	}
	if len(ps.Hosts) != 1 || ps.Hosts[0] != "127.0.0.1" || ps.Version != 1 || ps.NotAfter.IsZero() {
		t.Errorf("pin set %+v", ps)
	}

	// The backup key is kept: a second run prints the same backup pin.
	again, _, err := runPins(t, "--config", env.cfg)
	if err != nil || again != out {
		t.Fatalf("second run differs (%v):\n%s\n%s", err, out, again)
	}

	for _, f := range []struct{ format, want string }{
		{"android", `<pin digest="SHA-256">` + serving + `</pin>`},
		{"ios", "<string>" + backupPin + "</string>"},
		{"okhttp", `"sha256/` + serving + `"`},
		{"json", `"` + backupPin + `"`},
	} {
		t.Run(f.format, func(t *testing.T) {
			out, _, err := runPins(t, "--config", env.cfg, "--format", f.format)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, f.want) || !strings.Contains(out, backupPin) {
				t.Errorf("%s output lacks %q or the backup pin:\n%s", f.format, f.want, out)
			}
		})
	}
}

func TestPinsCommandErrors(t *testing.T) {
	noBackup := newTransportEnv(t, transportOpts{})
	withBackup := newTransportEnv(t, transportOpts{tls: "    backup_key_file: " + filepath.Join(t.TempDir(), "b.pem") + "\n"})
	worldReadable := filepath.Join(t.TempDir(), "open.pem")
	if _, _, err := tlsutil.EnsureBackupKey(worldReadable); err != nil {
		t.Fatal(err)
	}
	os.Chmod(worldReadable, 0o644)
	badKey := newTransportEnv(t, transportOpts{tls: "    backup_key_file: " + worldReadable + "\n"})
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantMsg  string
	}{
		{"no config", nil, 2, "--config"},
		{"unknown format", []string{"--config", withBackup.cfg, "--format", "pem"}, 2, "unknown pin format"},
		{"no backup key", []string{"--config", noBackup.cfg}, 1, "backup_key_file"},
		{"world-readable backup key", []string{"--config", badKey.cfg}, 1, "readable by other users"},
		{"missing config", []string{"--config", filepath.Join(t.TempDir(), "nope.yaml")}, 1, ""},
		{"stray argument", []string{"--config", withBackup.cfg, "extra"}, 2, "unexpected argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := runPins(t, tc.args...)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != tc.wantCode || !strings.Contains(ee.Error(), tc.wantMsg) {
				t.Fatalf("err = %v, want exit %d mentioning %q", err, tc.wantCode, tc.wantMsg)
			}
			if out != "" {
				t.Errorf("printed on failure: %s", out)
			}
		})
	}
	if out, _, err := runPins(t, "--help"); err != nil || !strings.Contains(out, "--format") {
		t.Errorf("--help: %v %s", err, out)
	}
}
