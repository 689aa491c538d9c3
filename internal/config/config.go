package config

import "time"

// Config is the whole configuration file. Every field has a default (see Default);
// a zero value in a loaded file means "use the default" only where a comment says so.
type Config struct {
	// Issuer is the public base URL of the HTTPS listener, used as the JWT "iss" and
	// in the discovery document, e.g. "https://api.example.com". Required.
	Issuer string `yaml:"issuer"`
	// Store is the database URL: "sqlite://PATH" (embedded default) or
	// "postgres://user@host:5432/db?sslmode=...". Required.
	Store string `yaml:"store"`
	// Cache is where shared fast state lives (rate-limit counters, revocations,
	// bans): "memory" (default, one process) or "redis://host:6379/0".
	Cache string `yaml:"cache"`
	// KEK names the key-encryption key that seals private data at rest:
	// "file://PATH" (32 random bytes, raw or base64) or "env://VAR". Required.
	KEK string `yaml:"kek"`

	Server   Server   `yaml:"server"`
	Admin    Admin    `yaml:"admin"`
	Tokens   Tokens   `yaml:"tokens"`
	Keys     Keys     `yaml:"keys"`
	Identity Identity `yaml:"identity"`
	Audit    Audit    `yaml:"audit"`
	Log      Log      `yaml:"log"`
	// Services are machine credentials for backends (token introspection, admin API, transit API).
	Services []Service `yaml:"services"`
	// Limits are the rate limits that apply outside route definitions.
	Limits Limits `yaml:"limits"`
	// Plans maps a plan name to its request quota, e.g. {free: "100/h"}.
	Plans map[string]string `yaml:"plans"`
	// Upstreams are the APIs Gatehouse protects, by name.
	Upstreams map[string]Upstream `yaml:"upstreams"`
	// Routes are matched in order; the first match wins. Unmatched paths get 404.
	Routes []Route `yaml:"routes"`
	// Monitor is the event stream, attack detectors, bans and alerts.
	Monitor Monitor `yaml:"monitor"`
	// SMTP is the mail server for email verification and password reset.
	// Host empty: off, and those endpoints answer 503.
	SMTP SMTP `yaml:"smtp"`
}

// Server is the public HTTPS listener.
type Server struct {
	// Listen is the HTTPS address. Default "127.0.0.1:8443".
	Listen string `yaml:"listen"`
	// HTTPListen, optional, is a plain-HTTP address (e.g. ":80"). It never serves
	// the API: browsers are redirected to HTTPS, API clients get a 403 problem,
	// and ACME HTTP-01 challenges are answered. Default off.
	HTTPListen string `yaml:"http_listen"`
	TLS        TLS    `yaml:"tls"`
	// MaxBodyBytes caps request bodies (413 beyond). Default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxHeaderBytes caps request headers. Default 32 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxConnections caps simultaneous client connections; further ones wait in
	// the kernel's accept queue. Default 10000.
	MaxConnections int `yaml:"max_connections"`
	// ReadHeaderTimeout bounds slow clients (slowloris). Default 5s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// ReadTimeout, WriteTimeout and IdleTimeout: defaults 30s, 60s, 120s.
	ReadTimeout  Duration `yaml:"read_timeout"`
	WriteTimeout Duration `yaml:"write_timeout"`
	IdleTimeout  Duration `yaml:"idle_timeout"`
	// ShutdownTimeout is how long in-flight requests may finish after SIGTERM. Default 20s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// TrustedProxies are CIDRs whose X-Forwarded-For / X-Request-Id are believed.
	// Default none: the client IP is the TCP peer.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// TLS is where the certificate comes from: files (CertFile and KeyFile, reloaded
// when they change) or ACME. Exactly one of the two is required: Gatehouse never
// serves plain HTTP.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
	// ACME obtains and renews the certificate automatically when ACME.Domains is set.
	ACME ACME `yaml:"acme"`
	// BackupKeyFile is a pre-generated private key whose pin is published before it
	// is ever used (created 0600 by `gatehouse pins` or serve when missing). Empty:
	// no backup pin, and `gatehouse pins` refuses to print a pin set.
	BackupKeyFile string `yaml:"backup_key_file"`
	// Pins describe the pin set published to apps.
	Pins Pins `yaml:"pins"`
}

// ACME is automatic certificate management (certmagic). Setting Domains turns it on.
type ACME struct {
	// Domains the certificate covers; the first is served to clients without SNI.
	Domains []string `yaml:"domains"`
	// Email is the ACME account contact. Optional but recommended.
	Email string `yaml:"email"`
	// CA is the ACME directory URL. Default: Let's Encrypt production.
	CA string `yaml:"ca"`
	// CARoots, optional, is a PEM file of the roots trusted for the ACME server's
	// own HTTPS endpoint (a private ACME CA). Default: the system roots.
	CARoots string `yaml:"ca_roots"`
	// Storage is the directory for the account, keys and certificates. Replicas
	// share one (a shared volume) to share certificates and coordinate renewals.
	// Required when ACME is on.
	Storage string `yaml:"storage"`
	// ReuseKey keeps the private key across renewals so SPKI pins stay valid.
	// Default false.
	ReuseKey bool `yaml:"reuse_key"`
	// Challenges are "http-01" (needs server.http_listen reachable on port 80)
	// and/or "tls-alpn-01" (needs server.listen reachable on port 443). Default
	// both when server.http_listen is set, else tls-alpn-01.
	Challenges []string `yaml:"challenges"`
}

// On reports whether ACME is configured.
func (a ACME) On() bool { return len(a.Domains) > 0 }

// Pins describe the SPKI pin set Gatehouse publishes for apps
// (/.well-known/gatehouse/pins.json and `gatehouse pins`).
type Pins struct {
	// Hosts the pins apply to. Default: the issuer's host (and the ACME domains).
	Hosts []string `yaml:"hosts"`
	// Published are the pins apps already ship with (base64 SHA-256 SPKI). When
	// set, serving a key whose pin is neither here nor the backup key's raises
	// the gatehouse_tls_serving_key_unpinned metric and logs an audit event.
	Published []string `yaml:"published"`
	// Validity is how long a printed or served pin set stays enforced (its
	// expiration / not_after). Default 90d; at least 1d, at most 365d.
	Validity Duration `yaml:"validity"`
}

// Admin is the admin listener (metrics, admin API, dashboard).
type Admin struct {
	// Listen is the admin address. Default "127.0.0.1:9090". Empty string after
	// loading means the default; set Disabled to turn the listener off.
	Listen   string `yaml:"listen"`
	Disabled bool   `yaml:"disabled"`
	// RequireMFA admits admin accounts (dashboard sign-in, Bearer tokens on
	// /admin/v1) only with a second factor. Default true. Service credentials
	// are not affected.
	RequireMFA *bool `yaml:"require_mfa"`
}

// Tokens are the access- and refresh-token rules.
type Tokens struct {
	// Audience is the access token "aud". Default ["gatehouse"].
	Audience []string `yaml:"audience"`
	// Algorithm is "ES256" (default) or "EdDSA".
	Algorithm string `yaml:"algorithm"`
	// AccessTTL is the access-token lifetime. Default 15m; at most 1h.
	AccessTTL Duration `yaml:"access_ttl"`
	// RefreshIdleTTL: a session unused this long dies. Default 30d.
	RefreshIdleTTL Duration `yaml:"refresh_idle_ttl"`
	// RefreshAbsoluteTTL: a session dies this long after login whatever happens. Default 90d.
	RefreshAbsoluteTTL Duration `yaml:"refresh_absolute_ttl"`
	// ReuseLeeway: the immediately previous refresh token presented within this
	// time of its rotation returns the current successor instead of revoking the
	// family. Default 10s; at most 60s; 0 disables the leeway.
	ReuseLeeway Duration `yaml:"reuse_leeway"`
	// Scope is the default "scope" claim of tokens. Default "api".
	Scope string `yaml:"scope"`
	// ExternalIssuers are other identity providers whose JWT access tokens the
	// gateway also accepts, verified against their JWKS. Default none.
	ExternalIssuers []ExternalIssuer `yaml:"external_issuers"`
}

// ExternalIssuer is another token issuer the gateway trusts.
type ExternalIssuer struct {
	// Issuer is the exact "iss" of its tokens. Required.
	Issuer string `yaml:"issuer"`
	// JWKSURL is the https URL of its JSON Web Key Set. Required.
	JWKSURL string `yaml:"jwks_url"`
	// Audience: a token must carry one of these in "aud". Required.
	Audience []string `yaml:"audience"`
	// MinRefresh is the least time between two JWKS fetches (an unknown kid
	// triggers at most one per interval). Default 30s.
	MinRefresh Duration `yaml:"min_refresh"`
}

// Keys is the signing-key schedule.
type Keys struct {
	// RotationInterval is how long a key stays active. Default 30d; 0 disables
	// scheduled rotation (manual `gatehouse keys rotate` still works).
	RotationInterval Duration `yaml:"rotation_interval"`
	// JWKSCacheTTL is the Cache-Control max-age of /.well-known/jwks.json and the
	// time a retiring key stays published beyond the longest token lifetime. Default 5m.
	JWKSCacheTTL Duration `yaml:"jwks_cache_ttl"`
	// ReloadInterval is how often a replica re-reads the key ring from the store. Default 1m.
	ReloadInterval Duration `yaml:"reload_interval"`
}

// Identity holds account rules.
type Identity struct {
	Password Password `yaml:"password"`
	Lockout  Lockout  `yaml:"lockout"`
	// DefaultPlan is given to new accounts. Default "free".
	DefaultPlan string `yaml:"default_plan"`
	// DefaultRoles are given to new accounts. Default none.
	DefaultRoles []string `yaml:"default_roles"`
	// SignupDisabled turns off POST /auth/v1/signup.
	SignupDisabled bool `yaml:"signup_disabled"`
	// RequireVerifiedEmail blocks token issuance until the email is verified.
	// It needs smtp.host (nobody could verify otherwise).
	RequireVerifiedEmail bool `yaml:"require_verified_email"`
	// OIDC is social login through OpenID Connect providers (oidc.go).
	OIDC OIDC `yaml:"oidc"`
	// WebAuthn is the passkey relying party. Zero value (no rp_id): passkeys off.
	WebAuthn WebAuthn `yaml:"webauthn"`
	// MFA is the second step of sign-in: TOTP, recovery codes and the mfa_token.
	MFA MFA `yaml:"mfa"`
	// Email is email verification and password reset.
	Email IdentityEmail `yaml:"email"`
}

// WebAuthn configures passkeys (internal/passkey).
type WebAuthn struct {
	// RPID is the relying party id: a registrable domain (or "localhost") that
	// the apps' associated domains / Digital Asset Links name. Empty: passkeys
	// off and the /auth/v1/webauthn endpoints answer 404.
	RPID string `yaml:"rp_id"`
	// RPDisplayName is shown by the authenticator. Default "Gatehouse".
	RPDisplayName string `yaml:"rp_display_name"`
	// RPOrigins are the origins clientDataJSON may name: https://HOST[:PORT]
	// with HOST the rp_id or a subdomain (http://localhost when rp_id is
	// "localhost"), or android:apk-key-hash:HASH for a native Android app. At
	// least one https origin when rp_id is set.
	RPOrigins []string `yaml:"rp_origins"`
	// Timeout is how long a ceremony (begin → finish) may take. Default 5m.
	Timeout Duration `yaml:"timeout"`
}

// MFA configures TOTP and the second step of sign-in.
type MFA struct {
	// TOTPIssuer names the service in authenticator apps (the otpauth issuer).
	// Default "Gatehouse"; set it to the app's name. No colon.
	TOTPIssuer string `yaml:"totp_issuer"`
	// TokenTTL is how long an mfa_token is valid. Default 5m; 30s to 30m.
	TokenTTL Duration `yaml:"token_ttl"`
	// MaxAttempts is how many second factors one mfa_token may try. Default 5; 1 to 10.
	MaxAttempts int `yaml:"max_attempts"`
	// UserFailures failed second factors per user within Window refuse every
	// further attempt (429) until the window ends, whatever the mfa_token.
	// Default 10; 1 to 100.
	UserFailures int `yaml:"user_failures"`
	// Window is the counting window for UserFailures. Default 15m.
	Window Duration `yaml:"window"`
}

// IdentityEmail configures the email verification and password reset mails.
type IdentityEmail struct {
	// VerifyURL is the link in verification mails, e.g.
	// "https://app.example.com/verify" (a universal / app link); the mail adds
	// "token=..." to its query. Empty: the mail carries only the code.
	VerifyURL string `yaml:"verify_url"`
	// ResetURL is the same for password reset mails.
	ResetURL string `yaml:"reset_url"`
	// CodeTTL is how long a link and its code work. Default 15m; 1m to 1h.
	CodeTTL Duration `yaml:"code_ttl"`
	// SendPerAddress caps mails to one address ("N/unit"); beyond it the
	// answer stays 202 but nothing is sent. Default "3/h".
	SendPerAddress string `yaml:"send_per_address"`
	// SendPerIP caps send requests per client IP; beyond it 429. Default "20/h".
	SendPerIP string `yaml:"send_per_ip"`
}

// SMTP is the outgoing mail server of the identity flows.
type SMTP struct {
	// Host of the SMTP server. Empty: no mail.
	Host string `yaml:"host"`
	// Port. Default 587.
	Port int `yaml:"port"`
	// TLS is "starttls" (default, required), "tls" (implicit, port 465) or
	// "none" (only with a loopback host).
	TLS string `yaml:"tls"`
	// Username turns on SMTP AUTH; the password comes from PasswordEnv.
	Username string `yaml:"username"`
	// PasswordEnv names the environment variable holding the SMTP password
	// (never inline in the file).
	PasswordEnv string `yaml:"password_env"`
	// From is the sender, e.g. "Example <no-reply@example.com>". Required with host.
	From string `yaml:"from"`
	// Timeout bounds each delivery (connect, TLS, every command). Default 15s.
	Timeout Duration `yaml:"timeout"`
}

// Password is the NIST SP 800-63B password policy and the argon2id cost.
type Password struct {
	// MinLength in characters (Unicode code points). Default 8; at least 8.
	MinLength int `yaml:"min_length"`
	// MaxLength in characters. Default 128; at least 64.
	MaxLength int `yaml:"max_length"`
	// Blocklist rejects the shipped list of common passwords. Default true.
	Blocklist *bool `yaml:"blocklist"`
	// Argon2 cost. Defaults are the OWASP floor: memory 19456 KiB, iterations 2,
	// parallelism 1. Lower values are rejected.
	Argon2 Argon2 `yaml:"argon2"`
	// MaxConcurrentHashes bounds simultaneous argon2id computations so that a login
	// flood cannot starve proxied traffic. Default: the number of CPUs.
	MaxConcurrentHashes int `yaml:"max_concurrent_hashes"`
	// HashQueueTimeout is how long a login waits for a hashing slot before 503. Default 2s.
	HashQueueTimeout Duration `yaml:"hash_queue_timeout"`
}

// Argon2 is the argon2id cost.
type Argon2 struct {
	MemoryKiB   uint32 `yaml:"memory_kib"`
	Iterations  uint32 `yaml:"iterations"`
	Parallelism uint8  `yaml:"parallelism"`
}

// Lockout is the online-guessing defence.
type Lockout struct {
	// AccountFailures failed logins per account within Window lock it for Window. Default 5.
	AccountFailures int `yaml:"account_failures"`
	// IPFailures failed logins per client IP within Window block that IP for Window. Default 50.
	IPFailures int `yaml:"ip_failures"`
	// Window is the counting window and the lock duration. Default 15m.
	Window Duration `yaml:"window"`
}

// Audit chooses where audit events go.
type Audit struct {
	// Log writes each event as a JSON log line. Default true.
	Log *bool `yaml:"log"`
	// Store keeps events in the database (queryable). Default true.
	Store *bool `yaml:"store"`
	// Retention is how long stored events are kept. Default 90d.
	Retention Duration `yaml:"retention"`
}

// Log is the process log.
type Log struct {
	// Level is "debug", "info" (default), "warn" or "error".
	Level string `yaml:"level"`
	// Format is "json" (default) or "text".
	Format string `yaml:"format"`
}

// Limits are rate limits at the edge (every request) and on the identity API.
// Each is "N/unit" (units s, m, h, d); an empty string turns that limit off.
type Limits struct {
	// Global is one budget shared by every request, e.g. "5000/s". Default: none.
	Global string `yaml:"global"`
	// PerIP is every client IP's budget across all requests (trusted-proxy
	// aware). Default "100/s".
	PerIP string `yaml:"per_ip"`
	// OnStoreError is what happens when the shared counter store (Redis) fails:
	// "local" (default: fall back to this process's own counters), "allow" or
	// "deny". Failures are always logged and counted.
	OnStoreError string `yaml:"on_store_error"`
	// Auth are per-client-IP budgets for the identity endpoints, on top of the
	// per-account sign-in lockout.
	Auth AuthLimits `yaml:"auth"`
}

// AuthLimits are per-client-IP budgets for the identity endpoints.
type AuthLimits struct {
	// Signup: POST /auth/v1/signup. Default "20/h".
	Signup string `yaml:"signup"`
	// Token: POST /auth/v1/token (sign-in and refresh). Default "60/m".
	Token string `yaml:"token"`
	// PasswordReset: redeeming emailed links and codes (POST
	// /auth/v1/password/reset and /auth/v1/email/verify). Default "10/h".
	PasswordReset string `yaml:"password_reset"`
	// MFA: second-factor verification. Default "30/m".
	MFA string `yaml:"mfa"`
	// EmailSend: endpoints that send email. Default "10/h".
	EmailSend string `yaml:"email_send"`
}

// Service is a machine credential for backends.
type Service struct {
	// ID is the client id, e.g. "notes-backend".
	ID string `yaml:"id"`
	// SecretHash is the argon2id PHC hash of the secret (`gatehouse` prints one), or
	// use SecretEnv to read the plaintext secret from an environment variable.
	SecretHash string `yaml:"secret_hash"`
	SecretEnv  string `yaml:"secret_env"`
	// Permissions: "introspect", "admin", "transit" (the transit API only;
	// "admin" includes it).
	Permissions []string `yaml:"permissions"`
}

// Upstream is one protected API.
type Upstream struct {
	// URL is the upstream base URL, e.g. "http://127.0.0.1:9000".
	URL string `yaml:"url"`
	// Timeout bounds one upstream round trip (504 beyond). Default 30s.
	Timeout Duration `yaml:"timeout"`
	// OpenAPI is an optional OpenAPI document path for request/response protection.
	OpenAPI string `yaml:"openapi"`
	// TLS, optional, is the client side of an https:// upstream.
	TLS UpstreamTLS `yaml:"tls"`
}

// UpstreamTLS is how Gatehouse connects to an https:// upstream.
type UpstreamTLS struct {
	// CAFile, optional, is a PEM bundle of the only CAs trusted for the upstream's
	// certificate (a pinned CA). Default: the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile, optional and together, are Gatehouse's client
	// certificate for mTLS. They are reloaded when they change.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Set reports whether any upstream TLS option is set.
func (u UpstreamTLS) Set() bool { return u.CAFile != "" || u.CertFile != "" || u.KeyFile != "" }

// Route is one protected path.
type Route struct {
	// Name identifies the route in logs and metrics. Default "METHODS path".
	Name string `yaml:"name"`
	// Methods, e.g. [GET, POST]. Default: all.
	Methods []string `yaml:"methods"`
	// Path is a pattern with named parameters, e.g. "/v1/notes/{id}". Required.
	Path string `yaml:"path"`
	// Upstream names an entry of Upstreams. Required.
	Upstream string `yaml:"upstream"`
	// Access is "public", "authenticated" (default), or set Roles/Scopes.
	Access string   `yaml:"access"`
	Roles  []string `yaml:"roles"`
	Scopes []string `yaml:"scopes"`
	// MFA "required" admits only tokens whose amr holds a second factor.
	MFA string `yaml:"mfa"`
	// MFAMaxAge, with mfa: required, also requires the sign-in (the token's
	// auth_time) to be at most this old: step-up for sensitive routes. 0: any age.
	MFAMaxAge Duration `yaml:"mfa_max_age"`
	// Allow is a CEL rule on the request; ResponseAllow a CEL rule on the upstream's
	// JSON response (failing it returns 404).
	Allow         string `yaml:"allow"`
	ResponseAllow string `yaml:"response_allow"`
	// ForwardAuthorization forwards the client's Authorization header upstream.
	ForwardAuthorization bool `yaml:"forward_authorization"`
	// RateLimits are extra limits on this route, e.g. ["10/s per ip"].
	RateLimits []string `yaml:"rate_limits"`
	// Quota applies the caller's plan quota on this route.
	Quota bool `yaml:"quota"`
	// MaxBodyBytes overrides server.max_body_bytes for this route.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// Protect turns on request and response protection for this route.
	// Default: none.
	Protect *Protect `yaml:"protect"`
	// CORS lets browsers on other origins call this route. Default: no CORS
	// headers (same-origin only); Gatehouse removes any the upstream sends.
	CORS *CORS `yaml:"cors"`
}

// Protect is a route's request and response protection.
type Protect struct {
	// OpenAPI validates every request (path, query, headers, body) against the
	// upstream's OpenAPI document: unknown and readOnly properties are refused
	// (mass assignment). Needs upstreams.<name>.openapi.
	OpenAPI bool `yaml:"openapi"`
	// Response is what to do with response properties the document does not
	// declare: "filter" (remove them), "block" (502), "report" (pass, record).
	// Needs upstreams.<name>.openapi. Default: off.
	Response string `yaml:"response"`
	// Secrets is what to do with secrets found in a response (password hashes,
	// private keys, tokens, cloud keys, card numbers): "redact", "block" or
	// "report". Default: off.
	Secrets string `yaml:"secrets"`
	// WAF runs the OWASP Core Rule Set on requests. Default: off.
	WAF *WAF `yaml:"waf"`
}

// WAF is a route's Core Rule Set setting.
type WAF struct {
	// Paranoia is the CRS paranoia level 1–4. Default 1.
	Paranoia int `yaml:"paranoia"`
	// Threshold is the inbound anomaly score that blocks. Default 5.
	Threshold int `yaml:"threshold"`
	// ReportOnly records matches without blocking.
	ReportOnly bool `yaml:"report_only"`
}

// CORS is a route's cross-origin policy.
type CORS struct {
	// AllowedOrigins are exact origins ("https://app.example.com"), or ["*"]
	// for any origin — which is refused together with AllowCredentials.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// AllowedHeaders the browser may send. Default [Authorization, Content-Type].
	AllowedHeaders []string `yaml:"allowed_headers"`
	// AllowCredentials lets browsers send cookies / credentials.
	AllowCredentials bool `yaml:"allow_credentials"`
	// MaxAge is how long a browser may cache a preflight. Default 10m.
	MaxAge Duration `yaml:"max_age"`
}

// Duration is a time.Duration written in YAML as "15m", "36h" or "30d".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
