package config

import (
	"encoding/base64"
	"net"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"
)

// androidOriginPrefix is the origin Android's Credential Manager puts in
// clientDataJSON for a native app: the base64url SHA-256 of its signing
// certificate.
const androidOriginPrefix = "android:apk-key-hash:"

// webauthn checks identity.webauthn. Empty rp_id turns passkeys off, and then
// nothing else may be set.
func (v *validator) webauthn(c *Config) {
	const p = "identity.webauthn"
	w := &c.Identity.WebAuthn
	if w.RPID == "" {
		if len(w.RPOrigins) > 0 {
			v.add(p+".rp_id", "is required when rp_origins are set (empty rp_id turns passkeys off)")
		}
		return
	}
	if !validRPID(w.RPID) {
		// The origins are judged against the rp id: with a wrong one their
		// problems would only be echoes of this one.
		v.add(p+".rp_id", "%q must be a registrable domain name (lower case, no scheme, port or path; not a public suffix or an IP address) or \"localhost\"", clip(w.RPID))
		return
	}
	if w.RPDisplayName == "" || len(w.RPDisplayName) > 64 {
		v.add(p+".rp_display_name", "must be 1 to 64 bytes")
	}
	v.durationRange(p+".timeout", w.Timeout, 30*time.Second, 10*time.Minute)
	if len(w.RPOrigins) == 0 {
		v.add(p+".rp_origins", "needs at least one origin when rp_id is set, e.g. https://%s", clip(w.RPID))
		return
	}
	web, bad := 0, 0
	seen := map[string]int{}
	for i, o := range w.RPOrigins {
		op := pathIndex(p+".rp_origins", i)
		if j, dup := seen[o]; dup {
			v.add(op, "duplicate of %s", pathIndex(p+".rp_origins", j))
			continue
		}
		seen[o] = i
		if strings.HasPrefix(o, androidOriginPrefix) {
			h, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(o, androidOriginPrefix))
			if err != nil || len(h) != 32 {
				bad++
				v.add(op, "an Android origin is android:apk-key-hash: followed by the unpadded base64url SHA-256 of the app's signing certificate (43 characters)")
			}
			continue
		}
		if reason := webOriginProblem(o, w.RPID); reason != "" {
			bad++
			v.add(op, "%q %s", clip(o), reason)
			continue
		}
		web++
	}
	if web == 0 && bad == 0 {
		v.add(p+".rp_origins", "needs at least one https origin (iOS apps use https://%s)", clip(w.RPID))
	}
}

// validRPID: "localhost", or a lower-case DNS name one label or more below a
// public suffix. An RP id is what the apps' associated domains name; a public
// suffix would let every site under it claim the credentials.
func validRPID(s string) bool {
	if s == "localhost" {
		return true
	}
	if s != strings.ToLower(s) || net.ParseIP(s) != nil || !validHostname(s) || strings.HasSuffix(s, ".") || !strings.Contains(s, ".") {
		return false
	}
	etld1, err := publicsuffix.EffectiveTLDPlusOne(s)
	return err == nil && etld1 != ""
}

// webOriginProblem says what is wrong with a web origin for rpID, or "".
func webOriginProblem(o, rpID string) string {
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return "is not an origin such as https://" + rpID
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "must be scheme://host[:port] only (no user, path, query or fragment)"
	}
	host := u.Hostname()
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && host == "localhost" && rpID == "localhost":
	default:
		return "must use https (http only for http://localhost with rp_id localhost)"
	}
	if host != rpID && !strings.HasSuffix(host, "."+rpID) {
		return "must be on the rp_id " + rpID + " or a subdomain of it"
	}
	return ""
}
