package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// validConfig is a minimal configuration that passes Validate.
func validConfig() Config {
	c := Default()
	c.Issuer = "https://api.example.com"
	c.Store = "sqlite:///var/lib/gatehouse/gatehouse.db"
	c.KEK = "file:///etc/gatehouse/kek"
	c.Server.TLS.CertFile = "cert.pem"
	c.Server.TLS.KeyFile = "key.pem"
	c.Plans = map[string]string{"free": "100/h", "premium": "1000/h"}
	c.Upstreams = map[string]Upstream{"api": {URL: "http://127.0.0.1:9000", Timeout: Duration(30 * time.Second)}}
	c.Routes = []Route{{Methods: []string{"GET"}, Path: "/v1/notes/{id}", Upstream: "api"}}
	c.ApplyDefaults()
	return c
}

func TestValidConfigHasNoProblems(t *testing.T) {
	c := validConfig()
	if ps := c.Validate(); len(ps) != 0 {
		t.Fatalf("validConfig: %v", Problems(ps))
	}
}

func TestDefaultNeedsOnlyTheRequiredValues(t *testing.T) {
	c := Default()
	var paths []string
	for _, p := range c.Validate() {
		paths = append(paths, p.Path)
	}
	want := []string{"issuer", "store", "kek", "server.tls.cert_file", "server.tls.key_file"}
	if !slices.Equal(paths, want) {
		t.Fatalf("Default().Validate() paths = %v, want %v", paths, want)
	}
}

func TestValidate(t *testing.T) {
	d := func(s string) Duration {
		v, err := ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return Duration(v)
	}
	route := func(f func(*Route)) func(*Config) {
		return func(c *Config) { f(&c.Routes[0]) }
	}
	service := func(s Service) func(*Config) {
		return func(c *Config) { c.Services = []Service{s} }
	}
	const hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"

	tests := []struct {
		name   string
		mutate func(*Config)
		// wantPath is the path of the one expected problem; empty means valid.
		wantPath string
		wantMsg  string
	}{
		// issuer
		{"issuer with path", func(c *Config) { c.Issuer = "https://example.com/auth" }, "", ""},
		{"issuer with port", func(c *Config) { c.Issuer = "https://example.com:8443" }, "", ""},
		{"issuer missing", func(c *Config) { c.Issuer = "" }, "issuer", "is required"},
		{"issuer http", func(c *Config) { c.Issuer = "http://localhost" }, "issuer", "https"},
		{"issuer relative", func(c *Config) { c.Issuer = "/auth" }, "issuer", "https"},
		{"issuer no host", func(c *Config) { c.Issuer = "https:///x" }, "issuer", "with a host"},
		{"issuer opaque", func(c *Config) { c.Issuer = "https:example.com" }, "issuer", "with a host"},
		{"issuer query", func(c *Config) { c.Issuer = "https://example.com?a=1" }, "issuer", "query"},
		{"issuer empty query", func(c *Config) { c.Issuer = "https://example.com?" }, "issuer", "query"},
		{"issuer fragment", func(c *Config) { c.Issuer = "https://example.com#x" }, "issuer", "fragment"},
		{"issuer empty fragment", func(c *Config) { c.Issuer = "https://example.com#" }, "issuer", "fragment"},
		{"issuer userinfo", func(c *Config) { c.Issuer = "https://u:p@example.com" }, "issuer", "user information"},
		{"issuer trailing slash", func(c *Config) { c.Issuer = "https://example.com/" }, "issuer", `end with "/"`},
		{"issuer bad", func(c *Config) { c.Issuer = "https://exa mple.com:x" }, "issuer", "not a valid URL"},

		// store
		{"store postgres", func(c *Config) { c.Store = "postgres://u@db:5432/g?sslmode=verify-full" }, "", ""},
		{"store postgresql", func(c *Config) { c.Store = "postgresql:///g?host=/run/postgresql" }, "", ""},
		{"store sqlite relative", func(c *Config) { c.Store = "sqlite://gatehouse.db" }, "", ""},
		{"store missing", func(c *Config) { c.Store = "" }, "store", "is required"},
		{"store sqlite no path", func(c *Config) { c.Store = "sqlite://" }, "store", "file path"},
		{"store mysql", func(c *Config) { c.Store = "mysql://u:pw@h/db" }, "store", `scheme "mysql"`},
		{"store keyword dsn", func(c *Config) { c.Store = "host=db password=hunter2" }, "store", "without a scheme"},
		{"store bad postgres", func(c *Config) { c.Store = "postgres://u:p@h:port/db" }, "store", "not a valid postgres URL"},

		// cache
		{"cache redis", func(c *Config) { c.Cache = "redis://127.0.0.1:6379/0" }, "", ""},
		{"cache rediss", func(c *Config) { c.Cache = "rediss://:pw@cache:6380/1" }, "", ""},
		{"cache empty", func(c *Config) { c.Cache = "" }, "cache", `"memory"`},
		{"cache typo", func(c *Config) { c.Cache = "memroy" }, "cache", `"memroy"`},
		{"cache memcached", func(c *Config) { c.Cache = "memcached://h" }, "cache", `scheme "memcached"`},
		{"cache bad redis", func(c *Config) { c.Cache = "redis://h:port" }, "cache", "not a valid redis URL"},

		// kek
		{"kek env", func(c *Config) { c.KEK = "env://GATEHOUSE_KEK_VALUE" }, "", ""},
		{"kek vault", func(c *Config) { c.KEK = "hashivault://gatehouse" }, "", ""},
		{"kek aws", func(c *Config) { c.KEK = "awskms:///arn:aws:kms:eu-west-1:1:key/abc?region=eu-west-1" }, "", ""},
		{"kek gcp", func(c *Config) { c.KEK = "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k" }, "", ""},
		{"kek azure", func(c *Config) { c.KEK = "azurekeyvault://v.vault.azure.net/keys/k" }, "", ""},
		{"kek base64key", func(c *Config) { c.KEK = "base64key://smGbjm71Nxd1Ig5FS0wj9SlbzAIrnolCz9bQQ6uAhl4=" }, "", ""},
		{"kek missing", func(c *Config) { c.KEK = "" }, "kek", "is required"},
		{"kek raw key", func(c *Config) { c.KEK = "smGbjm71Nxd1Ig5FS0wj9SlbzAIrnolCz9bQQ6uAhl4=" }, "kek", "without a scheme"},
		{"kek unknown scheme", func(c *Config) { c.KEK = "s3://bucket/kek" }, "kek", `scheme "s3"`},
		{"kek file empty", func(c *Config) { c.KEK = "file://" }, "kek", "needs a value"},
		{"kek env bad name", func(c *Config) { c.KEK = "env://MY-KEK" }, "kek", "environment variable"},

		// server
		{"listen all interfaces", func(c *Config) { c.Server.Listen = ":8443" }, "", ""},
		{"listen ipv6", func(c *Config) { c.Server.Listen = "[::1]:8443" }, "", ""},
		{"listen host name", func(c *Config) { c.Server.Listen = "gw.internal:443" }, "", ""},
		{"listen port zero", func(c *Config) { c.Server.Listen = "127.0.0.1:0" }, "", ""},
		{"listen no port", func(c *Config) { c.Server.Listen = "127.0.0.1" }, "server.listen", "host:port"},
		{"listen empty", func(c *Config) { c.Server.Listen = "" }, "server.listen", "host:port"},
		{"listen named port", func(c *Config) { c.Server.Listen = "127.0.0.1:https" }, "server.listen", "port must be a number"},
		{"listen port too big", func(c *Config) { c.Server.Listen = "127.0.0.1:65536" }, "server.listen", "port must be a number"},
		{"listen empty port", func(c *Config) { c.Server.Listen = "127.0.0.1:" }, "server.listen", "port must be a number"},
		{"listen bad host", func(c *Config) { c.Server.Listen = "bad_host!:80" }, "server.listen", "neither an IP"},
		{"cert missing", func(c *Config) { c.Server.TLS.CertFile = "" }, "server.tls.cert_file", "plain HTTP"},
		{"key missing", func(c *Config) { c.Server.TLS.KeyFile = "" }, "server.tls.key_file", "plain HTTP"},
		{"tls 1.3", func(c *Config) { c.Server.TLS.MinVersion = "1.3" }, "", ""},
		{"tls 1.1", func(c *Config) { c.Server.TLS.MinVersion = "1.1" }, "server.tls.min_version", `"1.2" or "1.3"`},
		{"tls empty", func(c *Config) { c.Server.TLS.MinVersion = "" }, "server.tls.min_version", `got ""`},
		{"body 1 GiB", func(c *Config) { c.Server.MaxBodyBytes = 1 << 30 }, "", ""},
		{"body zero", func(c *Config) { c.Server.MaxBodyBytes = 0 }, "server.max_body_bytes", "at least 1"},
		{"body negative", func(c *Config) { c.Server.MaxBodyBytes = -1 }, "server.max_body_bytes", "at least 1"},
		{"body over 1 GiB", func(c *Config) { c.Server.MaxBodyBytes = 1<<30 + 1 }, "server.max_body_bytes", "at most 1073741824"},
		{"header too small", func(c *Config) { c.Server.MaxHeaderBytes = 100 }, "server.max_header_bytes", "at least 1024"},
		{"header too big", func(c *Config) { c.Server.MaxHeaderBytes = 2 << 20 }, "server.max_header_bytes", "at most 1048576"},
		{"read header zero", func(c *Config) { c.Server.ReadHeaderTimeout = 0 }, "server.read_header_timeout", "positive"},
		{"read zero", func(c *Config) { c.Server.ReadTimeout = 0 }, "server.read_timeout", "positive"},
		{"write zero", func(c *Config) { c.Server.WriteTimeout = 0 }, "server.write_timeout", "positive"},
		{"idle negative", func(c *Config) { c.Server.IdleTimeout = -1 }, "server.idle_timeout", "positive"},
		{"shutdown zero", func(c *Config) { c.Server.ShutdownTimeout = 0 }, "server.shutdown_timeout", "positive"},
		{"read header over read", func(c *Config) { c.Server.ReadHeaderTimeout = d("1m") }, "server.read_header_timeout", "must not exceed server.read_timeout"},
		{"proxies ok", func(c *Config) { c.Server.TrustedProxies = []string{"10.0.0.0/8", "192.168.1.10/32", "fd00::/8"} }, "", ""},
		{"proxy bare ip", func(c *Config) { c.Server.TrustedProxies = []string{"10.0.0.0/8", "10.1.2.3"} }, "server.trusted_proxies[1]", "10.1.2.3/32"},
		{"proxy bare ipv6", func(c *Config) { c.Server.TrustedProxies = []string{"fd00::1"} }, "server.trusted_proxies[0]", "fd00::1/128"},
		{"proxy garbage", func(c *Config) { c.Server.TrustedProxies = []string{"lb.internal"} }, "server.trusted_proxies[0]", "not a CIDR"},
		{"proxy everyone v4", func(c *Config) { c.Server.TrustedProxies = []string{"0.0.0.0/0"} }, "server.trusted_proxies[0]", "forge its IP"},
		{"proxy everyone v6", func(c *Config) { c.Server.TrustedProxies = []string{"::/0"} }, "server.trusted_proxies[0]", "forge its IP"},
		{"proxy host bits", func(c *Config) { c.Server.TrustedProxies = []string{"10.1.2.3/8"} }, "server.trusted_proxies[0]", "10.0.0.0/8"},

		// admin
		{"admin disabled with garbage", func(c *Config) { c.Admin = Admin{Disabled: true, Listen: "nonsense"} }, "", ""},
		{"admin empty means default", func(c *Config) { c.Admin.Listen = "" }, "", ""},
		{"admin public", func(c *Config) { c.Admin.Listen = "0.0.0.0:9090" }, "", ""},
		{"admin bad", func(c *Config) { c.Admin.Listen = "9090" }, "admin.listen", "host:port"},
		{"admin same as server", func(c *Config) { c.Admin.Listen = c.Server.Listen }, "admin.listen", "must differ"},

		// tokens
		{"audience several", func(c *Config) { c.Tokens.Audience = []string{"a", "b"} }, "", ""},
		{"audience none", func(c *Config) { c.Tokens.Audience = nil }, "tokens.audience", "at least one"},
		{"audience blank", func(c *Config) { c.Tokens.Audience = []string{"a", " "} }, "tokens.audience[1]", "empty"},
		{"audience duplicate", func(c *Config) { c.Tokens.Audience = []string{"a", "a"} }, "tokens.audience[1]", "duplicate of tokens.audience[0]"},
		{"eddsa", func(c *Config) { c.Tokens.Algorithm = "EdDSA" }, "", ""},
		{"alg none", func(c *Config) { c.Tokens.Algorithm = "none" }, "tokens.algorithm", `"ES256" or "EdDSA"`},
		{"alg HS256", func(c *Config) { c.Tokens.Algorithm = "HS256" }, "tokens.algorithm", `"ES256" or "EdDSA"`},
		{"alg lower", func(c *Config) { c.Tokens.Algorithm = "es256" }, "tokens.algorithm", `"ES256" or "EdDSA"`},
		{"access 1h", func(c *Config) { c.Tokens.AccessTTL = d("1h") }, "", ""},
		{"access zero", func(c *Config) { c.Tokens.AccessTTL = 0 }, "tokens.access_ttl", "positive"},
		{"access 2h", func(c *Config) { c.Tokens.AccessTTL = d("2h") }, "tokens.access_ttl", "must be at most 1h (got 2h)"},
		{"refresh idle zero", func(c *Config) { c.Tokens.RefreshIdleTTL = 0 }, "tokens.refresh_idle_ttl", "positive"},
		{"refresh abs zero", func(c *Config) { c.Tokens.RefreshAbsoluteTTL = 0 }, "tokens.refresh_absolute_ttl", "positive"},
		{"refresh idle equal abs", func(c *Config) { c.Tokens.RefreshIdleTTL = d("90d") }, "", ""},
		{"refresh idle over abs", func(c *Config) { c.Tokens.RefreshIdleTTL = d("91d") }, "tokens.refresh_idle_ttl", "must not exceed tokens.refresh_absolute_ttl (91d > 90d)"},
		{"access over refresh abs", func(c *Config) {
			c.Tokens.RefreshIdleTTL, c.Tokens.RefreshAbsoluteTTL = d("10m"), d("10m")
		}, "tokens.access_ttl", "must not exceed tokens.refresh_absolute_ttl"},
		{"leeway zero", func(c *Config) { c.Tokens.ReuseLeeway = 0 }, "", ""},
		{"leeway 60s", func(c *Config) { c.Tokens.ReuseLeeway = d("60s") }, "", ""},
		{"leeway 61s", func(c *Config) { c.Tokens.ReuseLeeway = d("61s") }, "tokens.reuse_leeway", "must be at most 1m (got 1m1s)"},
		{"leeway negative", func(c *Config) { c.Tokens.ReuseLeeway = -1 }, "tokens.reuse_leeway", "at least 0s"},
		{"scope several", func(c *Config) { c.Tokens.Scope = "api notes:read" }, "", ""},
		{"scope empty", func(c *Config) { c.Tokens.Scope = "" }, "", ""},
		{"scope double space", func(c *Config) { c.Tokens.Scope = "api  notes" }, "tokens.scope", "RFC 6749"},
		{"scope quote", func(c *Config) { c.Tokens.Scope = `a"b` }, "tokens.scope", "RFC 6749"},

		// keys
		{"rotation off", func(c *Config) { c.Keys.RotationInterval = 0 }, "", ""},
		{"rotation 1h", func(c *Config) { c.Keys.RotationInterval = d("1h") }, "", ""},
		{"rotation 59m", func(c *Config) { c.Keys.RotationInterval = d("59m") }, "keys.rotation_interval", "at least 1h"},
		{"rotation under ttl sum", func(c *Config) {
			c.Tokens.AccessTTL, c.Keys.JWKSCacheTTL, c.Keys.RotationInterval = d("1h"), d("30m"), d("80m")
		}, "keys.rotation_interval", "at least 1h30m"},
		{"rotation negative", func(c *Config) { c.Keys.RotationInterval = -1 }, "keys.rotation_interval", "must be 0"},
		{"jwks zero", func(c *Config) { c.Keys.JWKSCacheTTL = 0 }, "keys.jwks_cache_ttl", "positive"},
		{"jwks 25h", func(c *Config) { c.Keys.JWKSCacheTTL = d("25h") }, "keys.jwks_cache_ttl", "at most 1d (got 25h)"},
		{"reload 500ms", func(c *Config) { c.Keys.ReloadInterval = d("500ms") }, "keys.reload_interval", "at least 1s"},

		// identity.password
		{"password 12..64", func(c *Config) { c.Identity.Password.MinLength, c.Identity.Password.MaxLength = 12, 64 }, "", ""},
		{"password min 7", func(c *Config) { c.Identity.Password.MinLength = 7 }, "identity.password.min_length", "at least 8"},
		{"password max 63", func(c *Config) { c.Identity.Password.MaxLength = 63 }, "identity.password.max_length", "at least 64"},
		{"password max under min", func(c *Config) { c.Identity.Password.MinLength, c.Identity.Password.MaxLength = 100, 80 }, "identity.password.max_length", "at least identity.password.min_length"},
		{"password max huge", func(c *Config) { c.Identity.Password.MaxLength = 1 << 20 }, "identity.password.max_length", "at most 4096"},
		{"argon2 stronger", func(c *Config) {
			c.Identity.Password.Argon2 = Argon2{MemoryKiB: 65536, Iterations: 3, Parallelism: 4}
		}, "", ""},
		{"argon2 memory low", func(c *Config) { c.Identity.Password.Argon2.MemoryKiB = 19455 }, "identity.password.argon2.memory_kib", "at least 19456"},
		{"argon2 memory huge", func(c *Config) { c.Identity.Password.Argon2.MemoryKiB = 1<<20 + 1 }, "identity.password.argon2.memory_kib", "at most 1048576"},
		{"argon2 iterations 1", func(c *Config) { c.Identity.Password.Argon2.Iterations = 1 }, "identity.password.argon2.iterations", "at least 2"},
		{"argon2 iterations huge", func(c *Config) { c.Identity.Password.Argon2.Iterations = 101 }, "identity.password.argon2.iterations", "at most 100"},
		{"argon2 parallelism 0", func(c *Config) { c.Identity.Password.Argon2.Parallelism = 0 }, "identity.password.argon2.parallelism", "at least 1"},
		{"argon2 parallelism 65", func(c *Config) { c.Identity.Password.Argon2.Parallelism = 65 }, "identity.password.argon2.parallelism", "at most 64"},
		{"hashes zero", func(c *Config) { c.Identity.Password.MaxConcurrentHashes = 0 }, "", ""},
		{"hashes negative", func(c *Config) { c.Identity.Password.MaxConcurrentHashes = -1 }, "identity.password.max_concurrent_hashes", "at least 0"},
		{"hashes huge", func(c *Config) { c.Identity.Password.MaxConcurrentHashes = 1025 }, "identity.password.max_concurrent_hashes", "at most 1024"},
		{"hash queue zero", func(c *Config) { c.Identity.Password.HashQueueTimeout = 0 }, "identity.password.hash_queue_timeout", "positive"},

		// identity.lockout
		{"lockout account 0", func(c *Config) { c.Identity.Lockout.AccountFailures = 0 }, "identity.lockout.account_failures", "at least 1"},
		{"lockout ip 0", func(c *Config) { c.Identity.Lockout.IPFailures = 0 }, "identity.lockout.ip_failures", "at least 1"},
		{"lockout window 0", func(c *Config) { c.Identity.Lockout.Window = 0 }, "identity.lockout.window", "positive"},
		// identity.mfa
		{"mfa issuer empty", func(c *Config) { c.Identity.MFA.TOTPIssuer = "" }, "identity.mfa.totp_issuer", "must not be empty"},
		{"mfa issuer colon", func(c *Config) { c.Identity.MFA.TOTPIssuer = "Notes:App" }, "identity.mfa.totp_issuer", "without a colon"},
		{"mfa issuer control", func(c *Config) { c.Identity.MFA.TOTPIssuer = "Notes\nApp" }, "identity.mfa.totp_issuer", "control characters"},
		{"mfa token ttl short", func(c *Config) { c.Identity.MFA.TokenTTL = Duration(time.Second) }, "identity.mfa.token_ttl", "between 30s and 30m"},
		{"mfa token ttl long", func(c *Config) { c.Identity.MFA.TokenTTL = Duration(time.Hour) }, "identity.mfa.token_ttl", "between 30s and 30m"},
		{"mfa attempts 0", func(c *Config) { c.Identity.MFA.MaxAttempts = 0 }, "identity.mfa.max_attempts", "at least 1"},
		{"mfa attempts 11", func(c *Config) { c.Identity.MFA.MaxAttempts = 11 }, "identity.mfa.max_attempts", "at most 10"},
		{"mfa user failures 0", func(c *Config) { c.Identity.MFA.UserFailures = 0 }, "identity.mfa.user_failures", "at least 1"},
		{"mfa window 0", func(c *Config) { c.Identity.MFA.Window = 0 }, "identity.mfa.window", "positive"},

		// identity plans and roles
		{"default plan without plans", func(c *Config) { c.Plans, c.Identity.DefaultPlan = nil, "anything" }, "", ""},
		{"default plan unknown", func(c *Config) { c.Identity.DefaultPlan = "gold" }, "identity.default_plan", `"gold" is not one of the plans (free, premium)`},
		{"default plan empty", func(c *Config) { c.Identity.DefaultPlan = "" }, "identity.default_plan", "empty"},
		{"default plan bad name", func(c *Config) { c.Plans, c.Identity.DefaultPlan = nil, "a,b" }, "identity.default_plan", "not a valid plan name"},
		{"default roles", func(c *Config) { c.Identity.DefaultRoles = []string{"user", "beta.tester"} }, "", ""},
		{"default role comma", func(c *Config) { c.Identity.DefaultRoles = []string{"a,b"} }, "identity.default_roles[0]", "not a valid role name"},
		{"default role empty", func(c *Config) { c.Identity.DefaultRoles = []string{""} }, "identity.default_roles[0]", "empty"},
		{"default role dup", func(c *Config) { c.Identity.DefaultRoles = []string{"a", "a"} }, "identity.default_roles[1]", "duplicate"},

		// audit, log
		{"retention zero", func(c *Config) { c.Audit.Retention = 0 }, "audit.retention", "positive"},
		{"log debug text", func(c *Config) { c.Log = Log{Level: "debug", Format: "text"} }, "", ""},
		{"log level", func(c *Config) { c.Log.Level = "trace" }, "log.level", `"debug", "info", "warn" or "error" (got "trace")`},
		{"log format", func(c *Config) { c.Log.Format = "logfmt" }, "log.format", `"json" or "text"`},

		// services
		{"service env", service(Service{ID: "notes-backend", SecretEnv: "NOTES_SECRET", Permissions: []string{"introspect"}}), "", ""},
		{"service hash", service(Service{ID: "ops", SecretHash: hash, Permissions: []string{"introspect", "admin"}}), "", ""},
		{"service no id", service(Service{SecretEnv: "S", Permissions: []string{"admin"}}), "services[0].id", "required"},
		{"service colon id", service(Service{ID: "a:b", SecretEnv: "S", Permissions: []string{"admin"}}), "services[0].id", "not a valid id"},
		{"service no secret", service(Service{ID: "a", Permissions: []string{"admin"}}), "services[0]", "needs one of secret_hash or secret_env"},
		{"service both secrets", service(Service{ID: "a", SecretHash: hash, SecretEnv: "S", Permissions: []string{"admin"}}), "services[0]", "only one"},
		{"service bcrypt hash", service(Service{ID: "a", SecretHash: "$2b$10$abcdefghijklmnopqrstuv", Permissions: []string{"admin"}}), "services[0].secret_hash", "argon2id PHC"},
		{"service plaintext secret", service(Service{ID: "a", SecretHash: "hunter2", Permissions: []string{"admin"}}), "services[0].secret_hash", "argon2id PHC"},
		{"service bad env", service(Service{ID: "a", SecretEnv: "1X", Permissions: []string{"admin"}}), "services[0].secret_env", "environment variable name"},
		{"service no perms", service(Service{ID: "a", SecretEnv: "S"}), "services[0].permissions", "at least one"},
		{"service bad perm", service(Service{ID: "a", SecretEnv: "S", Permissions: []string{"root"}}), "services[0].permissions[0]", `"introspect", "admin" or "transit" (got "root")`},
		{"service dup perm", service(Service{ID: "a", SecretEnv: "S", Permissions: []string{"admin", "admin"}}), "services[0].permissions[1]", "duplicate permission"},
		{"service dup id", func(c *Config) {
			s := Service{ID: "a", SecretEnv: "S", Permissions: []string{"admin"}}
			c.Services = []Service{s, s}
		}, "services[1].id", "duplicate of services[0].id"},

		// plans
		{"plan per day", func(c *Config) { c.Plans["free"] = "1000/d" }, "", ""},
		{"plan no unit", func(c *Config) { c.Plans["free"] = "100" }, "plans.free", "N/unit"},
		{"plan zero", func(c *Config) { c.Plans["free"] = "0/h" }, "plans.free", "positive"},
		{"plan weekly", func(c *Config) { c.Plans["free"] = "100/w" }, "plans.free", "s, m, h or d"},
		{"plan bad name", func(c *Config) { c.Plans["a b"] = "1/s" }, `plans["a b"]`, "not a valid plan name"},

		// upstreams
		{"upstream https path", func(c *Config) { c.Upstreams["api"] = Upstream{URL: "https://api.internal/base", Timeout: d("5s")} }, "", ""},
		{"upstream no url", func(c *Config) { c.Upstreams["api"] = Upstream{Timeout: d("5s")} }, "upstreams.api.url", "required"},
		{"upstream ftp", func(c *Config) { c.Upstreams["api"] = Upstream{URL: "ftp://h", Timeout: d("5s")} }, "upstreams.api.url", `scheme "ftp"`},
		{"upstream relative", func(c *Config) { c.Upstreams["api"] = Upstream{URL: "127.0.0.1:9000", Timeout: d("5s")} }, "upstreams.api.url", ""},
		{"upstream no host", func(c *Config) { c.Upstreams["api"] = Upstream{URL: "http:///x", Timeout: d("5s")} }, "upstreams.api.url", "with a host"},
		{"upstream userinfo", func(c *Config) { c.Upstreams["api"] = Upstream{URL: "http://u:p@h", Timeout: d("5s")} }, "upstreams.api.url", "user information"},
		{"upstream query", func(c *Config) { c.Upstreams["api"] = Upstream{URL: "http://h/?k=v", Timeout: d("5s")} }, "upstreams.api.url", "query or fragment"},
		{"upstream fragment", func(c *Config) { c.Upstreams["api"] = Upstream{URL: "http://h/#f", Timeout: d("5s")} }, "upstreams.api.url", "query or fragment"},
		{"upstream bad url", func(c *Config) { c.Upstreams["api"] = Upstream{URL: "http://h:x", Timeout: d("5s")} }, "upstreams.api.url", "not a valid URL"},
		{"upstream timeout zero is default", func(c *Config) { c.Upstreams["api"] = Upstream{URL: "http://h"} }, "", ""},
		{"upstream timeout negative", func(c *Config) { c.Upstreams["api"] = Upstream{URL: "http://h", Timeout: -1} }, "upstreams.api.timeout", "negative"},
		{"upstream timeout over write", func(c *Config) { c.Upstreams["api"] = Upstream{URL: "http://h", Timeout: d("61s")} }, "upstreams.api.timeout", "server.write_timeout"},
		{"upstream bad name", func(c *Config) { c.Upstreams["a/b"] = Upstream{URL: "http://h", Timeout: d("5s")} }, `upstreams["a/b"]`, "not a valid upstream name"},

		// routes
		{"route root", route(func(r *Route) { r.Path = "/" }), "", ""},
		{"route trailing slash", route(func(r *Route) { r.Path = "/v1/notes/" }), "", ""},
		{"route all methods", route(func(r *Route) { r.Methods = nil }), "", ""},
		{"route every method", route(func(r *Route) { r.Methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} }), "", ""},
		{"route params", route(func(r *Route) { r.Path = "/v1/{user_id}/notes/{Note2}" }), "", ""},
		{"route no path", route(func(r *Route) { r.Path = "" }), "routes[0].path", "required"},
		{"route relative", route(func(r *Route) { r.Path = "v1/notes" }), "routes[0].path", `start with "/"`},
		{"route empty segment", route(func(r *Route) { r.Path = "/v1//notes" }), "routes[0].path", "empty segment"},
		{"route dot dot", route(func(r *Route) { r.Path = "/v1/../admin" }), "routes[0].path", `".."`},
		{"route dot", route(func(r *Route) { r.Path = "/v1/./x" }), "routes[0].path", `".."`},
		{"route query", route(func(r *Route) { r.Path = "/v1?x=1" }), "routes[0].path", "'?'"},
		{"route space", route(func(r *Route) { r.Path = "/v1/a b" }), "routes[0].path", "spaces"},
		{"route percent", route(func(r *Route) { r.Path = "/v1/%2e%2e" }), "routes[0].path", "'%'"},
		{"route backslash", route(func(r *Route) { r.Path = `/v1\admin` }), "routes[0].path", `'\'`},
		{"route param digit", route(func(r *Route) { r.Path = "/v1/{1id}" }), "routes[0].path", "parameter"},
		{"route param empty", route(func(r *Route) { r.Path = "/v1/{}" }), "routes[0].path", "parameter"},
		{"route param dash", route(func(r *Route) { r.Path = "/v1/{note-id}" }), "routes[0].path", "parameter"},
		{"route param wildcard", route(func(r *Route) { r.Path = "/v1/{rest...}" }), "routes[0].path", "parameter"},
		{"route param partial", route(func(r *Route) { r.Path = "/v1/note-{id}" }), "routes[0].path", "whole segment"},
		{"route param unclosed", route(func(r *Route) { r.Path = "/v1/{id" }), "routes[0].path", "whole segment"},
		{"route param nested", route(func(r *Route) { r.Path = "/v1/{{id}}" }), "routes[0].path", "parameter"},
		{"route param twice", route(func(r *Route) { r.Path = "/v1/{id}/x/{id}" }), "routes[0].path", "appears twice"},
		{"route method lower", route(func(r *Route) { r.Methods = []string{"get"} }), "routes[0].methods[0]", `write "GET"`},
		{"route method trace", route(func(r *Route) { r.Methods = []string{"TRACE"} }), "routes[0].methods[0]", "must be one of"},
		{"route method dup", route(func(r *Route) { r.Methods = []string{"GET", "GET"} }), "routes[0].methods[1]", "duplicate method"},
		{"route no upstream", route(func(r *Route) { r.Upstream = "" }), "routes[0].upstream", "required"},
		{"route unknown upstream", route(func(r *Route) { r.Upstream = "nope" }), "routes[0].upstream", `"nope" is not one of the upstreams (api)`},
		{"route public", route(func(r *Route) { r.Access = AccessPublic }), "", ""},
		{"route empty access", route(func(r *Route) { r.Access = "" }), "", ""},
		{"route access admin", route(func(r *Route) { r.Access = "admin" }), "routes[0].access", `"public" or "authenticated"`},
		{"route public roles", route(func(r *Route) { r.Access, r.Roles = AccessPublic, []string{"admin"} }), "routes[0].roles", "access: public"},
		{"route public scopes", route(func(r *Route) { r.Access, r.Scopes = AccessPublic, []string{"notes"} }), "routes[0].scopes", "access: public"},
		{"route public mfa", route(func(r *Route) { r.Access, r.MFA = AccessPublic, "required" }), "routes[0].mfa", "access: public"},
		{"route public allow", route(func(r *Route) { r.Access, r.Allow = AccessPublic, "true" }), "routes[0].allow", "access: public"},
		{"route public quota", route(func(r *Route) { r.Access, r.Quota = AccessPublic, true }), "routes[0].quota", "access: public"},
		{"route public per user", route(func(r *Route) { r.Access, r.RateLimits = AccessPublic, []string{"1/s per user"} }), "routes[0].rate_limits[0]", `"per ip"`},
		{"route public per ip", route(func(r *Route) { r.Access, r.RateLimits = AccessPublic, []string{"1/s per ip", "100/m"} }), "", ""},
		{"route roles scopes mfa", route(func(r *Route) {
			r.Roles, r.Scopes, r.MFA = []string{"admin"}, []string{"notes:write"}, "required"
		}), "", ""},
		{"route bad role", route(func(r *Route) { r.Roles = []string{"admin users"} }), "routes[0].roles[0]", "not a valid role name"},
		{"route bad scope", route(func(r *Route) { r.Scopes = []string{"a b"} }), "routes[0].scopes[0]", "not a valid scope"},
		{"route mfa optional", route(func(r *Route) { r.MFA = "optional" }), "routes[0].mfa", `"required"`},
		{"route mfa_max_age without mfa", route(func(r *Route) { r.MFAMaxAge = Duration(time.Hour) }), "routes[0].mfa_max_age", "needs mfa: required"},
		{"route mfa_max_age too short", route(func(r *Route) { r.MFA, r.MFAMaxAge = "required", Duration(time.Second) }), "routes[0].mfa_max_age", "at least 1m"},
		{"route mfa_max_age negative", route(func(r *Route) { r.MFA, r.MFAMaxAge = "required", Duration(-time.Minute) }), "routes[0].mfa_max_age", "negative"},
		{"route body override", route(func(r *Route) { r.MaxBodyBytes = 10 << 20 }), "", ""},
		{"route body negative", route(func(r *Route) { r.MaxBodyBytes = -1 }), "routes[0].max_body_bytes", "negative"},
		{"route body huge", route(func(r *Route) { r.MaxBodyBytes = 2 << 30 }), "routes[0].max_body_bytes", "at most"},
		{"route bad limit", route(func(r *Route) { r.RateLimits = []string{"fast"} }), "routes[0].rate_limits[0]", "N/unit"},
		{"route dup name", func(c *Config) {
			c.Routes = append(c.Routes, Route{Name: c.Routes[0].Name, Path: "/other", Upstream: "api"})
		}, "routes[1].name", "duplicate route name"},
		{"route shadowed", func(c *Config) {
			c.Routes = []Route{
				{Name: "a", Path: "/v1/notes/{id}", Upstream: "api"},
				{Name: "b", Methods: []string{"GET"}, Path: "/v1/notes/{note}", Upstream: "api"},
			}
		}, "routes[1]", "unreachable: routes[0]"},
		{"route shadowed by two", func(c *Config) {
			c.Routes = []Route{
				{Name: "a", Methods: []string{"GET"}, Path: "/v1/notes/{id}", Upstream: "api"},
				{Name: "b", Methods: []string{"POST"}, Path: "/v1/notes/{x}", Upstream: "api"},
				{Name: "c", Methods: []string{"POST", "GET"}, Path: "/v1/notes/{y}", Upstream: "api"},
			}
		}, "routes[2]", "unreachable: routes[0] and routes[1] match every"},
		{"route shadowed by a catch-all", func(c *Config) {
			c.Routes = []Route{
				{Name: "a", Path: "/v1/notes/{id}", Upstream: "api"},
				{Name: "b", Path: "/v1/other", Upstream: "api"},
				{Name: "c", Path: "/v1/notes/{id}/", Upstream: "api"},
				{Name: "d", Methods: []string{"HEAD"}, Path: "/v1/notes/{note}", Upstream: "api"},
			}
		}, "routes[3]", "unreachable: routes[0] matches every"},
		{"route same path other method", func(c *Config) {
			c.Routes = append(c.Routes, Route{Name: "b", Methods: []string{"DELETE"}, Path: "/v1/notes/{id}", Upstream: "api"})
		}, "", ""},
		{"route broader after narrower", func(c *Config) {
			c.Routes = append(c.Routes, Route{Name: "b", Path: "/v1/notes/{id}", Upstream: "api"})
		}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(&c)
			ps := c.Validate()
			if tt.wantPath == "" {
				if len(ps) != 0 {
					t.Fatalf("want no problems, got:\n%v", Problems(ps))
				}
				return
			}
			if len(ps) != 1 {
				t.Fatalf("want one problem at %s, got %d:\n%v", tt.wantPath, len(ps), Problems(ps))
			}
			if ps[0].Path != tt.wantPath || !strings.Contains(ps[0].Message, tt.wantMsg) {
				t.Fatalf("got %s: %q; want %s: ...%q...", ps[0].Path, ps[0].Message, tt.wantPath, tt.wantMsg)
			}
			if ps[0].Line != 0 || ps[0].File != "" {
				t.Errorf("Validate set file/line %q:%d; it knows neither", ps[0].File, ps[0].Line)
			}
		})
	}
}

// Problem messages must never echo store, cache or KEK values: they may hold
// credentials, and `config check` output ends up in CI logs.
func TestValidateNeverEchoesSecrets(t *testing.T) {
	c := validConfig()
	c.Store = "mysql://u:dbsecret@h/db"
	c.Cache = "memcached://:cachesecret@h"
	c.KEK = "kek-secret-value"
	for _, p := range c.Validate() {
		for _, s := range []string{"dbsecret", "cachesecret", "kek-secret-value"} {
			if strings.Contains(p.Message, s) {
				t.Errorf("%s: message %q echoes a secret", p.Path, p.Message)
			}
		}
	}
}

func TestValidateIsPure(t *testing.T) {
	c := validConfig()
	c.Routes[0].Access = ""
	c.Routes[0].Name = ""
	before := c.clone()
	c.Validate()
	if c.Routes[0].Access != before.Routes[0].Access || c.Routes[0].Name != before.Routes[0].Name {
		t.Fatal("Validate changed the config")
	}
}

func TestValidateWith(t *testing.T) {
	c := validConfig()
	c.Tokens.Algorithm = "HS256"
	var saw *Config
	ps := c.ValidateWith(nil, func(got *Config) []Problem {
		saw = got
		return []Problem{{Path: "routes[0].allow", Message: "does not compile"}}
	})
	if saw != &c {
		t.Error("check did not receive the config")
	}
	if len(ps) != 2 || ps[0].Path != "tokens.algorithm" || ps[1].Path != "routes[0].allow" {
		t.Fatalf("got %v", Problems(ps))
	}
}

func TestApplyDefaults(t *testing.T) {
	var c Config
	c.Upstreams = map[string]Upstream{"api": {URL: "http://h"}, "slow": {URL: "http://s", Timeout: Duration(time.Second)}}
	c.Routes = []Route{{Path: "/a", Upstream: "api"}, {Methods: []string{"GET", "POST"}, Path: "/b", Name: "", Access: AccessPublic}}
	c.ApplyDefaults()
	c.ApplyDefaults() // idempotent
	switch {
	case c.Admin.Listen != "127.0.0.1:9090":
		t.Errorf("admin.listen = %q", c.Admin.Listen)
	case c.Identity.Password.Blocklist == nil || !*c.Identity.Password.Blocklist:
		t.Error("blocklist not defaulted to true")
	case c.Audit.Log == nil || !*c.Audit.Log || c.Audit.Store == nil || !*c.Audit.Store:
		t.Error("audit switches not defaulted to true")
	case c.Identity.Password.MaxConcurrentHashes < 1:
		t.Errorf("max_concurrent_hashes = %d", c.Identity.Password.MaxConcurrentHashes)
	case c.Upstreams["api"].Timeout.D() != 30*time.Second || c.Upstreams["slow"].Timeout.D() != time.Second:
		t.Errorf("upstream timeouts = %v", c.Upstreams)
	case c.Routes[0].Name != "ANY /a" || c.Routes[1].Name != "GET,POST /b":
		t.Errorf("route names = %q, %q", c.Routes[0].Name, c.Routes[1].Name)
	case c.Routes[0].Access != AccessAuthenticated || c.Routes[1].Access != AccessPublic:
		t.Errorf("route access = %q, %q", c.Routes[0].Access, c.Routes[1].Access)
	}
	// An explicit false is kept.
	c.Identity.Password.Blocklist = ptr(false)
	c.ApplyDefaults()
	if *c.Identity.Password.Blocklist {
		t.Error("ApplyDefaults overwrote an explicit false")
	}
}
