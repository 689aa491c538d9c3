package social

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
)

const (
	// maxStateLen bounds the app's state and nonce: they are stored and
	// echoed, and no real client needs more.
	maxStateLen = 512
)

var (
	// pkceRe is RFC 7636 §4.1/§4.2: 43 to 128 unreserved characters. An S256
	// challenge is base64url of 32 bytes (43 characters); verifiers may be longer.
	pkceRe = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)
	// vscharRe is RFC 6749 Appendix A.5's VSCHAR, the alphabet of state.
	vscharRe = regexp.MustCompile(`^[\x20-\x7E]+$`)
)

// ValidVerifier reports whether v has the shape of a PKCE code_verifier.
func ValidVerifier(v string) bool { return pkceRe.MatchString(v) }

// validChallenge: an S256 challenge is the base64url (unpadded) SHA-256 of
// the verifier — exactly 43 characters of the base64url alphabet.
func validChallenge(c string) bool {
	if len(c) != 43 || !pkceRe.MatchString(c) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil
}

func validState(s string) bool { return len(s) <= maxStateLen && vscharRe.MatchString(s) }

// s256 is RFC 7636 §4.2: BASE64URL(SHA256(ASCII(verifier))).
func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// codeID is the store id of a random code or state: only its hash is kept,
// so a read of the database yields nothing that can be redeemed.
func codeID(kind, code string) string {
	h := sha256.Sum256([]byte(kind + "\x00" + code))
	return hex.EncodeToString(h[:])
}

// allowedRedirect reports whether uri is one of the app's registered
// redirect URIs. The comparison is exact (RFC 9700 §4.1.3), with one
// exception: a registered loopback URI without a port (http://127.0.0.1/cb)
// matches that URI with any port, because native apps listening on the
// loopback interface get an ephemeral port from the OS (RFC 8252 §7.3). A
// registered URI with a port matches only that port.
func allowedRedirect(allowed []string, uri string) bool {
	for _, a := range allowed {
		if a == uri {
			return true
		}
	}
	portless, ok := stripLoopbackPort(uri)
	if !ok {
		return false
	}
	for _, a := range allowed {
		if a == portless {
			return true
		}
	}
	return false
}

// stripLoopbackPort returns uri without its port when it is an http URI on a
// loopback IP literal with an explicit numeric port.
func stripLoopbackPort(uri string) (string, bool) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" || strings.Contains(uri, "#") {
		return "", false
	}
	host, port := u.Hostname(), u.Port()
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" || !(a == netip.MustParseAddr("127.0.0.1") || a == netip.IPv6Loopback()) || port == "" {
		return "", false
	}
	prefix := "http://" + u.Host
	if !strings.HasPrefix(uri, prefix) {
		return "", false
	}
	literal := host
	if a.Is6() {
		literal = "[" + host + "]"
	}
	return "http://" + literal + uri[len(prefix):], true
}

// withParams returns the app's redirect URI with params added to its query
// (an existing query is kept, RFC 6749 §3.1.2).
func withParams(redirectURI string, params url.Values) string {
	u, err := url.Parse(redirectURI)
	if err != nil {
		// Unreachable: only allow-listed URIs, validated at start-up, get here.
		return redirectURI
	}
	q := u.Query()
	for k, vs := range params {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}
