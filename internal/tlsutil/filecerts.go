package tlsutil

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ErrCertExpired reports a certificate whose validity period does not include now.
var ErrCertExpired = errors.New("certificate is outside its validity period")

// FileCertOptions tunes NewFileCerts. The zero value is ready to use.
type FileCertOptions struct {
	// CheckInterval is the least time between two looks at the files from the
	// handshake path. Zero means one second. Reload always looks immediately.
	CheckInterval time.Duration
	// Now is the clock used for the check interval and validity checks. Nil means
	// time.Now.
	Now func() time.Time
	// Logger receives reload successes and failures. Nil discards.
	Logger *slog.Logger
}

// FileCerts serves a certificate and key loaded from two PEM files and picks up
// changes to them without a restart. It is safe for concurrent use.
type FileCerts struct {
	certFile, keyFile string
	interval          time.Duration
	now               func() time.Time
	log               *slog.Logger

	current   atomic.Pointer[loadedPair]
	nextCheck atomic.Int64 // unix nanoseconds; the handshake path looks at the files only after this

	mu sync.Mutex // serialises reads of the files
	// seenCert and seenKey are the bytes of the last attempt, good or bad, so a broken
	// pair is reported once rather than on every check.
	seenCert, seenKey []byte
}

type loadedPair struct {
	cert *tls.Certificate
	leaf *x509.Certificate
}

// NewFileCerts loads certFile (the leaf first, then any intermediates) and keyFile.
// It fails when either file is unreadable, they do not match, or the leaf is expired
// or not yet valid.
func NewFileCerts(certFile, keyFile string, opts FileCertOptions) (*FileCerts, error) {
	f := &FileCerts{
		certFile: certFile,
		keyFile:  keyFile,
		interval: opts.CheckInterval,
		now:      opts.Now,
		log:      opts.Logger,
	}
	if f.interval <= 0 {
		f.interval = time.Second
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	certPEM, keyPEM, err := f.readFiles()
	if err != nil {
		return nil, fmt.Errorf("tlsutil: load certificate: %w", err)
	}
	p, err := parsePair(certPEM, keyPEM, f.now())
	if err != nil {
		return nil, fmt.Errorf("tlsutil: load certificate %s: %w", certFile, err)
	}
	f.seenCert, f.seenKey = certPEM, keyPEM
	f.current.Store(p)
	f.nextCheck.Store(f.now().Add(f.interval).UnixNano())
	return f, nil
}

// GetCertificate returns the current certificate. At most once per CheckInterval it
// first looks for changed files; a broken new pair is logged and the previous
// certificate is served.
func (f *FileCerts) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	now := f.now()
	if now.UnixNano() >= f.nextCheck.Load() && f.mu.TryLock() {
		// TryLock: one handshake does the check; concurrent ones serve the current
		// certificate instead of queueing behind file I/O.
		if now.UnixNano() >= f.nextCheck.Load() {
			f.nextCheck.Store(now.Add(f.interval).UnixNano())
			// The error is logged by check; the handshake proceeds with the old pair.
			_ = f.checkLocked(now, false)
		}
		f.mu.Unlock()
	}
	return f.current.Load().cert, nil
}

// Reload reads both files now and switches to them if they form a valid pair. On
// error the previous certificate stays in service and the error is returned (and
// logged).
func (f *FileCerts) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	f.nextCheck.Store(now.Add(f.interval).UnixNano())
	return f.checkLocked(now, true)
}

// Leaf returns the parsed leaf certificate currently served.
func (f *FileCerts) Leaf() *x509.Certificate {
	return f.current.Load().leaf
}

// checkLocked reads the files and installs them when they changed (or force is set).
// f.mu must be held.
func (f *FileCerts) checkLocked(now time.Time, force bool) error {
	certPEM, keyPEM, err := f.readFiles()
	if err != nil {
		// Why keep serving: during renewal a file can be briefly missing or
		// half-written; the listener must not go down for it.
		f.log.Error("tls certificate reload failed; keeping the current certificate",
			"cert_file", f.certFile, "key_file", f.keyFile, "error", err)
		return fmt.Errorf("tlsutil: reload certificate: %w", err)
	}
	// Content, not modification time, decides "changed": two writes within one
	// filesystem timestamp tick, or a copy that preserves mtimes, must still count.
	if !force && bytes.Equal(certPEM, f.seenCert) && bytes.Equal(keyPEM, f.seenKey) {
		return nil
	}
	f.seenCert, f.seenKey = certPEM, keyPEM
	p, err := parsePair(certPEM, keyPEM, now)
	if err != nil {
		f.log.Error("tls certificate reload failed; keeping the current certificate",
			"cert_file", f.certFile, "key_file", f.keyFile, "error", err)
		return fmt.Errorf("tlsutil: reload certificate %s: %w", f.certFile, err)
	}
	old := f.current.Swap(p)
	if old == nil || !bytes.Equal(old.leaf.Raw, p.leaf.Raw) {
		f.log.Info("tls certificate loaded",
			"cert_file", f.certFile,
			"subject", p.leaf.Subject.String(),
			"serial", p.leaf.SerialNumber.Text(16),
			"not_after", p.leaf.NotAfter,
			"spki_pin", SPKIPin(p.leaf))
	}
	return nil
}

func (f *FileCerts) readFiles() (certPEM, keyPEM []byte, err error) {
	certPEM, err = os.ReadFile(f.certFile)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = os.ReadFile(f.keyFile)
	if err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// parsePair checks that the PEM blocks form a usable server certificate at now.
func parsePair(certPEM, keyPEM []byte, now time.Time) (*loadedPair, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
		cert.Leaf = leaf
	}
	// Why refuse: an expired (or not yet valid) certificate fails every client
	// handshake; keeping the previous one, or failing start-up loudly, is better.
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("%w: valid %s to %s", ErrCertExpired,
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return &loadedPair{cert: &cert, leaf: leaf}, nil
}
