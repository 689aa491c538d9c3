package config

import (
	"runtime"
	"strings"
	"time"
)

// Defaults that more than one place needs.
const (
	// MaxFileBytes is the largest configuration file Load and Parse accept.
	MaxFileBytes = 1 << 20

	defaultAdminListen      = "127.0.0.1:9090"
	defaultUpstreamTimeout  = Duration(30 * time.Second)
	defaultAccess           = AccessAuthenticated
	defaultRouteMethodsName = "ANY"
)

// ACME challenge types.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// Route access levels.
const (
	AccessPublic        = "public"
	AccessAuthenticated = "authenticated"
)

// Default returns a Config with every default filled in. The required values
// (Issuer, Store, KEK, Server.TLS files) are empty. Each call returns fresh slices
// and pointers, so callers may modify the result freely.
func Default() Config {
	return Config{
		Cache: "memory",
		Server: Server{
			Listen:            "127.0.0.1:8443",
			TLS:               TLS{MinVersion: "1.2", Pins: Pins{Validity: Duration(90 * day)}},
			MaxBodyBytes:      1 << 20,
			MaxHeaderBytes:    32 << 10,
			MaxConnections:    10000,
			ReadHeaderTimeout: Duration(5 * time.Second),
			ReadTimeout:       Duration(30 * time.Second),
			WriteTimeout:      Duration(60 * time.Second),
			IdleTimeout:       Duration(120 * time.Second),
			ShutdownTimeout:   Duration(20 * time.Second),
		},
		Admin: Admin{Listen: defaultAdminListen, RequireMFA: ptr(true)},
		Tokens: Tokens{
			Audience:           []string{"gatehouse"},
			Algorithm:          "ES256",
			AccessTTL:          Duration(15 * time.Minute),
			RefreshIdleTTL:     Duration(30 * day),
			RefreshAbsoluteTTL: Duration(90 * day),
			ReuseLeeway:        Duration(10 * time.Second),
			Scope:              "api",
		},
		Keys: Keys{
			RotationInterval: Duration(30 * day),
			JWKSCacheTTL:     Duration(5 * time.Minute),
			ReloadInterval:   Duration(time.Minute),
		},
		Identity: Identity{
			Password: Password{
				MinLength: 8,
				MaxLength: 128,
				Blocklist: ptr(true),
				Argon2: Argon2{
					MemoryKiB:   19456,
					Iterations:  2,
					Parallelism: 1,
				},
				MaxConcurrentHashes: runtime.NumCPU(),
				HashQueueTimeout:    Duration(2 * time.Second),
			},
			Lockout: Lockout{
				AccountFailures: 5,
				IPFailures:      50,
				Window:          Duration(15 * time.Minute),
			},
			DefaultPlan: "free",
			WebAuthn:    WebAuthn{RPDisplayName: "Gatehouse", Timeout: Duration(5 * time.Minute)},
			MFA: MFA{
				TOTPIssuer:   "Gatehouse",
				TokenTTL:     Duration(5 * time.Minute),
				MaxAttempts:  5,
				UserFailures: 10,
				Window:       Duration(15 * time.Minute),
			},
			Email: IdentityEmail{
				CodeTTL:        Duration(15 * time.Minute),
				SendPerAddress: "3/h",
				SendPerIP:      "20/h",
			},
		},
		Audit: Audit{
			Log:       ptr(true),
			Store:     ptr(true),
			Retention: Duration(90 * day),
		},
		Log:     Log{Level: "info", Format: "json"},
		Monitor: defaultMonitor(),
		SMTP:    SMTP{Port: 587, TLS: "starttls", Timeout: Duration(15 * time.Second)},
		Limits: Limits{
			PerIP:        "100/s",
			OnStoreError: "local",
			Auth: AuthLimits{
				Signup:        "20/h",
				Token:         "60/m",
				PasswordReset: "10/h",
				MFA:           "30/m",
				EmailSend:     "10/h",
			},
		},
	}
}

// ApplyDefaults replaces the zero values that the field comments define as "the
// default" with that default, so a loaded Config is concrete: an empty
// admin.listen, a nil blocklist/audit switch, max_concurrent_hashes 0 (the number
// of CPUs), an upstream without a timeout (30s), a route without a name ("METHODS
// path") or access ("authenticated"), ACME without challenges (http-01 and
// tls-alpn-01 with server.http_listen, else tls-alpn-01). Parse calls it before Validate; it is
// idempotent and touches nothing else.
func (c *Config) ApplyDefaults() {
	if c.Admin.Listen == "" {
		c.Admin.Listen = defaultAdminListen
	}
	if c.Admin.RequireMFA == nil {
		c.Admin.RequireMFA = ptr(true)
	}
	if c.Identity.Password.Blocklist == nil {
		c.Identity.Password.Blocklist = ptr(true)
	}
	if c.Identity.Password.MaxConcurrentHashes == 0 {
		c.Identity.Password.MaxConcurrentHashes = runtime.NumCPU()
	}
	c.Identity.OIDC.applyDefaults()
	if c.Audit.Log == nil {
		c.Audit.Log = ptr(true)
	}
	if c.Audit.Store == nil {
		c.Audit.Store = ptr(true)
	}
	if a := &c.Server.TLS.ACME; a.On() && len(a.Challenges) == 0 {
		a.Challenges = []string{ChallengeTLSALPN01}
		if c.Server.HTTPListen != "" {
			a.Challenges = []string{ChallengeHTTP01, ChallengeTLSALPN01}
		}
	}
	for name, u := range c.Upstreams {
		if u.Timeout == 0 {
			u.Timeout = defaultUpstreamTimeout
			c.Upstreams[name] = u
		}
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.Access == "" {
			r.Access = defaultAccess
		}
		if r.Name == "" {
			r.Name = DefaultRouteName(r.Methods, r.Path)
		}
	}
}

// DefaultRouteName is the name of a route that does not set one: its methods
// joined by commas and its path, e.g. "GET,POST /v1/notes", or "ANY /v1/notes"
// when the route takes every method.
func DefaultRouteName(methods []string, path string) string {
	m := defaultRouteMethodsName
	if len(methods) > 0 {
		m = strings.Join(methods, ",")
	}
	return m + " " + path
}

func ptr[T any](v T) *T { return &v }
