package scan

import (
	"strings"
	"testing"
)

// BenchmarkMask measures masking a typical 600-byte evidence excerpt, done for
// every finding.
func BenchmarkMask(b *testing.B) {
	m := &Masker{}
	m.Add("pw-alice-123", "pw-bob-456", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlc2lnbmF0dXJl")
	ev := "GET https://127.0.0.1:8443/v1/users/7\nAuthorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlc2lnbmF0dXJl\n\nHTTP 200 OK\nContent-Type: application/json\n\n" +
		`{"id":"7","email":"a@x","password_hash":"$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g","card":"4111111111111111"}` + strings.Repeat(" pad", 80)
	b.ReportAllocs()
	for b.Loop() {
		_ = m.Mask(ev)
	}
}

func BenchmarkFingerprint(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Fingerprint("GH-BOLA-001", "GET", "/v1/notes/12345/comments/3f2b1c9e-0000-4000-8000-00000000abcd", "GET")
	}
}
