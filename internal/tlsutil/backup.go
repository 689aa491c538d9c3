package tlsutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrKeyFileMode reports a private key file that other users may read.
var ErrKeyFileMode = errors.New("private key file is readable by other users")

// EnsureBackupKey returns the public half of the pre-generated backup key in
// path, creating the key (ECDSA P-256, PKCS#8 PEM, mode 0600, parent directories
// 0700) when the file does not exist. created reports whether it was made now.
//
// The backup key exists so that its pin can be shipped in apps before the key is
// ever used: when the serving key is lost or compromised, a certificate for the
// backup key keeps pinned apps working. It must therefore be created once and
// kept (and backed up) — EnsureBackupKey never replaces an existing file, and
// refuses one that is group- or world-accessible.
func EnsureBackupKey(path string) (pub crypto.PublicKey, created bool, err error) {
	if path == "" {
		return nil, false, errors.New("tlsutil: backup key: no path")
	}
	pub, err = loadBackupKey(path)
	if err == nil {
		return pub, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("tlsutil: backup key: generate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, false, fmt.Errorf("tlsutil: backup key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("tlsutil: backup key: %w", err)
	}
	if err := writeNew(path, keyPEM, 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process made it between our read and write: use theirs.
			pub, err = loadBackupKey(path)
			return pub, false, err
		}
		return nil, false, fmt.Errorf("tlsutil: backup key: write %s: %w", path, err)
	}
	return key.Public(), true, nil
}

func loadBackupKey(path string) (crypto.PublicKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: backup key: %w", err)
	}
	// Why refuse: a backup key others can read is already compromised, and its pin
	// would then protect nothing.
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("tlsutil: backup key %s (mode %04o): %w; chmod 600 it", path, st.Mode().Perm(), ErrKeyFileMode)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: backup key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("tlsutil: backup key %s: no PEM block", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("tlsutil: backup key %s: PEM block %q is not a private key", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("tlsutil: backup key %s: %w", path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("tlsutil: backup key %s: key type %T cannot sign", path, key)
	}
	return signer.Public(), nil
}
