package password

import (
	"strings"
	"testing"
)

func TestDefaultParams(t *testing.T) {
	p := DefaultParams()
	if p != (Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}) {
		t.Fatalf("DefaultParams() = %+v, want the OWASP floor m=19456 t=2 p=1", p)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("DefaultParams().Validate() = %v", err)
	}
	if got, want := p.String(), "m=19456,t=2,p=1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParamsValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       Params
		wantErr []string // substrings that must all appear; nil means valid
	}{
		{"floor", Params{19456, 2, 1}, nil},
		{"stronger", Params{65536, 3, 4}, nil},
		{"at ceilings", Params{MaxMemoryKiB, MaxIterations, MaxParallelism}, nil},
		{"zero value", Params{}, []string{"memory 0 KiB is below", "iterations 0 is below", "parallelism 0 is below"}},
		{"memory below floor", Params{19455, 2, 1}, []string{"memory 19455 KiB is below the floor"}},
		{"iterations below floor", Params{19456, 1, 1}, []string{"iterations 1 is below the floor"}},
		{"memory above ceiling", Params{MaxMemoryKiB + 1, 2, 1}, []string{"above the ceiling of 1048576 KiB"}},
		{"memory 4 GiB", Params{4 << 20, 2, 1}, []string{"memory 4194304 KiB is above"}},
		{"memory max uint32", Params{^uint32(0), 2, 1}, []string{"above the ceiling"}},
		{"iterations above ceiling", Params{19456, 65, 1}, []string{"iterations 65 is above"}},
		{"parallelism above ceiling", Params{19456, 2, 65}, []string{"parallelism 65 is above"}},
		{"every problem reported", Params{1, 1000, 255}, []string{"memory 1 KiB is below", "iterations 1000 is above", "parallelism 255 is above"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error mentioning %q", tt.wantErr)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Validate() = %q, want it to contain %q", err, s)
				}
			}
		})
	}
}
