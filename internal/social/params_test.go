package social

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

func TestAllowedRedirect(t *testing.T) {
	t.Parallel()
	allowed := []string{
		"com.example.app:/oauth2redirect",
		"https://app.example.com/cb",
		"http://127.0.0.1/cb",
		"http://[::1]/cb",
		"http://127.0.0.1:8080/fixed",
	}
	for _, tc := range []struct {
		uri  string
		want bool
	}{
		{"com.example.app:/oauth2redirect", true},
		{"https://app.example.com/cb", true},
		{"http://127.0.0.1/cb", true},
		{"http://127.0.0.1:51004/cb", true}, // RFC 8252 §7.3: any port
		{"http://[::1]:61023/cb", true},
		{"http://127.0.0.1:8080/fixed", true},
		// Everything else is exact.
		{"http://127.0.0.1:8081/fixed", false}, // registered with a port: only that port
		{"http://127.0.0.1/fixed", false},
		{"com.example.app:/oauth2redirect/", false},
		{"com.example.app:/oauth2redirect?x=1", false},
		{"COM.EXAMPLE.APP:/oauth2redirect", false},
		{"https://app.example.com/cb/", false},
		{"https://app.example.com/CB", false},
		{"https://app.example.com:443/cb", false},
		{"https://app.example.com/cb#frag", false},
		{"https://app.example.com.evil.example/cb", false},
		{"https://evil.example/cb?https://app.example.com/cb", false},
		{"http://localhost:51004/cb", false}, // RFC 8252 §8.3
		{"http://127.0.0.2:51004/cb", false},
		{"http://127.0.0.1:51004/cb2", false},
		{"http://127.0.0.1:51004/cb?x=1", false},
		{"http://127.0.0.1:51004/cb#f", false},
		{"http://user@127.0.0.1:51004/cb", false},
		{"http://127.0.0.1:/cb", false},
		{"https://127.0.0.1:51004/cb", false},
		{"http://[::ffff:127.0.0.1]:5/cb", false},
		{"http://[::1%25lo]:5/cb", false},
		{"HTTP://127.0.0.1:5/cb", false},
		{"", false},
	} {
		if got := allowedRedirect(allowed, tc.uri); got != tc.want {
			t.Errorf("allowedRedirect(%q) = %v, want %v", tc.uri, got, tc.want)
		}
	}
}

// FuzzAllowedRedirect: whatever the input, an allowed URI is either one of
// the registered URIs byte for byte, or a loopback http URI whose only
// difference from a registered port-less one is its port.
func FuzzAllowedRedirect(f *testing.F) {
	allowed := []string{"com.example.app:/cb", "http://127.0.0.1/cb", "http://[::1]/cb"}
	for _, s := range []string{
		"com.example.app:/cb", "http://127.0.0.1:1/cb", "http://[::1]:65535/cb", "http://127.0.0.1:1/cb/../cb",
		"http://127.0.0.1:1@evil/cb", "http://127.0.0.1:1%2F@evil/cb", "http://127.0.0.1:80:80/cb", "http://127.0.0.1:1/cb#",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		if !allowedRedirect(allowed, uri) {
			return
		}
		for _, a := range allowed {
			if a == uri {
				return
			}
		}
		u, err := url.Parse(uri)
		if err != nil || u.Scheme != "http" || u.Port() == "" || u.User != nil || u.Fragment != "" || u.RawQuery != "" {
			t.Fatalf("allowed %q", uri)
		}
		if u.Path != "/cb" || (u.Hostname() != "127.0.0.1" && u.Hostname() != "::1") {
			t.Fatalf("allowed %q (host %q path %q)", uri, u.Hostname(), u.Path)
		}
	})
}

func TestPKCE(t *testing.T) {
	t.Parallel()
	// RFC 7636 Appendix B.
	if got := s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatalf("S256 = %s", got)
	}
	for _, tc := range []struct {
		c    string
		want bool
	}{
		{"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", true},
		{"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c", false},   // 42
		{"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cMA", false}, // 44: not a SHA-256
		{"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM", false},  // base64, not base64url
		{strings.Repeat("~", 43), false},
		{"", false},
	} {
		if got := validChallenge(tc.c); got != tc.want {
			t.Errorf("validChallenge(%q) = %v", tc.c, got)
		}
	}
	for _, tc := range []struct {
		v    string
		want bool
	}{
		{"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", true},
		{strings.Repeat("a", 43), true},
		{strings.Repeat("a.~_-", 25) + "aaa", true}, // 128
		{strings.Repeat("a", 42), false},
		{strings.Repeat("a", 129), false},
		{strings.Repeat("a", 42) + "+", false},
		{strings.Repeat("a", 42) + " ", false},
	} {
		if got := ValidVerifier(tc.v); got != tc.want {
			t.Errorf("ValidVerifier(%q) = %v", tc.v, got)
		}
	}
}

func TestState(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"abc", true},
		{"a b~!", true},
		{strings.Repeat("s", maxStateLen), true},
		{strings.Repeat("s", maxStateLen+1), false},
		{"", false},
		{"tab\t", false},
		{"é", false},
	} {
		if got := validState(tc.s); got != tc.want {
			t.Errorf("validState(%q) = %v", tc.s, got)
		}
	}
}

func TestEmailVerifiedClaim(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		`{"email_verified":true}`:    true,
		`{"email_verified":"true"}`:  true, // Apple
		`{"email_verified":false}`:   false,
		`{"email_verified":"false"}`: false,
		`{"email_verified":"yes"}`:   false,
		`{"email_verified":1}`:       false,
		`{}`:                         false,
	} {
		var c claims
		if err := json.Unmarshal([]byte(in), &c); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if bool(c.EmailVerified) != want {
			t.Errorf("%s → %v, want %v", in, c.EmailVerified, want)
		}
	}
}

func TestWithParams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ base, want string }{
		{"com.example.app:/cb", "com.example.app:/cb?code=c&state=s"},
		{"https://app.example.com/cb?keep=1", "https://app.example.com/cb?code=c&keep=1&state=s"},
		{"http://127.0.0.1:5000/cb", "http://127.0.0.1:5000/cb?code=c&state=s"},
	} {
		if got := withParams(tc.base, url.Values{"code": {"c"}, "state": {"s"}}); got != tc.want {
			t.Errorf("withParams(%q) = %q, want %q", tc.base, got, tc.want)
		}
	}
}

func TestCodeIDIsAHash(t *testing.T) {
	t.Parallel()
	id := codeID("oidc_code", "secret-code")
	if strings.Contains(id, "secret") || len(id) != 64 || id == codeID("oidc_state", "secret-code") {
		t.Fatalf("code id %q", id)
	}
}
