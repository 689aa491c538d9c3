package password

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"slices"
	"strings"
	"testing"
)

func gz(t testing.TB, text string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func loadShipped(t testing.TB) *Blocklist {
	t.Helper()
	b, err := LoadBlocklist()
	if err != nil {
		t.Fatalf("LoadBlocklist() error = %v", err)
	}
	return b
}

func TestBlocklistSize(t *testing.T) {
	b := loadShipped(t)
	// The brief and blocklist/README.md promise at least the 10,000 most common.
	if b.Len() < 10000 {
		t.Fatalf("blocklist has %d entries, want at least 10,000", b.Len())
	}
	if !slices.IsSorted(b.sorted) {
		t.Fatal("entries are not sorted; binary search would miss")
	}
	if len(slices.Compact(slices.Clone(b.sorted))) != b.Len() {
		t.Fatal("entries are not unique")
	}
	for _, e := range b.sorted {
		if e == "" || e != foldKey(e) {
			t.Fatalf("entry %q is not in folded form", e)
		}
	}
}

func TestBlocklistContains(t *testing.T) {
	b := loadShipped(t)
	for _, pw := range []string{
		"password", "123456789", "qwerty123", "iloveyou", "12345678", "football",
		"PASSWORD", "Password", "QWERTY123", // case-insensitive
		"ｐａｓｓｗｏｒｄ", // full-width: NFKC-equivalent to "password"
	} {
		if !b.Contains(pw) {
			t.Errorf("Contains(%q) = false, want true", pw)
		}
	}
	for _, pw := range []string{
		"", "correct horse battery staple", "password!with?more", " password", "password ",
	} {
		if b.Contains(pw) {
			t.Errorf("Contains(%q) = true, want false", pw)
		}
	}
}

func TestRandomPassphraseAccepted(t *testing.T) {
	p := DefaultPolicy().WithBlocklist(loadShipped(t))
	for range 20 {
		pw := rand.Text() // 26 random base32 characters
		if err := p.Check(pw, "alice@example.com", "Gatehouse"); err != nil {
			// A random 26-character string collides with the list or the context
			// words with negligible probability; a failure means a broken check.
			t.Fatalf("Check(random %q) = %v, want nil", pw, err)
		}
		if err := p.Check(strings.ToLower(pw[:8]) + " horse battery staple"); err != nil {
			t.Fatalf("Check(random passphrase) = %v, want nil", err)
		}
	}
}

func TestParseBlocklist(t *testing.T) {
	b, err := parseBlocklist(bytes.NewReader(gz(t,
		"Hunter2Hunter2\r\n\n  \nＳＥＣＲＥＴＰＷ\nhunter2hunter2\nlast-line-without-newline")))
	if err != nil {
		t.Fatalf("parseBlocklist() error = %v", err)
	}
	want := []string{"  ", "hunter2hunter2", "last-line-without-newline", "secretpw"}
	if !slices.Equal(b.sorted, want) {
		t.Fatalf("entries = %q, want %q", b.sorted, want)
	}
	for _, pw := range []string{"HUNTER2hunter2", "secretpw", "SecretPW"} {
		if !b.Contains(pw) {
			t.Errorf("Contains(%q) = false, want true", pw)
		}
	}
}

func TestParseBlocklistRejects(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"not gzip", []byte("password\n123456\n")},
		{"empty input", nil},
		{"truncated gzip", gz(t, strings.Repeat("password\n", 1000))[:40]},
		{"decompresses beyond the bound", gz(t, strings.Repeat("a", maxBlocklistBytes+1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := parseBlocklist(bytes.NewReader(tt.data)); err == nil {
				t.Fatalf("parseBlocklist() = %d entries, want an error", b.Len())
			}
		})
	}
}
