package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
)

// ClientOptions configure ClientConfig: the TLS Gatehouse speaks to an upstream.
// The zero value verifies the upstream against the system roots and sends no
// client certificate.
type ClientOptions struct {
	// CAFile, if set, is a PEM bundle of the only CAs trusted for the upstream's
	// certificate (the system roots are then not trusted): a pinned upstream CA.
	CAFile string
	// CertFile and KeyFile, both or neither, are the client certificate for mTLS.
	// They are reloaded when they change, as FileCerts does for the server.
	CertFile, KeyFile string
	// Logger receives client certificate reloads. Nil discards.
	Logger *slog.Logger
}

// ClientConfig returns the TLS configuration for connections to an upstream: TLS
// 1.2 or later with the same AEAD-only suites as the server, the pinned CA bundle
// if one is given, and the client certificate if one is given.
func ClientConfig(opts ClientOptions) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: ServerCipherSuites(),
	}
	if opts.CAFile != "" {
		data, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tlsutil: upstream ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("tlsutil: upstream ca %s: no PEM certificate", opts.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (opts.CertFile == "") != (opts.KeyFile == "") {
		return nil, errors.New("tlsutil: upstream client certificate: cert_file and key_file go together")
	}
	if opts.CertFile != "" {
		fc, err := NewFileCerts(opts.CertFile, opts.KeyFile, FileCertOptions{Logger: opts.Logger})
		if err != nil {
			return nil, fmt.Errorf("tlsutil: upstream client certificate: %w", err)
		}
		// Why always send it, whatever the server's CertificateRequest lists: the
		// upstream decides; an empty answer would only turn a clear rejection into
		// a confusing one.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return fc.GetCertificate(nil)
		}
	}
	return cfg, nil
}
