package store

import (
	"errors"
	"fmt"
)

// FieldSealer seals the personal data the store keeps on the callers' behalf
// (a session's IP address and user agent, an event's IP address) and computes
// the keyed blind indexes that let events be filtered by IP and that throttle
// counters are keyed by. The envelope keyring
// is one. The store calls it; it holds no key and does no cryptography itself.
type FieldSealer interface {
	Seal(purpose string, plaintext []byte, aad ...string) ([]byte, error)
	Open(purpose string, sealed []byte, aad ...string) ([]byte, error)
	Index(purpose string, value []byte) []byte
}

// Purposes of the values the store seals through its FieldSealer. Each value is
// also bound to its table, column and row id (see SealedFields).
const (
	PurposeSessionIP        = "session_ip"
	PurposeSessionUserAgent = "session_user_agent"
	// PurposeEventIP seals an event's IP and names its blind index.
	PurposeEventIP = "event_ip"
	// PurposeThrottleKey names the blind index that throttle counters are
	// stored under (their keys carry IPs and account indexes).
	PurposeThrottleKey = "throttle_key"
)

// errNoSealer is returned when a row holds a sealed value but the DB has no
// FieldSealer to open it: better an error than a silently empty field.
var errNoSealer = errors.New("row holds a sealed value and this store has no field sealer")

// WithFieldSealer returns a DB that shares db's connection pool and seals
// sessions' IP and user agent and events' IP through f before they are written,
// opening them again when read. Without one (the zero value, for tools and
// tests) those fields are stored as given. Close either DB to close the pool.
func (db *DB) WithFieldSealer(f FieldSealer) *DB {
	cp := *db
	cp.fields = f
	return &cp
}

// sealField seals v for purpose bound to (table, column, rowID); "" stays empty.
// It returns the plaintext column's value ("" when sealed) and the sealed bytes.
func (db *DB) sealField(purpose, v, table, column, rowID string) (string, []byte, error) {
	if db.fields == nil || v == "" {
		return v, nil, nil
	}
	sealed, err := db.fields.Seal(purpose, []byte(v), table, column, rowID)
	if err != nil {
		return "", nil, fmt.Errorf("seal %s.%s: %w", table, column, err)
	}
	return "", sealed, nil
}

// openField returns the field's value: sealed opened when present, else plain
// (a row written before sealing, or by a DB without a sealer).
func (db *DB) openField(purpose string, plain string, sealed []byte, table, column, rowID string) (string, error) {
	if len(sealed) == 0 {
		return plain, nil
	}
	if db.fields == nil {
		return "", errNoSealer
	}
	b, err := db.fields.Open(purpose, sealed, table, column, rowID)
	if err != nil {
		return "", fmt.Errorf("open %s.%s: %w", table, column, err)
	}
	return string(b), nil
}

// ipIndex is the blind index of an event IP, or nil without a sealer.
func (db *DB) ipIndex(ip string) []byte {
	if db.fields == nil || ip == "" {
		return nil
	}
	return db.fields.Index(PurposeEventIP, []byte(ip))
}
