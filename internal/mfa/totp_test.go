package mfa

import (
	"testing"
	"time"

	"github.com/pquerna/otp"
)

// RFC 6238 Appendix B: each algorithm with its own seed (the ASCII digits
// repeated to the hash's size), 8 digits, X = 30 s, T0 = 0.
var (
	seedSHA1   = []byte("12345678901234567890")
	seedSHA256 = []byte("12345678901234567890123456789012")
	seedSHA512 = []byte("1234567890123456789012345678901234567890123456789012345678901234")
)

func TestRFC6238Vectors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		unix int64
		step int64
		sha1 string
		s256 string
		s512 string
	}{
		{59, 0x1, "94287082", "46119246", "90693936"},
		{1111111109, 0x23523EC, "07081804", "68084774", "25091201"},
		{1111111111, 0x23523ED, "14050471", "67062674", "99943326"},
		{1234567890, 0x273EF07, "89005924", "91819424", "93441116"},
		{2000000000, 0x3F940AA, "69279037", "90698825", "38618901"},
		{20000000000, 0x27BC86AA, "65353130", "77737706", "47863826"},
	} {
		at := time.Unix(tc.unix, 0).UTC()
		for _, v := range []struct {
			name string
			alg  otp.Algorithm
			seed []byte
			want string
		}{
			{"SHA1", otp.AlgorithmSHA1, seedSHA1, tc.sha1},
			{"SHA256", otp.AlgorithmSHA256, seedSHA256, tc.s256},
			{"SHA512", otp.AlgorithmSHA512, seedSHA512, tc.s512},
		} {
			p := Params{Algorithm: v.alg, Digits: otp.DigitsEight, Period: 30 * time.Second}
			if got := p.Step(at); got != tc.step {
				t.Fatalf("%d: step %#x, want %#x", tc.unix, got, tc.step)
			}
			got, err := Code(v.seed, tc.step, p)
			if err != nil || got != v.want {
				t.Errorf("%s at %d: code %q (%v), want %q", v.name, tc.unix, got, err, v.want)
			}
			step, ok, err := Match(v.seed, v.want, at, 0, p)
			if err != nil || !ok || step != tc.step {
				t.Errorf("%s at %d: Match = %d, %v, %v; want step %#x", v.name, tc.unix, step, ok, err, tc.step)
			}
			// One digit off never matches.
			bad := []byte(v.want)
			bad[7] = '0' + (bad[7]-'0'+1)%10
			if _, ok, _ := Match(v.seed, string(bad), at, 1, p); ok {
				t.Errorf("%s at %d: %s matched", v.name, tc.unix, bad)
			}
		}
	}
}

func TestMatchSkew(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdefghij")
	p := AppParams
	now := time.Unix(1_800_000_015, 0) // mid-step
	cur := p.Step(now)
	code := func(step int64) string {
		c, err := Code(secret, step, p)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name string
		code string
		ok   bool
		step int64
	}{
		{"current", code(cur), true, cur},
		{"previous step", code(cur - 1), true, cur - 1},
		{"next step", code(cur + 1), true, cur + 1},
		{"two steps old", code(cur - 2), false, 0},
		{"two steps ahead", code(cur + 2), false, 0},
		{"empty", "", false, 0},
		{"five digits", code(cur)[:5], false, 0},
		{"seven digits", code(cur) + "0", false, 0},
		{"letters", "12a456", false, 0},
		{"spaces", " " + code(cur)[1:], false, 0},
		{"unicode digits", "١٢٣٤٥٦", false, 0},
	} {
		step, ok, err := Match(secret, tc.code, now, 1, p)
		if err != nil || ok != tc.ok || ok && step != tc.step {
			t.Errorf("%s: Match = %d, %v, %v; want %v at %d", tc.name, step, ok, err, tc.ok, tc.step)
		}
	}
	if _, _, err := Match(secret, "123456", now, 1, Params{Algorithm: otp.AlgorithmMD5, Digits: otp.DigitsSix, Period: 30 * time.Second}); err == nil {
		t.Error("MD5 accepted")
	}
	if _, _, err := Match(secret, "12345", now, 1, Params{Algorithm: otp.AlgorithmSHA1, Digits: 5, Period: 30 * time.Second}); err == nil {
		t.Error("5 digits accepted")
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("123456", int64(1_800_000_000))
	f.Add("", int64(0))
	f.Add("00000000", int64(-1))
	f.Add("\x00\xff12345", int64(59))
	secret := []byte("12345678901234567890")
	f.Fuzz(func(t *testing.T, code string, unix int64) {
		step, ok, err := Match(secret, code, time.Unix(unix, 0), 1, AppParams)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			want, _ := Code(secret, step, AppParams)
			if want != code {
				t.Fatalf("matched %q at step %d whose code is %q", code, step, want)
			}
		}
	})
}
