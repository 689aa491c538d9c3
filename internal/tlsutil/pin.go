package tlsutil

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
)

// SPKIPin returns base64(SHA-256(SubjectPublicKeyInfo DER)) of cert: the pin form used
// by HPKP (RFC 7469), Android network-security-config and OkHttp. The caller adds any
// "sha256/" prefix its platform wants.
//
// Why the SPKI and not the whole certificate: the key survives renewals when the key
// is reused, so an app pinning it keeps working across certificate re-issues.
func SPKIPin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// PublicKeyPin returns the same pin as SPKIPin for a bare public key (for example a
// pre-generated backup key that has no certificate yet). pub must be a type accepted
// by x509.MarshalPKIXPublicKey.
func PublicKeyPin(pub any) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("tlsutil: public key pin: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}
