package tlsutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"go.uber.org/zap"
)

// ACMEOptions configure NewACME. Domains and StorageDir are required, and at least
// one of HTTP01 and TLSALPN01 must be set.
type ACMEOptions struct {
	// Domains are the names the certificate covers; the first one is also served
	// to clients that send no SNI.
	Domains []string
	// Email is the ACME account contact (expiry and incident notices). Optional.
	Email string
	// CA is the ACME directory URL. Empty means Let's Encrypt production.
	CA string
	// TrustedRoots, if set, are the only roots trusted for the ACME server's own
	// HTTPS endpoint (a private CA, or Pebble in tests). Nil means the system roots.
	TrustedRoots *x509.CertPool
	// StorageDir holds the account, keys, certificates, OCSP staples and locks.
	// Replicas that share it (a shared volume) share certificates, coordinate
	// renewals through its lock files and answer each other's challenges.
	StorageDir string
	// ReuseKey keeps the certificate's private key across renewals, so an SPKI pin
	// stays valid. Off by default: a fresh key per certificate limits the damage
	// of an unnoticed key theft, which matters more when nobody pins.
	ReuseKey bool
	// HTTP01 and TLSALPN01 enable the two challenge types. HTTP-01 is answered by
	// the plain-HTTP listener (HandleHTTPChallenge); TLS-ALPN-01 by the HTTPS
	// listener (GetCertificate with the acme-tls/1 protocol).
	HTTP01, TLSALPN01 bool
	// ListenHost, HTTPPort and TLSPort are where this process's own HTTP and HTTPS
	// listeners are bound. certmagic looks there before starting its own challenge
	// listener; finding them taken, it relies on ours. Zero ports mean 80 and 443.
	ListenHost        string
	HTTPPort, TLSPort int
	// Logger receives issuance, renewal and failure events. Nil discards.
	Logger *slog.Logger
	// OnEvent, optional, is called for every certificate lifecycle event (see
	// ACMEEvent), e.g. to record renewal failures in the audit log.
	OnEvent func(ACMEEvent)
}

// ACMEEvent is a certificate lifecycle event: "cert_obtaining", "cert_obtained",
// "cert_failed" (issuance or renewal failed) or "cert_ocsp_revoked".
type ACMEEvent struct {
	Name       string
	Identifier string
	Renewal    bool
	Err        error
}

// ACME obtains and renews certificates with an ACME CA (certmagic). It is a
// CertSource and safe for concurrent use.
type ACME struct {
	domains []string
	storage string
	cache   *certmagic.Cache
	magic   *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	log     *slog.Logger
	stop    sync.Once
}

var _ CertSource = (*ACME)(nil)

// NewACME configures certificate management. Nothing is requested until Manage.
func NewACME(opts ACMEOptions) (*ACME, error) {
	if len(opts.Domains) == 0 {
		return nil, errors.New("tlsutil: acme: no domains")
	}
	if opts.StorageDir == "" {
		return nil, errors.New("tlsutil: acme: no storage directory")
	}
	if !opts.HTTP01 && !opts.TLSALPN01 {
		return nil, errors.New("tlsutil: acme: no challenge type enabled")
	}
	a := &ACME{domains: slices.Clone(opts.Domains), storage: opts.StorageDir, log: opts.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	// certmagic logs through zap; its events are what we report, through slog.
	nop := zap.NewNop()
	var magic *certmagic.Config
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           nop,
	})
	magic = certmagic.New(a.cache, certmagic.Config{
		Storage:           &certmagic.FileStorage{Path: opts.StorageDir},
		ReusePrivateKeys:  opts.ReuseKey,
		DefaultServerName: opts.Domains[0],
		Logger:            nop,
		OnEvent: func(ctx context.Context, name string, data map[string]any) error {
			a.event(name, data, opts.OnEvent)
			return nil
		},
	})
	httpPort, tlsPort := opts.HTTPPort, opts.TLSPort
	if httpPort == 0 {
		httpPort = 80
	}
	if tlsPort == 0 {
		tlsPort = 443
	}
	ca := opts.CA
	if ca == "" {
		ca = certmagic.LetsEncryptProductionCA
	}
	a.issuer = certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
		CA: ca,
		// Why TestCA is the CA itself: certmagic otherwise retries failed orders
		// against a staging CA whose certificates no client trusts.
		TestCA:                  ca,
		Email:                   opts.Email,
		Agreed:                  true,
		DisableHTTPChallenge:    !opts.HTTP01,
		DisableTLSALPNChallenge: !opts.TLSALPN01,
		ListenHost:              opts.ListenHost,
		AltHTTPPort:             httpPort,
		AltTLSALPNPort:          tlsPort,
		TrustedRoots:            opts.TrustedRoots,
		Logger:                  nop,
	})
	magic.Issuers = []certmagic.Issuer{a.issuer}
	a.magic = magic
	return a, nil
}

func (a *ACME) event(name string, data map[string]any, observer func(ACMEEvent)) {
	switch name {
	case "cert_obtaining", "cert_obtained", "cert_failed", "cert_ocsp_revoked":
	default:
		return
	}
	e := ACMEEvent{Name: name}
	e.Identifier, _ = data["identifier"].(string)
	e.Renewal, _ = data["renewal"].(bool)
	if err, ok := data["error"].(error); ok {
		e.Err = err
	}
	switch name {
	case "cert_failed":
		msg := "tls certificate issuance failed"
		if e.Renewal {
			msg = "tls certificate renewal failed; the current certificate keeps serving until it expires"
		}
		a.log.Error(msg, "identifier", e.Identifier, "error", fmt.Sprint(e.Err))
	case "cert_ocsp_revoked":
		a.log.Error("tls certificate revoked according to OCSP; replacing it", "identifier", e.Identifier)
	case "cert_obtained":
		a.log.Info("tls certificate obtained", "identifier", e.Identifier, "renewal", e.Renewal)
	}
	if observer != nil {
		observer(e)
	}
}

// Manage loads the certificates from storage, or obtains them, and keeps them
// renewed in the background until Stop. It returns once every domain has a
// certificate or an issuance attempt failed; on failure certmagic keeps retrying
// in the background (with backoff) until ctx ends, and the error is also
// reported as a "cert_failed" event.
func (a *ACME) Manage(ctx context.Context) error {
	if err := a.magic.ManageSync(ctx, a.domains); err != nil {
		// ManageSync gives up after one attempt; hand over to background retries.
		if aerr := a.magic.ManageAsync(ctx, a.domains); aerr != nil {
			return fmt.Errorf("tlsutil: acme: %w", errors.Join(err, aerr))
		}
		return fmt.Errorf("tlsutil: acme: %w", err)
	}
	return nil
}

// Load puts the certificates already in storage into service without contacting
// the CA (for `gatehouse pins`, which must not order certificates). It fails when
// a domain has none yet.
func (a *ACME) Load(ctx context.Context) error {
	for _, d := range a.domains {
		if _, err := a.magic.CacheManagedCertificate(ctx, d); err != nil {
			return fmt.Errorf("tlsutil: acme: load %s from storage: %w", d, err)
		}
	}
	return nil
}

// GetCertificate serves the managed certificate, or the TLS-ALPN-01 challenge
// certificate when the client asks for the acme-tls/1 protocol.
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return a.magic.GetCertificate(hello)
}

// HandleHTTPChallenge answers an ACME HTTP-01 challenge request (from this
// replica's order or, through the shared storage, any other's) and reports
// whether r was one.
func (a *ACME) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	return a.issuer.HandleHTTPChallenge(w, r)
}

// ServerConfig is ServerConfig with the acme-tls/1 protocol added when TLS-ALPN-01
// is enabled.
func (a *ACME) ServerConfig(minVersion string) (*tls.Config, error) {
	cfg, err := ServerConfig(a, minVersion)
	if err != nil {
		return nil, err
	}
	if !a.issuer.DisableTLSALPNChallenge {
		// Last: a normal client never offers acme-tls/1, and a validating CA offers
		// nothing else, so the order changes no real negotiation.
		cfg.NextProtos = append(cfg.NextProtos, acmez.ACMETLS1Protocol)
	}
	return cfg, nil
}

// Leaf returns the certificate currently served for the first domain (the one
// expiring last when several are cached), or nil before one is obtained.
func (a *ACME) Leaf() *x509.Certificate {
	var best *x509.Certificate
	for _, c := range a.cache.AllMatchingCertificates(a.domains[0]) {
		if c.Leaf != nil && (best == nil || c.Leaf.NotAfter.After(best.NotAfter)) {
			best = c.Leaf
		}
	}
	return best
}

// storageDir is the shared storage directory.
func (a *ACME) storageDir() string { return a.storage }

// Stop ends background renewal. It is safe to call more than once.
func (a *ACME) Stop() {
	a.stop.Do(a.cache.Stop)
}

// ListenPort returns the numeric port of a host:port listen address, or 0.
func ListenPort(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return 0
	}
	return n
}

// Expiry returns the time left before leaf expires at now (negative once
// expired), for the certificate expiry metric. A nil leaf is zero.
func Expiry(leaf *x509.Certificate, now time.Time) time.Duration {
	if leaf == nil {
		return 0
	}
	return leaf.NotAfter.Sub(now)
}
