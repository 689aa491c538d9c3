package tlsutil

import (
	"crypto/ecdsa"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestEnsureBackupKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "backup-key.pem")
	pub, created, err := EnsureBackupKey(path)
	if err != nil || !created {
		t.Fatalf("first call: created=%v err=%v", created, err)
	}
	if _, ok := pub.(*ecdsa.PublicKey); !ok {
		t.Fatalf("key type %T, want ECDSA", pub)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	pub2, created, err := EnsureBackupKey(path)
	if err != nil || created {
		t.Fatalf("second call: created=%v err=%v", created, err)
	}
	p1, _ := PublicKeyPin(pub)
	p2, _ := PublicKeyPin(pub2)
	if p1 != p2 {
		t.Fatal("the backup key changed between calls: its published pin would be worthless")
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := EnsureBackupKey(path); !errors.Is(err, ErrKeyFileMode) {
		t.Fatalf("world-readable key: err = %v, want ErrKeyFileMode", err)
	}

	bad := []struct{ name, data string }{
		{"not pem", "hello"},
		{"certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
		{"broken key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
		{"empty", ""},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			p := filepath.Join(dir, b.name+".pem")
			if err := os.WriteFile(p, []byte(b.data), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, created, err := EnsureBackupKey(p); err == nil || created {
				t.Fatalf("accepted (created=%v)", created)
			}
			if data, _ := os.ReadFile(p); string(data) != b.data {
				t.Fatal("a broken backup key file was overwritten")
			}
		})
	}
	if _, _, err := EnsureBackupKey(""); err == nil {
		t.Error("empty path accepted")
	}
}
