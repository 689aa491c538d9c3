package main

import (
	"fmt"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/httpapi"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/mailer"
)

// openEmail builds the mailer and the email flows when smtp.host is set.
// The SMTP password only ever comes from the environment.
func (a *app) openEmail(getenv func(string) string) error {
	cfg := a.cfg
	s := cfg.SMTP
	if s.Host == "" {
		return nil
	}
	pw := ""
	if s.PasswordEnv != "" {
		if pw = getenv(s.PasswordEnv); pw == "" {
			return fmt.Errorf("smtp.password_env: environment variable %s is empty", s.PasswordEnv)
		}
	}
	m, err := mailer.New(mailer.Config{
		Host: s.Host, Port: s.Port, TLS: s.TLS, Username: s.Username, Password: pw,
		From: s.From, Timeout: s.Timeout.D(),
	}, mailer.Options{Logger: a.log, Registerer: a.metrics.Registry()})
	if err != nil {
		return err
	}
	e := cfg.Identity.Email
	perAddr, err := rate(e.SendPerAddress)
	if err != nil {
		return fmt.Errorf("identity.email.send_per_address: %w", err)
	}
	perIP, err := rate(e.SendPerIP)
	if err != nil {
		return fmt.Errorf("identity.email.send_per_ip: %w", err)
	}
	a.mailer = m
	a.email = identity.NewEmailFlows(a.accounts, a.db, a.db, m, identity.EmailOptions{
		VerifyURL: e.VerifyURL, ResetURL: e.ResetURL, TTL: e.CodeTTL.D(),
		PerAddress: perAddr, PerIP: perIP,
	})
	return nil
}

func rate(s string) (identity.Rate, error) {
	r, err := config.ParseRate(s)
	if err != nil {
		return identity.Rate{}, err
	}
	return identity.Rate{Count: int(r.Count), Period: r.Period}, nil
}

// emailFlows is the Deps value: nil (not a typed nil) without smtp.
func (a *app) emailFlows() httpapi.EmailFlows {
	if a.email == nil {
		return nil
	}
	return a.email
}
