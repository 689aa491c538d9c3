package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// TransitKey is a named, versioned transit key. Versions hold each version's key
// sealed by the caller, bound to ("transit_key_versions", "key",
// TransitKeyVersionID(Name, Version)).
type TransitKey struct {
	Name                 string
	LatestVersion        int
	MinDecryptionVersion int
	CreatedAt            time.Time
	UpdatedAt            time.Time
	Versions             []TransitKeyVersion // oldest first
}

// TransitKeyVersion is one version of a transit key.
type TransitKeyVersion struct {
	Version   int
	Sealed    []byte
	CreatedAt time.Time
}

// TransitKeyVersionID is the row id a transit key version is bound to when sealed.
func TransitKeyVersionID(name string, version int) string {
	return name + "/" + strconv.Itoa(version)
}

// CreateTransitKey creates key name with its version 1 (sealed). ErrConflict if
// the name is taken.
func (db *DB) CreateTransitKey(ctx context.Context, name string, sealed []byte, at time.Time) error {
	const op = "create transit key"
	if name == "" || len(sealed) == 0 {
		return fmt.Errorf("store: %s: %w", op, errors.New("name and sealed key must be set"))
	}
	return wrap(op, db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, rebind(db.dialect, `INSERT INTO transit_keys
			(name, latest_version, min_decryption_version, created_at, updated_at) VALUES (?, 1, 1, ?, ?)`),
			name, micros(at), micros(at)); err != nil {
			return err
		}
		return db.insertTransitVersion(ctx, tx, name, 1, sealed, at)
	}))
}

func (db *DB) insertTransitVersion(ctx context.Context, tx *sql.Tx, name string, v int, sealed []byte, at time.Time) error {
	_, err := tx.ExecContext(ctx, rebind(db.dialect, `INSERT INTO transit_key_versions (id, name, version, key_sealed, created_at)
		VALUES (?, ?, ?, ?, ?)`), TransitKeyVersionID(name, v), name, v, sealed, micros(at))
	return err
}

// AddTransitKeyVersion adds version (sealed) to key name and makes it the latest,
// on the condition that the latest version is version-1. ErrNotFound if there is
// no such key; ErrConflict if another rotation came first.
func (db *DB) AddTransitKeyVersion(ctx context.Context, name string, version int, sealed []byte, at time.Time) error {
	const op = "add transit key version"
	if name == "" || version < 2 || len(sealed) == 0 {
		return fmt.Errorf("store: %s: %w", op, errors.New("name, a version above 1 and the sealed key must be set"))
	}
	return wrap(op, db.tx(ctx, func(tx *sql.Tx) error {
		ok, err := exec1(ctx, tx, rebind(db.dialect, `UPDATE transit_keys SET latest_version = ?, updated_at = ?
			WHERE name = ? AND latest_version = ?`), version, micros(at), name, version-1)
		if err != nil {
			return err
		}
		if !ok {
			var one int
			if err := tx.QueryRowContext(ctx, rebind(db.dialect, `SELECT 1 FROM transit_keys WHERE name = ?`), name).Scan(&one); err != nil {
				return err
			}
			return ErrConflict
		}
		return db.insertTransitVersion(ctx, tx, name, version, sealed, at)
	}))
}

// SetTransitMinDecryptionVersion sets the oldest version of key name that may
// still decrypt. It must be between 1 and the latest version. ErrNotFound if
// there is no such key; ErrConflict if min is above the latest version.
func (db *DB) SetTransitMinDecryptionVersion(ctx context.Context, name string, min int, at time.Time) error {
	const op = "set transit min decryption version"
	if min < 1 {
		return fmt.Errorf("store: %s: %w", op, errors.New("min decryption version must be at least 1"))
	}
	return wrap(op, db.tx(ctx, func(tx *sql.Tx) error {
		ok, err := exec1(ctx, tx, rebind(db.dialect, `UPDATE transit_keys SET min_decryption_version = ?, updated_at = ?
			WHERE name = ? AND latest_version >= ?`), min, micros(at), name, min)
		if err != nil || ok {
			return err
		}
		var one int
		if err := tx.QueryRowContext(ctx, rebind(db.dialect, `SELECT 1 FROM transit_keys WHERE name = ?`), name).Scan(&one); err != nil {
			return err
		}
		return ErrConflict
	}))
}

// TransitKey returns key name with all its versions, or ErrNotFound.
func (db *DB) TransitKey(ctx context.Context, name string) (*TransitKey, error) {
	const op = "transit key"
	var (
		k                TransitKey
		created, updated int64
	)
	err := db.sql.QueryRowContext(ctx, rebind(db.dialect, `SELECT name, latest_version, min_decryption_version, created_at, updated_at
		FROM transit_keys WHERE name = ?`), name).Scan(&k.Name, &k.LatestVersion, &k.MinDecryptionVersion, &created, &updated)
	if err != nil {
		return nil, wrap(op, err)
	}
	k.CreatedAt, k.UpdatedAt = fromMicros(created), fromMicros(updated)
	rows, err := db.sql.QueryContext(ctx, rebind(db.dialect, `SELECT version, key_sealed, created_at
		FROM transit_key_versions WHERE name = ? ORDER BY version`), name)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			v  TransitKeyVersion
			at int64
		)
		if err := rows.Scan(&v.Version, &v.Sealed, &at); err != nil {
			return nil, wrap(op, err)
		}
		v.CreatedAt = fromMicros(at)
		k.Versions = append(k.Versions, v)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return &k, nil
}
