package ban

import (
	"strings"
	"testing"
)

// FuzzDecode: whatever arrives on the shared Redis channel, decode either
// refuses it or returns a ban with a normalised value and a bounded duration.
func FuzzDecode(f *testing.F) {
	f.Add(`{"id":"b1","kind":"ip","value":"192.0.2.1","created_at":"2030-01-01T00:00:00Z","expires_at":"2030-01-01T00:15:00Z"}`)
	f.Add(`{"id":"b1","kind":"ip","value":"::ffff:192.0.2.1","created_at":"2030-01-01T00:00:00Z","expires_at":"2030-01-01T00:15:00Z","lifted_at":"2030-01-01T00:01:00Z"}`)
	f.Add(`{"id":"b1","kind":"user","value":"u 1","created_at":"2030-01-01T00:00:00Z","expires_at":"2031-01-01T00:00:00Z"}`) // bad value, too long
	f.Add(`{"id":"","kind":"session","value":"s"}`)
	f.Add(`[]`)
	f.Add(`{"kind":"ip","value":"` + strings.Repeat("9", 5000) + `"}`)
	f.Fuzz(func(t *testing.T, s string) {
		b, err := decode(s)
		if err != nil {
			return
		}
		v, nerr := Normalize(b.Kind, b.Value)
		if nerr != nil || v != b.Value {
			t.Fatalf("decoded value not normalised: %+v", b)
		}
		if d := b.ExpiresAt.Sub(b.CreatedAt); d <= 0 || d > MaxDuration {
			t.Fatalf("decoded duration %v", d)
		}
		if b.ID == "" || len(b.ID) > 128 {
			t.Fatalf("decoded id %q", b.ID)
		}
	})
}
