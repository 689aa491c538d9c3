package proc

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
)

const sample = "4242 (gatehouse) S 1 4242 4242 0 -1 4194560 1234 0 0 0 731 214 0 0 20 0 9 0 123456 1234567 890 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0\n"

func TestParseStat(t *testing.T) {
	tests := []struct {
		name         string
		in           string
		utime, stime uint64
		err          bool
	}{
		{"sample line", sample, 731, 214, false},
		{"name with spaces and parens", strings.Replace(sample, "(gatehouse)", "(a) b ) (c)", 1), 731, 214, false},
		{"empty", "", 0, 0, true},
		{"no name", "4242 gatehouse S 1 2 3 4 5 6 7 8 9 10 11 12", 0, 0, true},
		{"truncated after name", "4242 (x) S 1 2 3", 0, 0, true},
		{"negative utime", strings.Replace(sample, " 731 ", " -731 ", 1), 0, 0, true},
		{"utime not a number", strings.Replace(sample, " 731 ", " 7e2 ", 1), 0, 0, true},
		{"stime overflow", strings.Replace(sample, " 214 ", " 99999999999999999999999 ", 1), 0, 0, true},
		{"only a close paren", ")", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, s, err := ParseStat([]byte(tt.in))
			if tt.err {
				if !errors.Is(err, ErrBadStat) {
					t.Fatalf("err = %v, want ErrBadStat", err)
				}
				return
			}
			if err != nil || u != tt.utime || s != tt.stime {
				t.Fatalf("= %d, %d, %v; want %d, %d", u, s, err, tt.utime, tt.stime)
			}
		})
	}
}

func TestCPUOfSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("proc: /proc/<pid>/stat exists on Linux only")
	}
	if _, err := CPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if _, err := CPU(-1); err == nil {
		t.Fatal("CPU(-1) succeeded")
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte(sample))                                // a sample line
	f.Add([]byte("1 ((()) R 0 0 0 0 0 0 0 0 0 0 5 6 0")) // nested parentheses in the name
	f.Add([]byte("1 (x) R 0 0 0 0 0 0 0 0 0 0 5"))       // stime missing
	f.Add([]byte("1 (x)\tR\n0 0 0 0 0 0 0 0 0 0 5 6 0")) // other whitespace
	f.Fuzz(func(t *testing.T, b []byte) {
		u, s, err := ParseStat(b)
		if err != nil && (u != 0 || s != 0) {
			t.Fatalf("values %d, %d returned with error %v", u, s, err)
		}
		if err != nil && !errors.Is(err, ErrBadStat) {
			t.Fatalf("error %v is not ErrBadStat", err)
		}
	})
}
