package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/httpapi"
	"github.com/gatehouse-dev/gatehouse/internal/social"
	"golang.org/x/oauth2"
)

// openSocial builds social login from identity.oidc, reading each provider's
// client secret from its environment variable or file. It returns nil, nil
// when no provider is configured. Discovery happens later, in Run.
func (a *app) openSocial(getenv func(string) string) (*social.Service, error) {
	cfg := a.cfg
	if len(cfg.Identity.OIDC.Providers) == 0 {
		return nil, nil
	}
	var ps []social.ProviderConfig
	for i, p := range cfg.Identity.OIDC.Providers {
		path := fmt.Sprintf("identity.oidc.providers[%d]", i)
		var secret string
		switch {
		case p.ClientSecretEnv != "":
			if secret = getenv(p.ClientSecretEnv); secret == "" {
				return nil, fmt.Errorf("%s.client_secret_env: the environment variable %s is empty or unset", path, p.ClientSecretEnv)
			}
		case p.ClientSecretFile != "":
			b, err := os.ReadFile(p.ClientSecretFile)
			if err != nil {
				return nil, fmt.Errorf("%s.client_secret_file: %w", path, err)
			}
			if secret = strings.TrimRight(string(b), "\r\n"); secret == "" {
				return nil, fmt.Errorf("%s.client_secret_file: the file is empty", path)
			}
		}
		style := oauth2.AuthStyleAutoDetect
		switch p.TokenAuthMethod {
		case "client_secret_basic":
			style = oauth2.AuthStyleInHeader
		case "client_secret_post":
			style = oauth2.AuthStyleInParams
		}
		ps = append(ps, social.ProviderConfig{
			Name: p.Name, Issuer: p.Issuer, ClientID: p.ClientID, ClientSecret: secret,
			Scopes: p.Scopes, RedirectURIs: p.RedirectURIs, LinkByEmail: p.LinkByEmail(), AuthStyle: style,
		})
	}
	return social.New(a.db, a.accounts, a.sealer, a.audit, ps, social.Options{Issuer: cfg.Issuer, Now: a.now, Logger: a.log})
}

// socialLogin is s as the handler's optional dependency: a nil service must
// be a nil interface, not an interface holding a nil pointer.
func socialLogin(s *social.Service) httpapi.SocialLogin {
	if s == nil {
		return nil
	}
	return s
}
