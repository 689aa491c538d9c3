package tlsutil

import (
	"crypto/tls"
	"errors"
	"fmt"
)

// ErrUnsupportedVersion reports a minimum TLS version other than "1.2" or "1.3".
var ErrUnsupportedVersion = errors.New("unsupported minimum TLS version")

// CertSource supplies the server certificate for each handshake. *FileCerts is one;
// an ACME manager is another.
type CertSource interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

var _ CertSource = (*FileCerts)(nil)

// ServerCipherSuites returns the only TLS 1.2 cipher suites ServerConfig accepts, as a
// fresh slice (reports such as the scanner or `config check` may show them).
//
// Why: every suite is ECDHE (forward secrecy; a stolen key cannot decrypt recorded
// traffic) with an AEAD cipher (no CBC padding oracles such as Lucky13). RSA key
// exchange and CBC suites are deliberately absent. TLS 1.3 suites are not
// configurable in crypto/tls and are all AEAD.
func ServerCipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// ParseMinVersion maps a configured minimum version to its crypto/tls constant:
// "" and "1.2" → tls.VersionTLS12, "1.3" → tls.VersionTLS13. Anything else is an
// ErrUnsupportedVersion error naming the value.
func ParseMinVersion(s string) (uint16, error) {
	switch s {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	default:
		// Why: "1.0"/"1.1" are refused rather than honoured — they lack AEAD suites
		// and are deprecated by RFC 8996.
		return 0, fmt.Errorf("tlsutil: min version %q: %w (want \"1.2\" or \"1.3\")", s, ErrUnsupportedVersion)
	}
}

// ServerConfig returns the public listener's TLS configuration: minimum version TLS
// 1.2 (or 1.3 when minVersion is "1.3"), ECDHE+AEAD cipher suites only for TLS 1.2,
// key exchange over X25519 or P-256 (plus hybrid X25519MLKEM768 in TLS 1.3), ALPN h2 and http/1.1, and certificates from
// certs on every handshake (so a reload takes effect without a restart).
//
// minVersion "" means "1.2". Any other value than "", "1.2" or "1.3" is an error.
func ServerConfig(certs CertSource, minVersion string) (*tls.Config, error) {
	if certs == nil {
		return nil, errors.New("tlsutil: server config: nil certificate source")
	}
	v, err := ParseMinVersion(minVersion)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   v,
		CipherSuites: ServerCipherSuites(),
		// X25519 and P-256 are the classical groups (the only ones TLS 1.2 clients
		// get). X25519MLKEM768 is the hybrid post-quantum group crypto/tls offers by
		// default; it is kept first for TLS 1.3 clients that support it, because
		// listing curves explicitly would otherwise switch it off and leave recorded
		// traffic open to a future quantum attacker ("harvest now, decrypt later").
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256},
		NextProtos:       []string{"h2", "http/1.1"},
		GetCertificate:   certs.GetCertificate,
	}, nil
}
