package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidateWebAuthn(t *testing.T) {
	t.Parallel()
	const android = "android:apk-key-hash:47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
	w := func(rpID string, origins ...string) func(*WebAuthn) {
		return func(x *WebAuthn) { x.RPID, x.RPOrigins = rpID, origins }
	}
	tests := []struct {
		name     string
		mutate   func(*WebAuthn)
		wantPath string // "" → valid
		wantMsg  string
	}{
		{"off", w(""), "", ""},
		{"domain", w("example.com", "https://example.com"), "", ""},
		{"subdomain origin and port", w("example.com", "https://app.example.com:8443", "https://example.com"), "", ""},
		{"rp id is a subdomain", w("id.example.co.uk", "https://id.example.co.uk"), "", ""},
		{"android origin", w("example.com", "https://example.com", android), "", ""},
		{"localhost", w("localhost", "https://localhost:8443", "http://localhost:3000"), "", ""},
		{"origins without rp id", w("", "https://example.com"), "identity.webauthn.rp_id", "is required"},
		{"public suffix", w("co.uk", "https://co.uk"), "identity.webauthn.rp_id", "registrable"},
		{"tld", w("com", "https://com"), "identity.webauthn.rp_id", "registrable"},
		{"ip", w("127.0.0.1", "https://127.0.0.1"), "identity.webauthn.rp_id", "registrable"},
		{"scheme in rp id", w("https://example.com", "https://example.com"), "identity.webauthn.rp_id", "registrable"},
		{"upper case", w("Example.com", "https://example.com"), "identity.webauthn.rp_id", "registrable"},
		{"port in rp id", w("example.com:443", "https://example.com"), "identity.webauthn.rp_id", "registrable"},
		{"no origins", w("example.com"), "identity.webauthn.rp_origins", "at least one"},
		{"http origin", w("example.com", "http://example.com"), "identity.webauthn.rp_origins[0]", "https"},
		{"http localhost for a domain", w("example.com", "https://example.com", "http://localhost"), "identity.webauthn.rp_origins[1]", "https"},
		{"foreign origin", w("example.com", "https://example.org"), "identity.webauthn.rp_origins[0]", "subdomain"},
		{"suffix trick", w("example.com", "https://evilexample.com"), "identity.webauthn.rp_origins[0]", "subdomain"},
		{"origin with path", w("example.com", "https://example.com/app"), "identity.webauthn.rp_origins[0]", "no user, path"},
		{"duplicate origin", w("example.com", "https://example.com", "https://example.com"), "identity.webauthn.rp_origins[1]", "duplicate"},
		{"android only", w("example.com", android), "identity.webauthn.rp_origins", "at least one https"},
		{"bad android hash", w("example.com", "https://example.com", "android:apk-key-hash:abc"), "identity.webauthn.rp_origins[1]", "SHA-256"},
		{"other opaque origin", w("example.com", "https://example.com", "ios:bundle-id:com.example"), "identity.webauthn.rp_origins[1]", "not an origin"},
		{"timeout too short", func(x *WebAuthn) {
			*x = WebAuthn{RPID: "example.com", RPOrigins: []string{"https://example.com"}, RPDisplayName: "x", Timeout: Duration(time.Second)}
		}, "identity.webauthn.timeout", "at least"},
		{"no display name", func(x *WebAuthn) { w("example.com", "https://example.com")(x); x.RPDisplayName = "" }, "identity.webauthn.rp_display_name", "1 to 64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tc.mutate(&c.Identity.WebAuthn)
			ps := c.Validate()
			if tc.wantPath == "" {
				if len(ps) != 0 {
					t.Fatalf("problems: %v", Problems(ps))
				}
				return
			}
			if len(ps) != 1 || ps[0].Path != tc.wantPath || !strings.Contains(ps[0].Message, tc.wantMsg) {
				t.Fatalf("problems %v, want one at %s containing %q", Problems(ps), tc.wantPath, tc.wantMsg)
			}
		})
	}
}
