package config

import (
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// OIDC is social login: sign-in through OpenID Connect providers for native
// apps (RFC 8252). See docs/identity.md ("Social login").
type OIDC struct {
	// Providers are the providers an app may send its users to. None: social
	// login is off and /auth/v1/oidc/* answers 404.
	Providers []OIDCProvider `yaml:"providers"`
}

// OIDCProvider is one OpenID Connect provider (Google, Apple, Microsoft, a
// company's own IdP, ...). Gatehouse is the provider's client; its callback
// URL, to register at the provider, is <issuer>/auth/v1/oidc/<name>/callback.
type OIDCProvider struct {
	// Name is the path segment in /auth/v1/oidc/<name>/...: lower-case
	// letters, digits, '_' and '-', at most 64. Required, unique.
	Name string `yaml:"name"`
	// Issuer is the provider's issuer URL; discovery reads
	// <issuer>/.well-known/openid-configuration. https, or http on a
	// loopback IP literal (development only). Required.
	Issuer string `yaml:"issuer"`
	// ClientID is Gatehouse's client id at the provider. Required.
	ClientID string `yaml:"client_id"`
	// ClientSecretEnv names the environment variable holding the client
	// secret. The secret itself is never written in this file.
	ClientSecretEnv string `yaml:"client_secret_env"`
	// ClientSecretFile is a file holding the client secret (trailing
	// newlines are ignored). At most one of client_secret_env and
	// client_secret_file; neither means a public client (client_id only).
	ClientSecretFile string `yaml:"client_secret_file"`
	// Scopes asked of the provider. Default [openid, email, profile]; must
	// contain openid.
	Scopes []string `yaml:"scopes"`
	// RedirectURIs are the app's redirect URIs, matched exactly: a private-use
	// scheme with a reverse-domain name (com.example.app:/oauth2redirect), a
	// claimed https URL, or a loopback http://127.0.0.1/... or http://[::1]/...
	// A loopback URI written without a port matches any port (RFC 8252 §7.3);
	// with a port, only that port. At least one.
	RedirectURIs []string `yaml:"redirect_uris"`
	// AllowLinkByEmail lets a first sign-in with this provider join an
	// existing account with the same email address — only when the provider
	// says the address is verified. false: such a sign-in is refused. Default true.
	AllowLinkByEmail *bool `yaml:"allow_link_by_email"`
	// TokenAuthMethod is how Gatehouse authenticates at the provider's token
	// endpoint: "client_secret_basic", "client_secret_post", or "auto" (try
	// basic, then post, and remember what worked). Default "auto".
	TokenAuthMethod string `yaml:"token_auth_method"`
}

// LinkByEmail reports AllowLinkByEmail with its default.
func (p OIDCProvider) LinkByEmail() bool { return p.AllowLinkByEmail == nil || *p.AllowLinkByEmail }

var (
	oidcNameRe = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)
	// scopeRe is RFC 6749 §3.3's scope-token (NQCHAR).
	scopeRe          = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)
	tokenAuthMethods = []string{"auto", "client_secret_basic", "client_secret_post"}
	// customSchemeRe is a private-use URI scheme in reverse-domain form
	// (RFC 8252 §7.1): at least one dot, so "javascript", "data" or "file"
	// can never be one.
	customSchemeRe = regexp.MustCompile(`^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+$`)
)

func (o *OIDC) applyDefaults() {
	for i := range o.Providers {
		p := &o.Providers[i]
		if len(p.Scopes) == 0 {
			p.Scopes = []string{"openid", "email", "profile"}
		}
		if p.AllowLinkByEmail == nil {
			p.AllowLinkByEmail = ptr(true)
		}
		if p.TokenAuthMethod == "" {
			p.TokenAuthMethod = "auto"
		}
	}
}

func (o OIDC) clone() OIDC {
	if o.Providers == nil {
		return o
	}
	ps := make([]OIDCProvider, len(o.Providers))
	for i, p := range o.Providers {
		p.Scopes = slices.Clone(p.Scopes)
		p.RedirectURIs = slices.Clone(p.RedirectURIs)
		p.AllowLinkByEmail = clonePtr(p.AllowLinkByEmail)
		ps[i] = p
	}
	return OIDC{Providers: ps}
}

func (v *validator) oidc(c *Config) {
	seen := map[string]int{}
	for i, p := range c.Identity.OIDC.Providers {
		path := pathIndex("identity.oidc.providers", i)
		switch {
		case p.Name == "":
			v.add(path+".name", "is required")
		case !oidcNameRe.MatchString(p.Name):
			v.add(path+".name", "%q must be 1 to 64 lower-case letters, digits, '_' or '-' (it is a URL path segment)", clip(p.Name))
		default:
			if j, dup := seen[p.Name]; dup {
				v.add(path+".name", "duplicate of %s", pathIndex("identity.oidc.providers", j))
			} else {
				seen[p.Name] = i
			}
		}
		v.providerIssuer(path+".issuer", p.Issuer)
		switch {
		case p.ClientID == "":
			v.add(path+".client_id", "is required")
		case len(p.ClientID) > 512:
			v.add(path+".client_id", "must be at most 512 bytes")
		}
		if p.ClientSecretEnv != "" && p.ClientSecretFile != "" {
			v.add(path, "set at most one of client_secret_env and client_secret_file")
		}
		if p.ClientSecretEnv != "" && !envNameRe.MatchString(p.ClientSecretEnv) {
			v.add(path+".client_secret_env", "must be an environment variable name, got %q", clip(p.ClientSecretEnv))
		}
		if !slices.Contains(p.Scopes, "openid") {
			v.add(path+".scopes", "must contain openid")
		}
		for j, s := range p.Scopes {
			if !scopeRe.MatchString(s) {
				v.add(pathIndex(path+".scopes", j), "%q is not a valid scope", clip(s))
			}
		}
		if len(p.RedirectURIs) == 0 {
			v.add(path+".redirect_uris", "needs at least one of the app's redirect URIs")
		}
		uris := map[string]int{}
		for j, u := range p.RedirectURIs {
			up := pathIndex(path+".redirect_uris", j)
			if msg := appRedirectProblem(u); msg != "" {
				v.add(up, "%s (got %q)", msg, clip(u))
			}
			if k, dup := uris[u]; dup {
				v.add(up, "duplicate of %s", pathIndex(path+".redirect_uris", k))
			} else {
				uris[u] = j
			}
		}
		v.oneOf(path+".token_auth_method", p.TokenAuthMethod, tokenAuthMethods)
	}
}

// providerIssuer: the provider's issuer is compared as an exact string with
// the "iss" of its ID tokens and its discovery document, so it must be a plain
// URL. Plain http is allowed only on loopback (a provider run for development).
func (v *validator) providerIssuer(path, s string) {
	if s == "" {
		v.add(path, "is required")
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		v.add(path, "must be an absolute URL (got %q)", clip(s))
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		v.add(path, "must have no query, fragment or user info")
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackIP(u.Hostname()):
	default:
		v.add(path, "must be an https URL (http only on 127.0.0.1 or [::1]) (got %q)", clip(s))
	}
}

// appRedirectProblem says what is wrong with an app redirect URI, or "".
// RFC 8252 §7: private-use schemes in reverse-domain form, claimed https
// URLs, and loopback IP literals — never "localhost" (§8.3: it may resolve
// elsewhere) and never a fragment (RFC 6749 §3.1.2).
func appRedirectProblem(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return "must be an absolute URI"
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return "must not have a fragment"
	}
	if u.User != nil {
		return "must not have user info"
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return "an https redirect URI needs a host"
		}
	case "http":
		if !isLoopbackIP(u.Hostname()) {
			return "plain http is allowed only on the loopback IP literals 127.0.0.1 and [::1] (RFC 8252 §7.3; not localhost, §8.3)"
		}
	default:
		if !customSchemeRe.MatchString(u.Scheme) {
			return "a private-use scheme must be in reverse-domain form like com.example.app (RFC 8252 §7.1)"
		}
	}
	return ""
}

func isLoopbackIP(host string) bool {
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && (a == netip.MustParseAddr("127.0.0.1") || a == netip.IPv6Loopback())
}
