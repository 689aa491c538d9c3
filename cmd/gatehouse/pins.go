package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/tlsutil"
)

// Audit event types of the transport. (They live here until internal/audit
// lists them.)
const (
	eventCertificateFailed   = "tls_certificate_failed"
	eventServingKeyUnpinned  = "tls_serving_key_unpinned"
	pinsJWSType              = "gatehouse-pins+jwt"
	pinsCacheTTL             = 5 * time.Minute
	pinCheckInterval         = time.Minute
	defaultPinValidity       = 90 * 24 * time.Hour
	pinSetExpiryRoundingUnit = 24 * time.Hour
)

// leafSource is a certificate source that can say which certificate it serves.
type leafSource interface {
	tlsutil.CertSource
	Leaf() *x509.Certificate
}

// transport is what serve and pins build from server.tls.
type transport struct {
	source    leafSource
	acme      *tlsutil.ACME // nil when the certificate comes from files
	backupPin string        // "" without server.tls.backup_key_file
}

// newTransport opens the certificate source and the backup key. With ACME it
// configures certmagic but requests nothing; call acme.Manage (serve) or
// acme.Load (pins).
func newTransport(cfg *config.Config, log *slog.Logger, rec *audit.Recorder) (*transport, error) {
	t := &transport{}
	tc := cfg.Server.TLS
	if tc.ACME.On() {
		var roots *x509.CertPool
		if tc.ACME.CARoots != "" {
			pem, err := os.ReadFile(tc.ACME.CARoots)
			if err != nil {
				return nil, fmt.Errorf("tls: acme ca_roots: %w", err)
			}
			roots = x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("tls: acme ca_roots %s: no PEM certificate", tc.ACME.CARoots)
			}
		}
		host, _, _ := net.SplitHostPort(cfg.Server.Listen)
		a, err := tlsutil.NewACME(tlsutil.ACMEOptions{
			Domains:      tc.ACME.Domains,
			Email:        tc.ACME.Email,
			CA:           tc.ACME.CA,
			TrustedRoots: roots,
			StorageDir:   tc.ACME.Storage,
			ReuseKey:     tc.ACME.ReuseKey,
			HTTP01:       slices.Contains(tc.ACME.Challenges, config.ChallengeHTTP01),
			TLSALPN01:    slices.Contains(tc.ACME.Challenges, config.ChallengeTLSALPN01),
			ListenHost:   host,
			HTTPPort:     tlsutil.ListenPort(cfg.Server.HTTPListen),
			TLSPort:      tlsutil.ListenPort(cfg.Server.Listen),
			Logger:       log,
			OnEvent: func(e tlsutil.ACMEEvent) {
				if e.Name != "cert_failed" || rec == nil {
					return
				}
				rec.Record(context.Background(), store.Event{Type: eventCertificateFailed, Detail: map[string]string{
					"identifier": e.Identifier, "renewal": fmt.Sprint(e.Renewal), "error": fmt.Sprint(e.Err),
				}})
			},
		})
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		t.source, t.acme = a, a
	} else {
		fc, err := tlsutil.NewFileCerts(tc.CertFile, tc.KeyFile, tlsutil.FileCertOptions{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		t.source = fc
	}
	if tc.BackupKeyFile != "" {
		pub, created, err := tlsutil.EnsureBackupKey(tc.BackupKeyFile)
		if err != nil {
			t.close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		if t.backupPin, err = tlsutil.PublicKeyPin(pub); err != nil {
			t.close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		if created {
			log.Warn("created the TLS backup key; back it up now, its pin is published to apps",
				"backup_key_file", tc.BackupKeyFile, "pin", t.backupPin)
		}
	}
	return t, nil
}

func (t *transport) close() {
	if t.acme != nil {
		t.acme.Stop()
	}
}

// serverConfig is the public listener's TLS configuration.
func (t *transport) serverConfig(minVersion string) (*tls.Config, error) {
	if t.acme != nil {
		return t.acme.ServerConfig(minVersion)
	}
	return tlsutil.ServerConfig(t.source, minVersion)
}

// pinHosts are server.tls.pins.hosts, or by default the issuer's host and the
// ACME domains.
func pinHosts(cfg *config.Config) []string {
	if len(cfg.Server.TLS.Pins.Hosts) > 0 {
		return slices.Clone(cfg.Server.TLS.Pins.Hosts)
	}
	var hosts []string
	if u, err := url.Parse(cfg.Issuer); err == nil && u.Hostname() != "" {
		hosts = append(hosts, u.Hostname())
	}
	for _, d := range cfg.Server.TLS.ACME.Domains {
		if !slices.Contains(hosts, d) {
			hosts = append(hosts, d)
		}
	}
	return hosts
}

// pinSet is the pin set published at now: the serving key's pin and the
// configured published pins, the backup key's pin, and an expiry validity after
// the start of now's day (stable for a whole day, so every replica and every
// request of the day says the same).
func pinSet(cfg *config.Config, serving *x509.Certificate, backupPin string, now time.Time) tlsutil.PinSet {
	validity := cfg.Server.TLS.Pins.Validity.D()
	if validity <= 0 {
		validity = defaultPinValidity
	}
	ps := tlsutil.PinSet{
		Version:  tlsutil.PinSetVersion,
		Hosts:    pinHosts(cfg),
		Pins:     []string{},
		Backups:  []string{},
		NotAfter: now.UTC().Truncate(pinSetExpiryRoundingUnit).Add(validity),
	}
	if serving != nil {
		ps.Pins = append(ps.Pins, tlsutil.SPKIPin(serving))
	}
	for _, p := range cfg.Server.TLS.Pins.Published {
		if !slices.Contains(ps.Pins, p) && p != backupPin {
			ps.Pins = append(ps.Pins, p)
		}
	}
	if backupPin != "" && !slices.Contains(ps.Pins, backupPin) {
		ps.Backups = append(ps.Backups, backupPin)
	}
	return ps
}

// pinPublisher signs the pin set for /.well-known/gatehouse/pins.json. It is the
// httpapi.PinDocument.
type pinPublisher struct {
	cfg    *config.Config
	ring   *keys.Ring
	t      *transport
	now    func() time.Time
	mu     sync.Mutex
	jws    string
	pin    string
	signed time.Time
}

// PinsJWS returns the signed pin set, re-signed when the serving key changes or
// after five minutes (so a rotated signing key is picked up).
func (p *pinPublisher) PinsJWS() (string, time.Duration, error) {
	now := p.now()
	leaf := p.t.source.Leaf()
	if leaf == nil {
		return "", 0, errors.New("pins: no certificate is served yet")
	}
	pin := tlsutil.SPKIPin(leaf)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.jws != "" && p.pin == pin && now.Sub(p.signed) < pinsCacheTTL && !now.Before(p.signed) {
		return p.jws, time.Hour, nil
	}
	ps := pinSet(p.cfg, leaf, p.t.backupPin, now)
	payload, err := json.Marshal(ps)
	if err != nil {
		return "", 0, err
	}
	jws, err := p.ring.Sign(payload, pinsJWSType)
	if err != nil {
		return "", 0, fmt.Errorf("pins: %w", err)
	}
	p.jws, p.pin, p.signed = jws, pin, now
	return jws, time.Hour, nil
}

// keysWithPins is the key ring as httpapi sees it: the JWKS plus the pin document.
type keysWithPins struct {
	*keys.Ring
	*pinPublisher
}

// pinMonitor notices when the serving key is not in the published pin set:
// pinned apps then fail to connect, so it is an incident, not a curiosity.
type pinMonitor struct {
	cfg   *config.Config
	t     *transport
	log   *slog.Logger
	audit *audit.Recorder

	mu       sync.Mutex
	reported string // the unpinned serving pin last reported, so each is reported once
}

// unpinned reports whether the serving key's pin is neither published nor the
// backup key's. Without server.tls.pins.published there is nothing to compare
// with and it is false.
func (m *pinMonitor) unpinned() (bool, string) {
	published := m.cfg.Server.TLS.Pins.Published
	leaf := m.t.source.Leaf()
	if len(published) == 0 || leaf == nil {
		return false, ""
	}
	pin := tlsutil.SPKIPin(leaf)
	return !slices.Contains(published, pin) && pin != m.t.backupPin, pin
}

// check logs and audits a newly unpinned serving key.
func (m *pinMonitor) check(ctx context.Context) {
	bad, pin := m.unpinned()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !bad {
		m.reported = ""
		return
	}
	if pin == m.reported {
		return
	}
	m.reported = pin
	m.log.Error("the serving TLS key is not in the published pin set: apps that pin will refuse to connect",
		"serving_pin", pin, "published", strings.Join(m.cfg.Server.TLS.Pins.Published, ","), "backup_pin", m.t.backupPin)
	if m.audit != nil {
		m.audit.Record(ctx, store.Event{Type: eventServingKeyUnpinned, Detail: map[string]string{
			"serving_pin": pin, "backup_pin": m.t.backupPin,
		}})
	}
}

// run checks now and every minute until ctx ends.
func (m *pinMonitor) run(ctx context.Context) {
	t := time.NewTicker(pinCheckInterval)
	defer t.Stop()
	for {
		m.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// cmdPins prints the pin set: the serving key's pin and the backup key's.
func cmdPins(ctx context.Context, e env, args []string) error {
	fs := newFlags(e, "pins", "pins --config FILE [--format json|android|ios|okhttp]")
	cfgPath := fs.String("config", "", "config file (YAML)")
	format := fs.String("format", "json", "output: json, android (network_security_config.xml), ios (Info.plist NSPinnedDomains) or okhttp (Kotlin CertificatePinner)")
	if err := parseFlags(e, fs, args); err != nil {
		return helpOK(err)
	}
	f, err := tlsutil.ParsePinFormat(*format)
	if err != nil {
		return usageError("pins: %v", err)
	}
	cfg, err := loadConfig(*cfgPath, e.getenv)
	if err != nil {
		return err
	}
	if cfg.Server.TLS.BackupKeyFile == "" {
		return &exitError{code: 1, msg: "pins: server.tls.backup_key_file is not set: a pin set without a backup key locks every pinned app out the day the serving key changes"}
	}
	log := newLogger(cfg, e.stderr)
	t, err := newTransport(cfg, log, nil)
	if err != nil {
		return &exitError{code: 1, msg: "pins: " + err.Error()}
	}
	defer t.close()
	if t.acme != nil {
		if err := t.acme.Load(ctx); err != nil {
			return &exitError{code: 1, msg: fmt.Sprintf("pins: %v (run `gatehouse serve` once to obtain the certificate)", err)}
		}
	}
	ps := pinSet(cfg, t.source.Leaf(), t.backupPin, time.Now())
	if err := tlsutil.RenderPinSet(e.stdout, ps, f); err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	return nil
}
