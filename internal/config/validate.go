package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits that Validate enforces. They are sanity bounds, not tuning advice.
const (
	maxBodyBytes      = 1 << 30 // 1 GiB
	minHeaderBytes    = 1 << 10 // 1 KiB
	maxHeaderBytes    = 1 << 20 // 1 MiB, net/http's own default ceiling
	maxAccessTTL      = time.Hour
	maxReuseLeeway    = 60 * time.Second
	minRotation       = time.Hour
	maxJWKSCacheTTL   = 24 * time.Hour
	minReloadInterval = time.Second
	minPasswordLength = 8
	minPasswordMax    = 64
	maxPasswordMax    = 4096
	minArgonMemoryKiB = 19456   // OWASP floor: 19 MiB
	maxArgonMemoryKiB = 1 << 20 // 1 GiB per hash
	minArgonIter      = 2
	maxArgonIter      = 100
	maxArgonThreads   = 64
	maxHashSlots      = 1024
)

var (
	// nameRe is the shape of upstream, plan, role and service names. Roles and
	// plans travel in JWT claims and in comma-separated Gatehouse-* headers, and a
	// service id is the user part of HTTP Basic credentials (split at the first
	// colon), so none may contain spaces, commas, colons or control characters.
	nameRe    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	roleRe    = nameRe
	paramRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

var (
	kekSchemes = []string{"file", "env", "hashivault", "awskms", "gcpkms", "azurekeyvault", "base64key"}
	// Only methods an API route can mean. TRACE (cross-site tracing) and CONNECT
	// (tunnelling) are never proxied.
	httpMethods  = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	permissions  = []string{"introspect", "admin", "transit"}
	logLevels    = []string{"debug", "info", "warn", "error"}
	logFormats   = []string{"json", "text"}
	tlsVersions  = []string{"1.2", "1.3"}
	challenges   = []string{ChallengeHTTP01, ChallengeTLSALPN01}
	algorithms   = []string{"ES256", "EdDSA"}
	accessLevels = []string{"", AccessPublic, AccessAuthenticated}
)

// Validate reports every problem with the configuration, each with its YAML path.
// It is pure: no I/O, no environment, no side effects; files named by the config
// (certificates, OpenAPI documents) are not opened. Zero values that mean "the
// default" (see ApplyDefaults) are accepted. Lines are attached by Load/Parse.
func (c *Config) Validate() []Problem {
	v := &validator{}
	v.top(c)
	v.server(c)
	v.admin(c)
	v.tokens(c)
	v.keys(c)
	v.identity(c)
	v.oidc(c)
	v.audit(c)
	v.log(c)
	v.services(c)
	v.limits(c)
	v.externalIssuers(c)
	v.plans(c)
	v.upstreams(c)
	v.routes(c)
	v.monitor(c)
	return v.ps
}

// ValidateWith runs Validate and then each extra check, returning all problems.
func (c *Config) ValidateWith(checks ...Check) []Problem {
	ps := c.Validate()
	for _, check := range checks {
		if check != nil {
			ps = append(ps, check(c)...)
		}
	}
	return ps
}

type validator struct{ ps []Problem }

func (v *validator) add(path, format string, args ...any) {
	v.ps = append(v.ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// oneOf checks that s is one of allowed.
func (v *validator) oneOf(path, s string, allowed []string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	shown := make([]string, 0, len(allowed))
	for _, a := range allowed {
		if a != "" {
			shown = append(shown, strconv.Quote(a))
		}
	}
	v.add(path, "must be %s (got %q)", orList(shown), clip(s))
	return false
}

func (v *validator) positive(path string, d Duration) {
	if d <= 0 {
		v.add(path, "must be positive (got %s)", d)
	}
}

// durationRange checks lo <= d <= hi.
func (v *validator) durationRange(path string, d Duration, lo, hi time.Duration) {
	switch {
	case d.D() < lo:
		v.add(path, "must be at least %s (got %s)", FormatDuration(lo), d)
	case d.D() > hi:
		v.add(path, "must be at most %s (got %s)", FormatDuration(hi), d)
	}
}

func (v *validator) intRange(path string, n, lo, hi int64) {
	switch {
	case n < lo:
		v.add(path, "must be at least %d (got %d)", lo, n)
	case n > hi:
		v.add(path, "must be at most %d (got %d)", hi, n)
	}
}

// names checks a list of names against re, rejecting empties and duplicates.
func (v *validator) names(path string, list []string, re *regexp.Regexp, what string) {
	seen := map[string]int{}
	for i, s := range list {
		p := pathIndex(path, i)
		switch {
		case s == "":
			v.add(p, "must not be empty")
		case !re.MatchString(s):
			v.add(p, "%q is not a valid %s (letters, digits, '_', '.', '-'; starting with a letter or digit)", clip(s), what)
		}
		if j, dup := seen[s]; dup {
			v.add(p, "duplicate of %s", pathIndex(path, j))
		} else {
			seen[s] = i
		}
	}
}

func (v *validator) top(c *Config) {
	v.issuer(c.Issuer)

	// Store, cache and KEK URLs can carry credentials: problems name their scheme,
	// never echo the value.
	switch {
	case c.Store == "":
		v.add("store", "is required (sqlite://PATH or postgres://...; or set GATEHOUSE_STORE)")
	case strings.HasPrefix(c.Store, "sqlite://"):
		if strings.TrimPrefix(c.Store, "sqlite://") == "" {
			v.add("store", "sqlite:// needs a file path, e.g. sqlite:///var/lib/gatehouse/gatehouse.db")
		}
	case strings.HasPrefix(c.Store, "postgres://"), strings.HasPrefix(c.Store, "postgresql://"):
		if _, err := url.Parse(c.Store); err != nil {
			v.add("store", "is not a valid postgres URL")
		}
	default:
		v.add("store", "must start with sqlite:// or postgres:// (got %s)", describeSecret(c.Store))
	}

	switch {
	case c.Cache == "memory":
	case strings.HasPrefix(c.Cache, "redis://"), strings.HasPrefix(c.Cache, "rediss://"):
		if _, err := url.Parse(c.Cache); err != nil {
			v.add("cache", "is not a valid redis URL")
		}
	default:
		v.add("cache", "must be \"memory\" or a redis:// or rediss:// URL (got %s)", describe(c.Cache))
	}

	v.kek(c.KEK)
}

// issuer checks the token issuer. Verifiers compare "iss" as an exact string and
// build discovery URLs by appending to it, so it must be a canonical https URL.
func (v *validator) issuer(s string) {
	if s == "" {
		v.add("issuer", "is required: the public https URL of this server, e.g. https://api.example.com (or set GATEHOUSE_ISSUER)")
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		v.add("issuer", "is not a valid URL")
	case u.Scheme != "https":
		v.add("issuer", "must be an https:// URL: Gatehouse serves HTTPS only (got scheme %q)", u.Scheme)
	case u.Opaque != "" || u.Host == "":
		v.add("issuer", "must be an absolute URL with a host, e.g. https://api.example.com")
	case u.User != nil:
		v.add("issuer", "must not contain user information")
	case u.RawQuery != "" || u.ForceQuery:
		v.add("issuer", "must not have a query")
	case u.Fragment != "" || strings.Contains(s, "#"):
		v.add("issuer", "must not have a fragment")
	case strings.HasSuffix(u.Path, "/"):
		v.add("issuer", "must not end with \"/\" (tokens carry it verbatim and verifiers compare exactly)")
	}
}

func (v *validator) kek(s string) {
	if s == "" {
		v.add("kek", "is required: file://PATH, env://VAR or a KMS URL (or set GATEHOUSE_KEK)")
		return
	}
	sch, rest, ok := strings.Cut(s, "://")
	if !ok || !contains(kekSchemes, sch) {
		v.add("kek", "must be a file://, env://, hashivault://, awskms://, gcpkms://, azurekeyvault:// or base64key:// URL (got %s)", describeSecret(s))
		return
	}
	switch {
	case rest == "":
		v.add("kek", "%s:// needs a value after the scheme", sch)
	case sch == "env" && !envNameRe.MatchString(rest):
		v.add("kek", "env:// must name an environment variable (letters, digits, '_'), e.g. env://GATEHOUSE_KEK_VALUE")
	}
}

func (v *validator) server(c *Config) {
	s := &c.Server
	v.listen("server.listen", s.Listen)
	if s.HTTPListen != "" && v.listen("server.http_listen", s.HTTPListen) {
		if s.HTTPListen == s.Listen {
			v.add("server.http_listen", "must differ from server.listen (%s)", s.Listen)
		} else if !c.Admin.Disabled && s.HTTPListen == c.Admin.Listen {
			v.add("server.http_listen", "must differ from admin.listen (%s)", c.Admin.Listen)
		}
	}
	v.tls(c)
	v.intRange("server.max_body_bytes", s.MaxBodyBytes, 1, maxBodyBytes)
	v.intRange("server.max_connections", int64(s.MaxConnections), 1, 1_000_000)
	v.intRange("server.max_header_bytes", int64(s.MaxHeaderBytes), minHeaderBytes, maxHeaderBytes)
	v.positive("server.read_header_timeout", s.ReadHeaderTimeout)
	v.positive("server.read_timeout", s.ReadTimeout)
	v.positive("server.write_timeout", s.WriteTimeout)
	v.positive("server.idle_timeout", s.IdleTimeout)
	v.positive("server.shutdown_timeout", s.ShutdownTimeout)
	if s.ReadTimeout > 0 && s.ReadHeaderTimeout > s.ReadTimeout {
		v.add("server.read_header_timeout", "must not exceed server.read_timeout (%s > %s)", s.ReadHeaderTimeout, s.ReadTimeout)
	}
	for i, cidr := range s.TrustedProxies {
		p := pathIndex("server.trusted_proxies", i)
		pre, err := netip.ParsePrefix(cidr)
		switch {
		case err != nil:
			if _, ipErr := netip.ParseAddr(cidr); ipErr == nil {
				v.add(p, "%q is an address, not a CIDR: write %s/%d for one host", clip(cidr), cidr, hostBits(cidr))
			} else {
				v.add(p, "%q is not a CIDR such as 10.0.0.0/8", clip(cidr))
			}
		case pre.Bits() == 0:
			// Trusting every peer as a proxy lets any client choose its own IP
			// through X-Forwarded-For, defeating per-IP limits, lockout and bans.
			v.add(p, "must not trust every address (%s): any client could then forge its IP", cidr)
		case pre.Masked() != pre:
			v.add(p, "has host bits set; did you mean %s?", pre.Masked())
		}
	}
}

// tls checks where the certificate comes from and the pin set.
func (v *validator) tls(c *Config) {
	t := &c.Server.TLS
	a := &t.ACME
	if a.On() {
		if t.CertFile != "" {
			v.add("server.tls.cert_file", "must be empty when server.tls.acme.domains is set: the certificate comes from ACME")
		}
		if t.KeyFile != "" {
			v.add("server.tls.key_file", "must be empty when server.tls.acme.domains is set: the certificate comes from ACME")
		}
	} else {
		if t.CertFile == "" {
			v.add("server.tls.cert_file", "is required: Gatehouse never serves plain HTTP")
		}
		if t.KeyFile == "" {
			v.add("server.tls.key_file", "is required: Gatehouse never serves plain HTTP")
		}
	}
	v.oneOf("server.tls.min_version", t.MinVersion, tlsVersions)
	v.acme(c)
	for i, h := range t.Pins.Hosts {
		if !validHostname(strings.TrimPrefix(h, "*.")) {
			v.add(pathIndex("server.tls.pins.hosts", i), "%q is not a host name", clip(h))
		}
	}
	for i, p := range t.Pins.Published {
		if b, err := base64.StdEncoding.Strict().DecodeString(p); err != nil || len(b) != 32 {
			v.add(pathIndex("server.tls.pins.published", i), "%q is not a SHA-256 SPKI pin (base64 of 32 bytes, as `gatehouse pins` prints)", clip(p))
		}
	}
	if t.Pins.Validity != 0 {
		v.durationRange("server.tls.pins.validity", t.Pins.Validity, day, 365*day)
	}
}

func (v *validator) acme(c *Config) {
	a := &c.Server.TLS.ACME
	const p = "server.tls.acme"
	if !a.On() {
		if a.Email != "" || a.CA != "" || a.CARoots != "" || a.Storage != "" || a.ReuseKey || len(a.Challenges) > 0 {
			v.add(p+".domains", "is required to turn ACME on (other %s keys are set)", p)
		}
		return
	}
	seen := map[string]bool{}
	for i, d := range a.Domains {
		dp := pathIndex(p+".domains", i)
		switch {
		case strings.Contains(d, "*"):
			// HTTP-01 and TLS-ALPN-01 cannot prove control of a whole zone.
			v.add(dp, "wildcard names need the DNS-01 challenge, which Gatehouse does not run (got %q)", clip(d))
		case net.ParseIP(d) != nil:
			v.add(dp, "must be a DNS name, not an IP address (got %q)", clip(d))
		case !validHostname(d) || !strings.Contains(strings.TrimSuffix(d, "."), ".") && d != "localhost":
			v.add(dp, "%q is not a fully qualified host name", clip(d))
		case seen[strings.ToLower(d)]:
			v.add(dp, "duplicate domain %q", clip(d))
		}
		seen[strings.ToLower(d)] = true
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t\r\n<>")) {
		v.add(p+".email", "is not an email address (got %q)", clip(a.Email))
	}
	if a.CA != "" {
		u, err := url.Parse(a.CA)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			v.add(p+".ca", "must be the https:// URL of an ACME directory, e.g. https://acme-v02.api.letsencrypt.org/directory")
		}
	}
	if a.Storage == "" {
		v.add(p+".storage", "is required: a directory for the ACME account, keys and certificates (shared by replicas)")
	}
	dup := map[string]bool{}
	for i, ch := range a.Challenges {
		cp := pathIndex(p+".challenges", i)
		if !v.oneOf(cp, ch, challenges) {
			continue
		}
		if dup[ch] {
			v.add(cp, "duplicate challenge %q", ch)
		}
		dup[ch] = true
		if ch == ChallengeHTTP01 && c.Server.HTTPListen == "" {
			v.add(cp, "http-01 is answered on server.http_listen, which is not set (the CA connects to port 80)")
		}
	}
	if len(a.Challenges) == 0 {
		v.add(p+".challenges", "must list at least one of %q, %q", ChallengeHTTP01, ChallengeTLSALPN01)
	}
}

func hostBits(ip string) int {
	if a, err := netip.ParseAddr(ip); err == nil && a.Is6() && !a.Is4In6() {
		return 128
	}
	return 32
}

// listen checks a host:port listen address with a numeric port.
func (v *validator) listen(path, addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(path, "must be host:port, e.g. 127.0.0.1:8443 or :8443 (got %q)", clip(addr))
		return false
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		v.add(path, "port must be a number from 0 to 65535 (got %q)", clip(port))
		return false
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && !validHostname(host) {
			v.add(path, "host %q is neither an IP address nor a host name", clip(host))
			return false
		}
	}
	return true
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func (v *validator) admin(c *Config) {
	if c.Admin.Disabled || c.Admin.Listen == "" {
		return
	}
	if v.listen("admin.listen", c.Admin.Listen) && c.Admin.Listen == c.Server.Listen {
		v.add("admin.listen", "must differ from server.listen (%s)", c.Server.Listen)
	}
}

func (v *validator) tokens(c *Config) {
	t := &c.Tokens
	if len(t.Audience) == 0 {
		v.add("tokens.audience", "must list at least one audience")
	}
	seen := map[string]int{}
	for i, a := range t.Audience {
		p := pathIndex("tokens.audience", i)
		if strings.TrimSpace(a) == "" {
			v.add(p, "must not be empty")
		}
		if j, dup := seen[a]; dup {
			v.add(p, "duplicate of %s", pathIndex("tokens.audience", j))
		} else {
			seen[a] = i
		}
	}
	v.oneOf("tokens.algorithm", t.Algorithm, algorithms)
	if t.AccessTTL <= 0 {
		v.add("tokens.access_ttl", "must be positive (got %s)", t.AccessTTL)
	} else if t.AccessTTL.D() > maxAccessTTL {
		// Access tokens cannot be recalled once issued except through the sid
		// revocation list; a short life bounds the damage of a stolen token.
		v.add("tokens.access_ttl", "must be at most %s (got %s)", FormatDuration(maxAccessTTL), t.AccessTTL)
	}
	v.positive("tokens.refresh_idle_ttl", t.RefreshIdleTTL)
	v.positive("tokens.refresh_absolute_ttl", t.RefreshAbsoluteTTL)
	if t.RefreshIdleTTL > t.RefreshAbsoluteTTL && t.RefreshAbsoluteTTL > 0 {
		v.add("tokens.refresh_idle_ttl", "must not exceed tokens.refresh_absolute_ttl (%s > %s)", t.RefreshIdleTTL, t.RefreshAbsoluteTTL)
	}
	if t.RefreshAbsoluteTTL > 0 && t.AccessTTL > t.RefreshAbsoluteTTL {
		v.add("tokens.access_ttl", "must not exceed tokens.refresh_absolute_ttl")
	}
	// The leeway exists for mobile clients that lose a refresh response; a longer
	// one widens the window in which a stolen refresh token goes unnoticed.
	v.durationRange("tokens.reuse_leeway", t.ReuseLeeway, 0, maxReuseLeeway)
	if t.Scope != "" {
		for _, tok := range strings.Split(t.Scope, " ") {
			if !validScopeToken(tok) {
				v.add("tokens.scope", "must be space-separated scope tokens (RFC 6749 §3.3), got %q", clip(t.Scope))
				break
			}
		}
	}
}

// validScopeToken reports whether s is an RFC 6749 scope-token:
// 1*( %x21 / %x23-5B / %x5D-7E ).
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func (v *validator) keys(c *Config) {
	k := &c.Keys
	if k.JWKSCacheTTL <= 0 {
		v.positive("keys.jwks_cache_ttl", k.JWKSCacheTTL)
	} else {
		v.durationRange("keys.jwks_cache_ttl", k.JWKSCacheTTL, 0, maxJWKSCacheTTL)
	}
	if k.ReloadInterval.D() < minReloadInterval {
		v.add("keys.reload_interval", "must be at least %s (got %s)", FormatDuration(minReloadInterval), k.ReloadInterval)
	}
	if k.RotationInterval != 0 {
		// A retiring key stays published for the longest token lifetime plus the
		// JWKS cache TTL; rotating faster than that would retire keys that still
		// verify live tokens.
		floor := max(minRotation, c.Tokens.AccessTTL.D()+k.JWKSCacheTTL.D())
		if k.RotationInterval.D() < floor {
			v.add("keys.rotation_interval", "must be 0 (no scheduled rotation) or at least %s, the larger of 1h and tokens.access_ttl + keys.jwks_cache_ttl (got %s)", FormatDuration(floor), k.RotationInterval)
		}
	}
}

func (v *validator) identity(c *Config) {
	id := &c.Identity
	pw := &id.Password
	v.intRange("identity.password.min_length", int64(pw.MinLength), minPasswordLength, maxPasswordMax)
	// NIST SP 800-63B: verifiers should permit at least 64 characters.
	v.intRange("identity.password.max_length", int64(pw.MaxLength), minPasswordMax, maxPasswordMax)
	if pw.MaxLength < pw.MinLength && pw.MinLength >= minPasswordLength && pw.MaxLength >= minPasswordMax {
		v.add("identity.password.max_length", "must be at least identity.password.min_length (%d < %d)", pw.MaxLength, pw.MinLength)
	}
	// The OWASP floor for argon2id (m=19 MiB, t=2, p=1); lower costs make offline
	// guessing of a leaked hash cheap.
	a := &pw.Argon2
	v.intRange("identity.password.argon2.memory_kib", int64(a.MemoryKiB), minArgonMemoryKiB, maxArgonMemoryKiB)
	v.intRange("identity.password.argon2.iterations", int64(a.Iterations), minArgonIter, maxArgonIter)
	v.intRange("identity.password.argon2.parallelism", int64(a.Parallelism), 1, maxArgonThreads)
	v.intRange("identity.password.max_concurrent_hashes", int64(pw.MaxConcurrentHashes), 0, maxHashSlots)
	v.positive("identity.password.hash_queue_timeout", pw.HashQueueTimeout)

	lo := &id.Lockout
	v.intRange("identity.lockout.account_failures", int64(lo.AccountFailures), 1, 1<<31-1)
	v.intRange("identity.lockout.ip_failures", int64(lo.IPFailures), 1, 1<<31-1)
	v.positive("identity.lockout.window", lo.Window)

	mf := &id.MFA
	switch {
	case mf.TOTPIssuer == "":
		v.add("identity.mfa.totp_issuer", "must not be empty")
	case len(mf.TOTPIssuer) > 64 || strings.Contains(mf.TOTPIssuer, ":") || !utf8.ValidString(mf.TOTPIssuer) || strings.IndexFunc(mf.TOTPIssuer, unicode.IsControl) >= 0:
		// A colon would split the otpauth label in authenticator apps.
		v.add("identity.mfa.totp_issuer", "must be at most 64 bytes of UTF-8 without a colon or control characters")
	}
	if d := mf.TokenTTL.D(); d < 30*time.Second || d > 30*time.Minute {
		v.add("identity.mfa.token_ttl", "must be between 30s and 30m (got %s)", d)
	}
	v.intRange("identity.mfa.max_attempts", int64(mf.MaxAttempts), 1, 10)
	v.intRange("identity.mfa.user_failures", int64(mf.UserFailures), 1, 100)
	v.positive("identity.mfa.window", mf.Window)

	switch {
	case id.DefaultPlan == "":
		v.add("identity.default_plan", "must not be empty")
	case !nameRe.MatchString(id.DefaultPlan):
		v.add("identity.default_plan", "%q is not a valid plan name", clip(id.DefaultPlan))
	case len(c.Plans) > 0 && !hasKey(c.Plans, id.DefaultPlan):
		v.add("identity.default_plan", "%q is not one of the plans (%s)", clip(id.DefaultPlan), shortList(sortedKeys(c.Plans)))
	}
	v.names("identity.default_roles", id.DefaultRoles, roleRe, "role name")
	v.webauthn(c)
	v.identityEmail(c)
}

func (v *validator) identityEmail(c *Config) {
	e := &c.Identity.Email
	if c.Identity.RequireVerifiedEmail && c.SMTP.Host == "" {
		v.add("identity.require_verified_email", "needs smtp.host: without mail nobody could verify an address")
	}
	for _, f := range []struct{ path, val string }{{"identity.email.verify_url", e.VerifyURL}, {"identity.email.reset_url", e.ResetURL}} {
		if f.val == "" {
			continue
		}
		u, err := url.Parse(f.val)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			v.add(f.path, "must be an absolute https URL (a universal / app link), got %q", clip(f.val))
		case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
			// The link carries a one-time secret.
			v.add(f.path, "must be https (http is accepted for loopback only)")
		case u.Fragment != "" || u.User != nil:
			v.add(f.path, "must have no fragment and no user info")
		}
	}
	v.durationRange("identity.email.code_ttl", e.CodeTTL, time.Minute, time.Hour)
	for _, f := range []struct{ path, val string }{{"identity.email.send_per_address", e.SendPerAddress}, {"identity.email.send_per_ip", e.SendPerIP}} {
		if _, err := ParseRate(f.val); err != nil {
			v.add(f.path, "%v", err)
		}
	}
	s := c.SMTP
	if s.Host == "" {
		return
	}
	v.intRange("smtp.port", int64(s.Port), 1, 65535)
	if v.oneOf("smtp.tls", s.TLS, emailTLS) && s.TLS == "none" && !isLoopbackHost(s.Host) {
		// One-time links and codes must not cross a network in clear.
		v.add("smtp.tls", `"none" is only allowed when smtp.host is a loopback address`)
	}
	if s.PasswordEnv != "" && !envNameRe.MatchString(s.PasswordEnv) {
		v.add("smtp.password_env", "must be an environment variable name, got %q", clip(s.PasswordEnv))
	}
	if s.Username != "" && s.PasswordEnv == "" {
		v.add("smtp.password_env", "is required with smtp.username")
	}
	if a, err := mail.ParseAddress(s.From); err != nil || strings.ContainsAny(s.From, "\r\n") || a.Address == "" {
		v.add("smtp.from", "must be an email address, got %q", clip(s.From))
	}
	v.durationRange("smtp.timeout", s.Timeout, time.Second, 5*time.Minute)
}

func (v *validator) audit(c *Config) {
	v.positive("audit.retention", c.Audit.Retention)
}

func (v *validator) log(c *Config) {
	v.oneOf("log.level", c.Log.Level, logLevels)
	v.oneOf("log.format", c.Log.Format, logFormats)
}

func (v *validator) services(c *Config) {
	seen := map[string]int{}
	for i, s := range c.Services {
		p := pathIndex("services", i)
		switch {
		case s.ID == "":
			v.add(p+".id", "is required")
		case !nameRe.MatchString(s.ID):
			// The id is the user part of HTTP Basic credentials, split at the first colon.
			v.add(p+".id", "%q is not a valid id (letters, digits, '_', '.', '-')", clip(s.ID))
		}
		if j, dup := seen[s.ID]; dup && s.ID != "" {
			v.add(p+".id", "duplicate of %s.id", pathIndex("services", j))
		} else {
			seen[s.ID] = i
		}
		switch {
		case s.SecretHash == "" && s.SecretEnv == "":
			v.add(p, "needs one of secret_hash or secret_env")
		case s.SecretHash != "" && s.SecretEnv != "":
			v.add(p, "set only one of secret_hash and secret_env")
		case s.SecretHash != "":
			if !strings.HasPrefix(s.SecretHash, "$argon2id$") || strings.Count(s.SecretHash, "$") != 5 {
				v.add(p+".secret_hash", "must be an argon2id PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash)")
			}
		default:
			if !envNameRe.MatchString(s.SecretEnv) {
				v.add(p+".secret_env", "must be an environment variable name (letters, digits, '_'), got %q", clip(s.SecretEnv))
			}
		}
		if len(s.Permissions) == 0 {
			v.add(p+".permissions", "must list at least one of \"introspect\", \"admin\", \"transit\"")
		}
		perms := map[string]bool{}
		for j, perm := range s.Permissions {
			pp := pathIndex(p+".permissions", j)
			if v.oneOf(pp, perm, permissions) && perms[perm] {
				v.add(pp, "duplicate permission %q", perm)
			}
			perms[perm] = true
		}
	}
}

// cors checks a route's cross-origin policy. Why "*" with credentials is
// refused: it would let any web page act as the signed-in user.
func (v *validator) cors(p string, c *CORS) {
	if len(c.AllowedOrigins) == 0 {
		v.add(p+".allowed_origins", "list at least one origin, e.g. https://app.example.com")
	}
	for j, o := range c.AllowedOrigins {
		op := pathIndex(p+".allowed_origins", j)
		if o == "*" {
			if len(c.AllowedOrigins) > 1 {
				v.add(op, "\"*\" must be the only origin")
			}
			if c.AllowCredentials {
				v.add(op, "\"*\" cannot be combined with allow_credentials: name the origins")
			}
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			v.add(op, "%q must be an origin: scheme://host[:port], no path", clip(o))
		}
	}
	for j, h := range c.AllowedHeaders {
		if h == "" || strings.ContainsAny(h, " ,:\r\n") {
			v.add(pathIndex(p+".allowed_headers", j), "%q is not a header name", clip(h))
		}
	}
	if c.MaxAge < 0 || c.MaxAge.D() > 24*time.Hour {
		v.add(p+".max_age", "must be between 0 and 24h")
	}
}

func (v *validator) externalIssuers(c *Config) {
	for i, x := range c.Tokens.ExternalIssuers {
		p := pathIndex("tokens.external_issuers", i)
		if x.Issuer == "" {
			v.add(p+".issuer", "is required")
		} else if x.Issuer == c.Issuer {
			v.add(p+".issuer", "must differ from the top-level issuer")
		}
		if u, err := url.Parse(x.JWKSURL); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			v.add(p+".jwks_url", "must be an https URL")
		}
		if len(x.Audience) == 0 {
			v.add(p+".audience", "list at least one audience")
		}
		if x.MinRefresh < 0 {
			v.add(p+".min_refresh", "must not be negative")
		}
	}
}

func (v *validator) protect(p string, pr *Protect, up Upstream) {
	if (pr.OpenAPI || pr.Response != "") && up.OpenAPI == "" {
		v.add(p, "openapi and response need the upstream's openapi document (upstreams.<name>.openapi)")
	}
	if pr.Response != "" {
		v.oneOf(p+".response", pr.Response, []string{"filter", "block", "report"})
	}
	if pr.Secrets != "" {
		v.oneOf(p+".secrets", pr.Secrets, []string{"redact", "block", "report"})
	}
	if w := pr.WAF; w != nil {
		if w.Paranoia != 0 && (w.Paranoia < 1 || w.Paranoia > 4) {
			v.add(p+".waf.paranoia", "must be 1 to 4 (got %d)", w.Paranoia)
		}
		if w.Threshold != 0 && (w.Threshold < 1 || w.Threshold > 1000) {
			v.add(p+".waf.threshold", "must be 1 to 1000 (got %d)", w.Threshold)
		}
	}
}

func (v *validator) limits(c *Config) {
	l := c.Limits
	for _, f := range []struct{ path, val string }{
		{"limits.global", l.Global}, {"limits.per_ip", l.PerIP},
		{"limits.auth.signup", l.Auth.Signup}, {"limits.auth.token", l.Auth.Token},
		{"limits.auth.password_reset", l.Auth.PasswordReset}, {"limits.auth.mfa", l.Auth.MFA},
		{"limits.auth.email_send", l.Auth.EmailSend},
	} {
		if f.val == "" {
			continue
		}
		if _, err := ParseRate(f.val); err != nil {
			v.add(f.path, "%v", err)
		}
	}
	if l.OnStoreError != "" {
		v.oneOf("limits.on_store_error", l.OnStoreError, []string{"local", "allow", "deny"})
	}
}

func (v *validator) plans(c *Config) {
	for _, name := range sortedKeys(c.Plans) {
		p := pathKey("plans", name)
		if !nameRe.MatchString(name) {
			v.add(p, "%q is not a valid plan name (letters, digits, '_', '.', '-')", clip(name))
		}
		if _, err := ParseRate(c.Plans[name]); err != nil {
			v.add(p, "%v", err)
		}
	}
}

func (v *validator) upstreams(c *Config) {
	for _, name := range sortedKeys(c.Upstreams) {
		u := c.Upstreams[name]
		p := pathKey("upstreams", name)
		if !nameRe.MatchString(name) {
			v.add(p, "%q is not a valid upstream name (letters, digits, '_', '.', '-')", clip(name))
		}
		v.upstreamURL(p+".url", u.URL)
		if u.TLS.Set() && !strings.HasPrefix(u.URL, "https://") {
			v.add(p+".tls", "is only used with an https:// url")
		}
		if (u.TLS.CertFile == "") != (u.TLS.KeyFile == "") {
			v.add(p+".tls", "cert_file and key_file go together (the client certificate for mTLS)")
		}
		if u.Timeout < 0 {
			v.add(p+".timeout", "must not be negative")
		} else if u.Timeout > c.Server.WriteTimeout && c.Server.WriteTimeout > 0 {
			v.add(p+".timeout", "must not exceed server.write_timeout (%s > %s): the response would be cut off first", u.Timeout, c.Server.WriteTimeout)
		}
	}
}

func (v *validator) upstreamURL(path, s string) {
	if s == "" {
		v.add(path, "is required, e.g. http://127.0.0.1:9000")
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		v.add(path, "is not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		v.add(path, "must be an http:// or https:// URL (got scheme %q)", u.Scheme)
	case u.Opaque != "" || u.Host == "":
		v.add(path, "must be an absolute URL with a host")
	case u.User != nil:
		// Credentials in the URL would be logged with it; upstream authentication
		// belongs in mTLS or the signed identity assertion.
		v.add(path, "must not contain user information")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		v.add(path, "must not have a query or fragment")
	}
}

func (v *validator) routes(c *Config) {
	names := map[string]int{}
	claims := methodClaims{}
	for i, r := range c.Routes {
		p := pathIndex("routes", i)
		norm, pathOK := v.routePath(p+".path", r.Path)

		methods := map[string]bool{}
		for j, m := range r.Methods {
			mp := pathIndex(p+".methods", j)
			if !contains(httpMethods, m) {
				if contains(httpMethods, strings.ToUpper(m)) {
					v.add(mp, "methods are upper case: write %q", strings.ToUpper(m))
				} else {
					v.add(mp, "must be one of %s (got %q)", strings.Join(httpMethods, ", "), clip(m))
				}
				continue
			}
			if methods[m] {
				v.add(mp, "duplicate method %q", m)
			}
			methods[m] = true
		}

		switch {
		case r.Upstream == "":
			v.add(p+".upstream", "is required")
		case !hasKey(c.Upstreams, r.Upstream):
			v.add(p+".upstream", "%q is not one of the upstreams%s", clip(r.Upstream), listHint(sortedKeys(c.Upstreams)))
		}

		if v.oneOf(p+".access", r.Access, accessLevels) && r.Access == AccessPublic {
			// A public route has no verified caller: any rule about the caller
			// would be silently unenforceable, so say so now.
			for _, f := range []struct {
				set  bool
				name string
			}{
				{len(r.Roles) > 0, "roles"},
				{len(r.Scopes) > 0, "scopes"},
				{r.MFA != "", "mfa"},
				{r.Allow != "", "allow"},
				{r.Quota, "quota"},
			} {
				if f.set {
					v.add(p+"."+f.name, "cannot be used with access: public (a public route has no caller to check)")
				}
			}
		}
		v.names(p+".roles", r.Roles, roleRe, "role name")
		for j, s := range r.Scopes {
			if !validScopeToken(s) {
				v.add(pathIndex(p+".scopes", j), "%q is not a valid scope (printable, no spaces or quotes)", clip(s))
			}
		}
		if r.MFA != "" && r.MFA != "required" {
			v.add(p+".mfa", "must be \"required\" or left out (got %q)", clip(r.MFA))
		}
		switch {
		case r.MFAMaxAge < 0:
			v.add(p+".mfa_max_age", "must not be negative")
		case r.MFAMaxAge > 0 && r.MFA != "required":
			v.add(p+".mfa_max_age", "needs mfa: required")
		case r.MFAMaxAge > 0 && r.MFAMaxAge.D() < time.Minute:
			v.add(p+".mfa_max_age", "must be at least 1m (got %s)", r.MFAMaxAge.D())
		case r.MFAMaxAge.D() > 30*24*time.Hour:
			v.add(p+".mfa_max_age", "must be at most 30d (got %s)", r.MFAMaxAge.D())
		}
		if r.MaxBodyBytes < 0 {
			v.add(p+".max_body_bytes", "must not be negative (0 means server.max_body_bytes)")
		} else if r.MaxBodyBytes > maxBodyBytes {
			v.add(p+".max_body_bytes", "must be at most %d (got %d)", maxBodyBytes, r.MaxBodyBytes)
		}
		if r.CORS != nil {
			v.cors(p+".cors", r.CORS)
		}
		if r.Protect != nil {
			v.protect(p+".protect", r.Protect, c.Upstreams[r.Upstream])
		}
		for j, s := range r.RateLimits {
			lp := pathIndex(p+".rate_limits", j)
			l, err := ParseRouteLimit(s)
			if err != nil {
				v.add(lp, "%v", err)
			} else if l.Per == PerUser && r.Access == AccessPublic {
				v.add(lp, "\"per user\" cannot be used with access: public; use \"per ip\"")
			}
		}

		if r.Name != "" {
			if j, dup := names[r.Name]; dup {
				v.add(p+".name", "duplicate route name %q (same as %s); names label logs and metrics", clip(r.Name), pathIndex("routes", j))
			} else {
				names[r.Name] = i
			}
		}

		if pathOK {
			v.unreachable(p, claims, norm, r.Methods, methods)
		}
	}
}

// methodClaims records, for one path shape, which earlier route first took each
// method ("" for a route that takes every method).
type methodClaims map[string]map[string]int

// unreachable reports a route that earlier routes with the same path shape
// already cover for every method it takes, then records its own claims. It is
// linear in the number of routes whatever the file holds.
func (v *validator) unreachable(path string, claims methodClaims, norm string, listed []string, methods map[string]bool) {
	c := claims[norm]
	if c == nil {
		c = map[string]int{}
		claims[norm] = c
	}
	i := routeIndex(path)
	if j, ok := c[""]; ok {
		v.add(path, "is unreachable: %s matches every request it would (routes match in order)", pathIndex("routes", j))
		return
	}
	if len(listed) == 0 {
		c[""] = i
		return
	}
	var by []int
	covered := len(methods) > 0
	for m := range methods {
		j, ok := c[m]
		if !ok {
			covered = false
			c[m] = i
		} else if !slices.Contains(by, j) {
			by = append(by, j)
		}
	}
	if covered {
		sort.Ints(by)
		names := make([]string, len(by))
		for k, j := range by {
			names[k] = pathIndex("routes", j)
		}
		verb := "matches"
		if len(names) > 1 {
			verb = "match"
		}
		v.add(path, "is unreachable: %s %s every request it would (routes match in order)", strings.Join(names, " and "), verb)
	}
}

// routeIndex reads i back from "routes[i]".
func routeIndex(path string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(path, "routes["), "]"))
	return n
}

// routePath checks a route pattern and returns it with parameter names erased
// ("/v1/notes/{}"), for comparing routes.
func (v *validator) routePath(path, s string) (string, bool) {
	if s == "" {
		v.add(path, "is required, e.g. /v1/notes/{id}")
		return "", false
	}
	if s[0] != '/' {
		v.add(path, "must start with \"/\" (got %q)", clip(s))
		return "", false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '?' || r == '#' || r == '%' || r == '\\' {
			v.add(path, "must not contain spaces, control characters, '?', '#', '%%' or '\\' (got %q)", clip(s))
			return "", false
		}
	}
	segs := strings.Split(s[1:], "/")
	params := map[string]bool{}
	for i, seg := range segs {
		switch {
		case seg == "" && i == len(segs)-1:
			// A trailing slash is allowed.
		case seg == "":
			v.add(path, "must not contain an empty segment (\"//\")")
			return "", false
		case seg == "." || seg == "..":
			// Request paths are cleaned before matching, so such a route could
			// never match, or would match something else than it says.
			v.add(path, "must not contain \".\" or \"..\" segments")
			return "", false
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			name := seg[1 : len(seg)-1]
			if !paramRe.MatchString(name) {
				v.add(path, "parameter %q must be a name of letters, digits and '_' not starting with a digit", clip(seg))
				return "", false
			}
			if params[name] {
				v.add(path, "parameter {%s} appears twice", name)
				return "", false
			}
			params[name] = true
			segs[i] = "{}"
		case strings.ContainsAny(seg, "{}"):
			v.add(path, "a parameter must be a whole segment like /{id}/ (got %q)", clip(seg))
			return "", false
		}
	}
	return "/" + strings.Join(segs, "/"), true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func listHint(names []string) string {
	if len(names) == 0 {
		return " (no upstreams are defined)"
	}
	return " (" + shortList(names) + ")"
}

// shortList joins names for a message, at most ten of them.
func shortList(names []string) string {
	const limit = 10
	if len(names) > limit {
		return strings.Join(names[:limit], ", ") + fmt.Sprintf(", … %d more", len(names)-limit)
	}
	return strings.Join(names, ", ")
}

func orList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// describe names a URL-ish value for a message without echoing anything that may
// be a credential: only the scheme of anything that looks like a URL or has
// userinfo, the value itself only when it is a plain word such as "memroy".
func describe(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		return fmt.Sprintf("scheme %q", clip(s[:i]))
	}
	if strings.ContainsAny(s, ":@/") || len(s) > 32 {
		return "a value that is not a URL"
	}
	return strconv.Quote(s)
}

// describeSecret is describe for values that may be a secret as a whole (a KEK
// pasted in by mistake): the scheme or nothing.
func describeSecret(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		return fmt.Sprintf("scheme %q", clip(s[:i]))
	}
	return "a value without a scheme"
}

// clip bounds a user-supplied value echoed in a message.
func clip(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
