package main

import (
	"net"

	"github.com/gatehouse-dev/gatehouse/internal/httpapi"
	"github.com/gatehouse-dev/gatehouse/internal/passkey"
)

// openPasskeys builds the WebAuthn relying party when identity.webauthn.rp_id
// is set; otherwise passkeys stay off (a.passkeys nil).
func (a *app) openPasskeys() error {
	w := a.cfg.Identity.WebAuthn
	if w.RPID == "" {
		return nil
	}
	svc, err := passkey.New(passkey.Config{
		RPID: w.RPID, RPDisplayName: w.RPDisplayName, Origins: w.RPOrigins, Timeout: w.Timeout.D(),
	}, a.db, a.accounts, a.audit, passkey.Options{Now: a.now, Logger: a.log})
	if err != nil {
		return err
	}
	a.passkeys = svc
	return nil
}

// passkeyAPI is a.passkeys for httpapi.Deps: a nil interface (not a nil
// pointer in one) when passkeys are off, so the endpoints answer 404.
func (a *app) passkeyAPI() httpapi.Passkeys {
	if a.passkeys == nil {
		return nil
	}
	return a.passkeys
}

// passkeyAssertions is the passkey service as the MFA grant sees it; nil
// when passkeys are off (the grant then refuses webauthn_assertion).
func (a *app) passkeyAssertions() httpapi.MFAAssertions {
	if a.passkeys == nil {
		return nil
	}
	return a.passkeys
}

// demoPasskeyOrigin is the origin a browser on this machine has when it opens
// the demo's HTTPS address as https://localhost:PORT.
func demoPasskeyOrigin(httpsAddr string) string {
	_, port, err := net.SplitHostPort(httpsAddr)
	if err != nil || port == "443" {
		return "https://localhost"
	}
	return "https://localhost:" + port
}
