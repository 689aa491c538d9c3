package mfa

import (
	"bytes"
	"crypto/rand"
	"regexp"
	"testing"
)

func TestNewRecoveryCodes(t *testing.T) {
	t.Parallel()
	codes, err := newRecoveryCodes(rand.Reader, RecoveryCodeCount)
	if err != nil {
		t.Fatal(err)
	}
	shape := regexp.MustCompile(`^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$`)
	seen := map[string]bool{}
	for _, c := range codes {
		if !shape.MatchString(c) || seen[c] {
			t.Errorf("code %q: bad shape or repeated", c)
		}
		seen[c] = true
		canon, err := NormalizeRecoveryCode(c)
		if err != nil || len(canon) != 16 {
			t.Errorf("code %q does not normalise: %q %v", c, canon, err)
		}
	}
	if len(codes) != 10 {
		t.Fatalf("%d codes", len(codes))
	}
	// A repeating source yields distinct codes anyway (no duplicates stored).
	if _, err := newRecoveryCodes(bytes.NewReader(make([]byte, 10)), 2); err == nil {
		t.Error("a source with one code's worth of bytes produced two codes")
	}
}

func TestNormalizeRecoveryCode(t *testing.T) {
	t.Parallel()
	const canon = "abcd2345efghijkl"
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"abcd-2345-efgh-ijkl", canon},
		{"ABCD-2345-EFGH-IJKL", canon},
		{"abcd2345efghijkl", canon},
		{" abcd 2345 efgh ijkl ", canon},
		{"abcd-2345-efgh-ijk1", canon},              // 1 → l
		{"abcd-2345-efgh-0000", "abcd2345efghoooo"}, // 0 → o
		{"a-b-c-d-2-3-4-5-e-f-g-h-i-j-k-l", canon},  // hyphens anywhere
	} {
		got, err := NormalizeRecoveryCode(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "abcd-2345-efgh-ijk", "abcd-2345-efgh-ijklm", "abcd-2345-efgh-ijk8", "abcd_2345_efgh_ijkl",
		"abcd-2345-efgh-ijk\u00e9", "abcd-2345-efgh-ijkl\x00", string(make([]byte, 100))} {
		if got, err := NormalizeRecoveryCode(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, got)
		}
	}
}

func TestHashRecoveryCodeBindsUser(t *testing.T) {
	t.Parallel()
	a, b := hashRecoveryCode("u1", "abcd2345efghijkl"), hashRecoveryCode("u2", "abcd2345efghijkl")
	if bytes.Equal(a, b) || len(a) != 32 {
		t.Fatal("hash does not depend on the user")
	}
}

func FuzzNormalizeRecoveryCode(f *testing.F) {
	f.Add("abcd-2345-efgh-ijkl") // canonical shape
	f.Add("ABCD 2345 EFGH IJK1") // upper case, spaces, 1 for l
	f.Add("abcd-2345-efgh-ijk")  // one short
	f.Add("ａｂｃｄ-2345-efgh-ijkl") // full-width letters
	f.Add("\x00\xff")
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizeRecoveryCode(in)
		if err != nil {
			return
		}
		if len(out) != 16 {
			t.Fatalf("%q → %q", in, out)
		}
		for _, c := range out {
			if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
				t.Fatalf("%q → %q has %q", in, out, c)
			}
		}
		if again, err := NormalizeRecoveryCode(out); err != nil || again != out {
			t.Fatalf("not idempotent: %q → %q → %q %v", in, out, again, err)
		}
	})
}
