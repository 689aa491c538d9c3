package config

import (
	"slices"
	"strings"
	"testing"
)

func TestValidateOIDC(t *testing.T) {
	t.Parallel()
	good := func() OIDCProvider {
		return OIDCProvider{
			Name: "google", Issuer: "https://accounts.google.com", ClientID: "id", ClientSecretEnv: "GOOGLE_SECRET",
			Scopes: []string{"openid", "email"}, RedirectURIs: []string{"com.example.app:/oauth2redirect"},
			AllowLinkByEmail: ptr(true), TokenAuthMethod: "auto",
		}
	}
	p := func(f func(*OIDCProvider)) func(*Config) {
		return func(c *Config) {
			g := good()
			f(&g)
			c.Identity.OIDC.Providers = []OIDCProvider{g}
		}
	}
	const at = "identity.oidc.providers[0]"
	tests := []struct {
		name     string
		mutate   func(*Config)
		wantPath string
		wantMsg  string
	}{
		{"good", p(func(*OIDCProvider) {}), "", ""},
		{"secret file", p(func(o *OIDCProvider) { o.ClientSecretEnv, o.ClientSecretFile = "", "/run/s" }), "", ""},
		{"public client", p(func(o *OIDCProvider) { o.ClientSecretEnv = "" }), "", ""},
		{"loopback issuer", p(func(o *OIDCProvider) { o.Issuer = "http://127.0.0.1:5556/dex" }), "", ""},
		{"all redirect kinds", p(func(o *OIDCProvider) {
			o.RedirectURIs = []string{"com.example.app:/cb", "com.example.app:cb", "https://app.example.com/cb", "http://127.0.0.1/cb", "http://[::1]:8080/cb"}
		}), "", ""},
		{"two providers", func(c *Config) {
			a, b := good(), good()
			b.Name = "apple"
			c.Identity.OIDC.Providers = []OIDCProvider{a, b}
		}, "", ""},

		{"no name", p(func(o *OIDCProvider) { o.Name = "" }), at + ".name", "required"},
		{"name upper", p(func(o *OIDCProvider) { o.Name = "Google" }), at + ".name", "lower-case"},
		{"name slash", p(func(o *OIDCProvider) { o.Name = "a/b" }), at + ".name", "path segment"},
		{"name long", p(func(o *OIDCProvider) { o.Name = strings.Repeat("a", 65) }), at + ".name", "1 to 64"},
		{"duplicate name", func(c *Config) { c.Identity.OIDC.Providers = []OIDCProvider{good(), good()} }, "identity.oidc.providers[1].name", "duplicate of identity.oidc.providers[0]"},
		{"no issuer", p(func(o *OIDCProvider) { o.Issuer = "" }), at + ".issuer", "required"},
		{"http issuer", p(func(o *OIDCProvider) { o.Issuer = "http://accounts.example.com" }), at + ".issuer", "https"},
		{"localhost issuer", p(func(o *OIDCProvider) { o.Issuer = "http://localhost:5556" }), at + ".issuer", "https"},
		{"issuer query", p(func(o *OIDCProvider) { o.Issuer = "https://a.example.com/?x=1" }), at + ".issuer", "no query"},
		{"issuer relative", p(func(o *OIDCProvider) { o.Issuer = "accounts.example.com" }), at + ".issuer", "absolute"},
		{"no client id", p(func(o *OIDCProvider) { o.ClientID = "" }), at + ".client_id", "required"},
		{"both secrets", p(func(o *OIDCProvider) { o.ClientSecretFile = "/run/s" }), at, "at most one"},
		{"bad env name", p(func(o *OIDCProvider) { o.ClientSecretEnv = "A B" }), at + ".client_secret_env", "environment variable"},
		{"no openid", p(func(o *OIDCProvider) { o.Scopes = []string{"email"} }), at + ".scopes", "openid"},
		{"bad scope", p(func(o *OIDCProvider) { o.Scopes = []string{"openid", `a"b`} }), at + ".scopes[1]", "not a valid scope"},
		{"no redirect", p(func(o *OIDCProvider) { o.RedirectURIs = nil }), at + ".redirect_uris", "at least one"},
		{"redirect localhost", p(func(o *OIDCProvider) { o.RedirectURIs = []string{"http://localhost:8080/cb"} }), at + ".redirect_uris[0]", "loopback IP"},
		{"redirect http host", p(func(o *OIDCProvider) { o.RedirectURIs = []string{"http://app.example.com/cb"} }), at + ".redirect_uris[0]", "loopback IP"},
		{"redirect fragment", p(func(o *OIDCProvider) { o.RedirectURIs = []string{"https://app.example.com/cb#x"} }), at + ".redirect_uris[0]", "fragment"},
		{"redirect javascript", p(func(o *OIDCProvider) { o.RedirectURIs = []string{"javascript:alert(1)"} }), at + ".redirect_uris[0]", "reverse-domain"},
		{"redirect data", p(func(o *OIDCProvider) { o.RedirectURIs = []string{"data:text/html,x"} }), at + ".redirect_uris[0]", "reverse-domain"},
		{"redirect relative", p(func(o *OIDCProvider) { o.RedirectURIs = []string{"/cb"} }), at + ".redirect_uris[0]", "absolute"},
		{"redirect userinfo", p(func(o *OIDCProvider) { o.RedirectURIs = []string{"https://u:p@app.example.com/cb"} }), at + ".redirect_uris[0]", "user info"},
		{"redirect https no host", p(func(o *OIDCProvider) { o.RedirectURIs = []string{"https:/cb"} }), at + ".redirect_uris[0]", "host"},
		{"redirect duplicate", p(func(o *OIDCProvider) { o.RedirectURIs = []string{"com.example.app:/cb", "com.example.app:/cb"} }), at + ".redirect_uris[1]", "duplicate"},
		{"bad auth method", p(func(o *OIDCProvider) { o.TokenAuthMethod = "private_key_jwt" }), at + ".token_auth_method", `"auto"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
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
		})
	}
}

// A provider from YAML gets its defaults, and a problem its line.
func TestParseOIDC(t *testing.T) {
	t.Parallel()
	src := minimal + `identity:
  oidc:
    providers:
      - name: google
        issuer: https://accounts.google.com
        client_id: abc
        client_secret_env: GOOGLE_SECRET
        redirect_uris: [com.example.app:/cb]
`
	c, err := Parse([]byte(src), "g.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	p := c.Identity.OIDC.Providers[0]
	if !slices.Equal(p.Scopes, []string{"openid", "email", "profile"}) || !p.LinkByEmail() || p.TokenAuthMethod != "auto" {
		t.Fatalf("defaults not applied: %+v", p)
	}
	r := c.Redacted()
	r.Identity.OIDC.Providers[0].Scopes[0] = "changed"
	if c.Identity.OIDC.Providers[0].Scopes[0] != "openid" {
		t.Fatal("Redacted shares the providers with the original")
	}
	_, err = Parse([]byte(strings.Replace(src, "com.example.app:/cb", "http://localhost/cb", 1)), "g.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "identity.oidc.providers[0].redirect_uris[0]") || !strings.Contains(err.Error(), "g.yaml:") {
		t.Fatalf("want a located problem, got %v", err)
	}
}
