package config

import (
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// Mask replaces secret values in Redacted copies and log output.
const Mask = "REDACTED"

// Redacted returns a deep copy that is safe to print or log: passwords in the
// store, cache and upstream URLs (userinfo and password-like query parameters),
// a base64key:// KEK and service secret hashes are replaced by Mask. Names of
// environment variables and file paths are kept: they are not secrets.
func (c *Config) Redacted() Config {
	r := c.clone()
	r.Store = redactURL(r.Store)
	r.Cache = redactURL(r.Cache)
	if sch, _, ok := strings.Cut(r.KEK, "://"); ok && sch == "base64key" {
		// The key itself is in the URL.
		r.KEK = "base64key://" + Mask
	} else {
		r.KEK = redactURL(r.KEK)
	}
	for i := range r.Services {
		if r.Services[i].SecretHash != "" {
			// A hash is not the secret, but it allows offline guessing.
			r.Services[i].SecretHash = Mask
		}
	}
	for name, u := range r.Upstreams {
		u.URL = redactURL(u.URL)
		r.Upstreams[name] = u
	}
	return r
}

// LogValue logs a summary of the configuration with secrets masked, so that
// passing a Config to slog never leaks a database password.
func (c Config) LogValue() slog.Value {
	r := c.Redacted()
	return slog.GroupValue(
		slog.String("issuer", r.Issuer),
		slog.String("store", r.Store),
		slog.String("cache", r.Cache),
		slog.String("kek", r.KEK),
		slog.String("listen", r.Server.Listen),
		slog.String("admin_listen", r.Admin.Listen),
		slog.Bool("admin_disabled", r.Admin.Disabled),
		slog.Int("services", len(r.Services)),
		slog.Int("upstreams", len(r.Upstreams)),
		slog.Int("routes", len(r.Routes)),
	)
}

// sensitiveParams are query parameters that carry credentials in database and
// cache URLs (libpq's password and sslpassword, and generic spellings).
var sensitiveParams = []string{"password", "sslpassword", "pass", "pwd", "secret", "token", "auth", "key", "access_key", "secret_key"}

// redactURL masks the password in a URL's userinfo and the values of
// password-like query parameters. A value that does not parse as a URL is masked
// whole: it may be a credential pasted into the wrong place.
func redactURL(s string) string {
	if s == "" || s == "memory" {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return Mask
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Mask)
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for k := range q {
			if slices.Contains(sensitiveParams, strings.ToLower(k)) {
				q[k] = []string{Mask}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// clone returns a deep copy: no slice, map or pointer is shared with c.
func (c *Config) clone() Config {
	r := *c
	r.Server.TrustedProxies = slices.Clone(c.Server.TrustedProxies)
	r.Tokens.Audience = slices.Clone(c.Tokens.Audience)
	r.Identity.DefaultRoles = slices.Clone(c.Identity.DefaultRoles)
	r.Identity.Password.Blocklist = clonePtr(c.Identity.Password.Blocklist)
	r.Identity.OIDC = c.Identity.OIDC.clone()
	r.Audit.Log = clonePtr(c.Audit.Log)
	r.Audit.Store = clonePtr(c.Audit.Store)
	r.Plans = maps.Clone(c.Plans)
	r.Upstreams = maps.Clone(c.Upstreams)
	if c.Services != nil {
		r.Services = make([]Service, len(c.Services))
		for i, s := range c.Services {
			s.Permissions = slices.Clone(s.Permissions)
			r.Services[i] = s
		}
	}
	if c.Routes != nil {
		r.Routes = make([]Route, len(c.Routes))
		for i, rt := range c.Routes {
			rt.Methods = slices.Clone(rt.Methods)
			rt.Roles = slices.Clone(rt.Roles)
			rt.Scopes = slices.Clone(rt.Scopes)
			rt.RateLimits = slices.Clone(rt.RateLimits)
			r.Routes[i] = rt
		}
	}
	return r
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// LogValue logs a service credential without its secret hash.
func (s Service) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", s.ID),
		slog.Bool("secret_hash", s.SecretHash != ""),
		slog.String("secret_env", s.SecretEnv),
		slog.Any("permissions", s.Permissions),
	)
}
