package keys

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testKey is a fixed, recognisable key: its bytes, hex and base64 forms are easy
// to search for in output.
var testKey = bytes.Repeat([]byte{0xA7, 0x3C, 0x5E, 0x91}, 8)

func writeFile(t *testing.T, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is subject to umask
		t.Fatal(err)
	}
	return p
}

func noEnv(string) string { return "" }

func TestLoadKEKFile(t *testing.T) {
	std := base64.StdEncoding.EncodeToString(testKey)
	tests := []struct {
		name    string
		data    []byte
		mode    os.FileMode
		wantErr string // substring; empty means success
	}{
		{"std base64", []byte(std), 0o600, ""},
		{"std base64 newline", []byte(std + "\n"), 0o600, ""},
		{"std base64 crlf and spaces", []byte("  " + std + "\r\n"), 0o400, ""},
		{"raw std base64", []byte(base64.RawStdEncoding.EncodeToString(testKey)), 0o600, ""},
		{"url base64", []byte(base64.URLEncoding.EncodeToString(testKey)), 0o600, ""},
		{"raw url base64", []byte(base64.RawURLEncoding.EncodeToString(testKey) + "\n"), 0o600, ""},
		{"raw 32 bytes", testKey, 0o600, ""},
		{"group readable", []byte(std), 0o640, "chmod 600"},
		{"world readable", []byte(std), 0o644, "chmod 600"},
		{"group writable only", []byte(std), 0o620, "chmod 600"},
		{"others executable", []byte(std), 0o601, "chmod 600"},
		{"16 bytes base64", []byte(base64.StdEncoding.EncodeToString(testKey[:16])), 0o600, "decodes to 16 bytes"},
		{"64 bytes base64", []byte(base64.StdEncoding.EncodeToString(append(testKey, testKey...))), 0o600, "decodes to 64 bytes"},
		{"31 raw bytes", testKey[:31], 0o600, "neither base64 nor 32 raw bytes"},
		{"33 raw bytes", append(slicesClone(testKey), 0xff), 0o600, "neither base64 nor 32 raw bytes"},
		{"empty", nil, 0o600, "decodes to 0 bytes"},
		{"not base64", []byte("this is not a key at all!!!!!!!!!!!!!!!!!!!"), 0o600, "neither base64"},
		{"huge", bytes.Repeat([]byte("A"), 10000), 0o600, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, tt.data, tt.mode)
			k, err := LoadKEK("file://"+p, noEnv)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("LoadKEK: %v", err)
				}
				if k.key != [32]byte(testKey) {
					t.Fatal("loaded key differs from the file's")
				}
				return
			}
			if err == nil {
				t.Fatalf("LoadKEK succeeded, want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tt.wantErr)
			}
			if tt.wantErr == "chmod 600" && !strings.Contains(err.Error(), "chmod 600 "+p) {
				t.Fatalf("error %q does not give the chmod command for %s", err, p)
			}
			assertNoSecret(t, err.Error(), tt.data)
		})
	}
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

// assertNoSecret fails if s contains the test key (raw, hex or base64) or the
// given file content.
func assertNoSecret(t *testing.T, s string, content []byte) {
	t.Helper()
	for _, needle := range []string{
		string(testKey),
		hex.EncodeToString(testKey),
		strings.ToUpper(hex.EncodeToString(testKey)),
		base64.RawStdEncoding.EncodeToString(testKey),
		base64.RawURLEncoding.EncodeToString(testKey),
		fmt.Sprint([]byte(testKey)),
		fmt.Sprint(testKey[:4]), // a byte-array rendering would contain this
	} {
		if strings.Contains(s, needle) {
			t.Fatalf("output leaks the key: %q", s)
		}
	}
	if trimmed := bytes.TrimSpace(content); len(trimmed) >= 8 && strings.Contains(s, string(trimmed)) {
		t.Fatalf("output leaks the file content: %q", s)
	}
}

func TestLoadKEKFileMissingAndNotRegular(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadKEK("file://"+filepath.Join(dir, "absent"), noEnv); err == nil {
		t.Fatal("missing file loaded")
	}
	if _, err := LoadKEK("file://"+dir, noEnv); err == nil {
		t.Fatal("directory loaded as a KEK")
	}
	if _, err := LoadKEK("file://", noEnv); err == nil || !strings.Contains(err.Error(), "no path") {
		t.Fatalf("empty path: err = %v", err)
	}
}

func TestLoadKEKEnv(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		env     map[string]string
		wantErr string
	}{
		{"std", "env://GH_KEK", map[string]string{"GH_KEK": base64.StdEncoding.EncodeToString(testKey)}, ""},
		{"url raw", "env://GH_KEK", map[string]string{"GH_KEK": base64.RawURLEncoding.EncodeToString(testKey)}, ""},
		{"unset", "env://GH_KEK", nil, "GH_KEK is unset or empty"},
		{"blank", "env://GH_KEK", map[string]string{"GH_KEK": "  \n"}, "GH_KEK is unset or empty"},
		{"short", "env://GH_KEK", map[string]string{"GH_KEK": base64.StdEncoding.EncodeToString(testKey[:20])}, "decodes to 20 bytes"},
		{"garbage", "env://GH_KEK", map[string]string{"GH_KEK": "%%%not-base64%%%"}, "GH_KEK"},
		{"no name", "env://", nil, "no variable name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := LoadKEK(tt.url, func(n string) string { return tt.env[n] })
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if k.key != [32]byte(testKey) {
					t.Fatal("wrong key")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			assertNoSecret(t, err.Error(), []byte(tt.env["GH_KEK"]))
		})
	}
}

func TestLoadKEKSchemes(t *testing.T) {
	secretURL := "base64key://" + base64.URLEncoding.EncodeToString(testKey)
	tests := []struct {
		url     string
		wantErr string
	}{
		{"awskms://alias/gatehouse?region=eu-west-1", `scheme "awskms" is a KMS key`},
		{"hashivault://gatehouse", `scheme "hashivault"`},
		{"gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k", `scheme "gcpkms"`},
		{secretURL, `scheme "base64key"`},
		{"/etc/gatehouse/kek", "not a URL"},
		{base64.StdEncoding.EncodeToString(testKey), "not a URL"},
		{"", "not a URL"},
		{"a b://x", "not a URL"},
		{"1x://x", "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := LoadKEK(tt.url, noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			assertNoSecret(t, err.Error(), nil)
		})
	}
}

func TestGenerateKEKFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "kek")
	if err := GenerateKEKFile(p); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %#o, want 0600", fi.Mode().Perm())
	}
	k1, err := LoadKEK("file://"+p, noEnv)
	if err != nil {
		t.Fatalf("generated file does not load: %v", err)
	}
	before, _ := os.ReadFile(p)
	if err := GenerateKEKFile(p); err == nil {
		t.Fatal("GenerateKEKFile overwrote an existing file")
	}
	after, _ := os.ReadFile(p)
	if !bytes.Equal(before, after) {
		t.Fatal("existing KEK file changed")
	}

	p2 := filepath.Join(t.TempDir(), "kek")
	if err := GenerateKEKFile(p2); err != nil {
		t.Fatal(err)
	}
	k2, err := LoadKEK("file://"+p2, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if k1.key == k2.key || k1.ID() == k2.ID() {
		t.Fatal("two generated KEKs are equal")
	}
}

func TestKEKID(t *testing.T) {
	k := newKEK(testKey)
	if got := k.ID(); len(got) != 16 || got != newKEK(testKey).ID() {
		t.Fatalf("ID %q is not a stable 16-hex-char fingerprint", got)
	}
	other := newKEK(bytes.Repeat([]byte{1}, 32))
	if k.ID() == other.ID() {
		t.Fatal("different keys share an ID")
	}
	if strings.Contains(hex.EncodeToString(testKey), k.ID()) {
		t.Fatal("ID is a slice of the key")
	}
}

func TestKEKNeverPrinted(t *testing.T) {
	k := newKEK(testKey)
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("kek", "kek", k, "value", *k, "any", slog.AnyValue(k))
		l.Info("group", slog.Group("g", "kek", k))
	}
	outputs := []string{
		fmt.Sprintf("%v %+v %#v", k, k, k),
		fmt.Sprintf("%v %+v %#v", *k, *k, *k),
		fmt.Sprintf("%s %q %x %X %d", k, k, k, k, k),
		fmt.Sprintf("%s %q %x %X %d", *k, *k, *k, *k, *k),
		fmt.Sprint(k, *k, []*KEK{k}, map[string]KEK{"k": *k}, struct{ K *KEK }{k}),
		fmt.Sprintf("%+v %#v", struct{ K KEK }{*k}, struct{ K KEK }{*k}),
		buf.String(),
	}
	for _, s := range outputs {
		assertNoSecret(t, s, nil)
		if !strings.Contains(s, kekMask) {
			t.Fatalf("output %q does not show the mask", s)
		}
	}
	if b, err := json.Marshal(k); err == nil {
		t.Fatalf("json.Marshal(KEK) = %s, want an error", b)
	}
}
