package main

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/envelope"
	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func TestKeysUsage(t *testing.T) {
	e, _ := atRestEnv(t, "")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"keys", "--help"}, 0, "rotate --kek NEW_URL"},
		{[]string{"keys", "rotate", "--help"}, 0, "--batch"},
		{[]string{"keys", "rotate", "--data", "--kek", "env://X", "--config", e.cfg}, 2, "not both"},
		{[]string{"keys", "rotate", "--data", "--batch", "0", "--config", e.cfg}, 2, "--batch"},
		{[]string{"keys", "rotate", "--data", "--batch", "x", "--config", e.cfg}, 2, ""},
		{[]string{"keys", "check"}, 2, "--config"},
		{[]string{"keys", "rotate", "--kek", "ftp://nope", "--config", e.cfg}, 1, `scheme "ftp"`},
	} {
		out, errOut, code := runCLI(t, "", tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%v: exit %d\n%s%s", tc.args, code, out, errOut)
		}
	}
}

// TestKeysRotateKEK: data keys re-wrapped under a KMS KEK; the old KEK then
// fails closed and the new one opens everything, blind indexes included. A
// database with pre-envelope values must be re-sealed first.
func TestKeysRotateKEK(t *testing.T) {
	e, _ := atRestEnv(t, "")
	ctx := context.Background()
	a := openTestApp(t, e.cfg)
	now := time.Now()
	legacy := keys.NewSealer(mustLoadKEK(t, filepath.Join(e.dir, "kek.key")))
	v1, _ := legacy.Seal(envelope.PurposeEmail, []byte("old@example.com"), "users", "email", "old-user")
	if err := a.db.CreateUser(ctx, &store.User{ID: "old-user", EmailIndex: legacy.Index("email", []byte("old@example.com")), EmailSealed: v1, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	a.Close()

	out, _, code := runCLI(t, "", "keys", "list", "--config", e.cfg)
	if code != 0 || !strings.Contains(out, "data keys (wrapped by kek") || !strings.Contains(out, "totp_secret") || !strings.Contains(out, "index") {
		t.Fatalf("keys list: %d\n%s", code, out)
	}
	newKEK := "base64key://" + base64.URLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	_, errOut, code := runCLI(t, "", "keys", "rotate", "--kek", newKEK, "--config", e.cfg)
	if code != 1 || !strings.Contains(errOut, "pre-envelope") || !strings.Contains(errOut, "rotate --data") {
		t.Fatalf("rotate --kek with v1 values: %d %s", code, errOut)
	}
	if out, errOut, code = runCLI(t, "", "keys", "rotate", "--data", "--config", e.cfg); code != 0 || !strings.Contains(out, "started") {
		t.Fatalf("rotate --data: %d %s %s", code, out, errOut)
	}
	out, errOut, code = runCLI(t, "", "keys", "rotate", "--kek", newKEK, "--config", e.cfg)
	if code != 0 || !strings.Contains(out, "data keys re-wrapped") {
		t.Fatalf("rotate --kek: %d %s %s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "0123456789abcdef") {
		t.Fatal("the new KEK was printed")
	}
	// The old KEK no longer starts anything.
	if _, errOut, code = runCLI(t, "", "keys", "check", "--config", e.cfg); code == 0 || !strings.Contains(errOut, "wrong kek") {
		t.Fatalf("old kek after rotation: %d %s", code, errOut)
	}
	b, _ := os.ReadFile(e.cfg)
	cfg := strings.Replace(string(b), "kek: file://"+filepath.Join(e.dir, "kek.key"), "kek: "+newKEK, 1)
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code = runCLI(t, "", "keys", "check", "--config", e.cfg); code != 0 {
		t.Fatalf("check under the new kek: %d %s %s", code, out, errOut)
	}
	a = openTestApp(t, e.cfg)
	u, err := a.db.UserByEmailIndex(ctx, a.sealer.Index(envelope.PurposeEmail, []byte("old@example.com")))
	if err != nil || u.ID != "old-user" {
		t.Fatalf("email lookup after both rotations: %v", err)
	}
	if got, err := a.sealer.Open(envelope.PurposeEmail, u.EmailSealed, "users", "email", u.ID); err != nil || string(got) != "old@example.com" {
		t.Fatalf("email after both rotations: %q %v", got, err)
	}
	if len(a.ring.Keys()) == 0 {
		t.Fatal("no signing keys under the new kek")
	}
}
