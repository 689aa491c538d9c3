package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Data-key kinds and states.
const (
	DataKeySeal  = "seal"  // encrypts values of its purpose
	DataKeyIndex = "index" // computes blind indexes of its purpose; never rotated

	DataKeyActive  = "active"  // seals (or indexes) new values; one per kind and purpose
	DataKeyRetired = "retired" // opens values sealed before a rotation; seals nothing
)

// DataKey is a data-encryption key (DEK) as stored: only ever wrapped by the KEK
// whose id is KEKID. The store never sees the key itself.
type DataKey struct {
	ID        string
	Purpose   string
	Kind      string // DataKeySeal or DataKeyIndex
	State     string // DataKeyActive or DataKeyRetired
	Wrapped   []byte
	KEKID     string
	CreatedAt time.Time
	RetiredAt *time.Time
}

// Rewrap replaces one data key's wrapping, on the condition that it is still
// wrapped by OldKEKID.
type Rewrap struct {
	ID       string
	OldKEKID string
	Wrapped  []byte
	KEKID    string
}

const dataKeyCols = `id, purpose, kind, state, wrapped_key, kek_id, created_at, retired_at`

func validDataKey(k *DataKey) error {
	switch {
	case k.ID == "" || k.Purpose == "" || k.KEKID == "":
		return errors.New("data key id, purpose and kek id must be set")
	case len(k.Wrapped) == 0:
		return errors.New("data key material is empty")
	case k.Kind != DataKeySeal && k.Kind != DataKeyIndex:
		return fmt.Errorf("unknown data key kind %q", k.Kind)
	case k.State != DataKeyActive && k.State != DataKeyRetired:
		return fmt.Errorf("unknown data key state %q", k.State)
	}
	return nil
}

// DataKeys returns every data key, oldest first.
func (db *DB) DataKeys(ctx context.Context) ([]DataKey, error) {
	const op = "data keys"
	rows, err := db.sql.QueryContext(ctx, `SELECT `+dataKeyCols+` FROM data_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var out []DataKey
	for rows.Next() {
		var (
			k       DataKey
			created int64
			retired sql.NullInt64
		)
		if err := rows.Scan(&k.ID, &k.Purpose, &k.Kind, &k.State, &k.Wrapped, &k.KEKID, &created, &retired); err != nil {
			return nil, wrap(op, err)
		}
		k.CreatedAt, k.RetiredAt = fromMicros(created), fromNullMicros(retired)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}

// AddDataKeys retires the active keys named in retire (at at) and inserts add,
// in one transaction. ErrConflict, with nothing changed, if a key to retire is
// no longer active, an id is taken, or an added active key would make two active
// keys of one kind and purpose: of two processes rotating at once, one wins.
func (db *DB) AddDataKeys(ctx context.Context, retire []string, add []DataKey, at time.Time) error {
	const op = "add data keys"
	for i := range add {
		if err := validDataKey(&add[i]); err != nil {
			return fmt.Errorf("store: %s: %w", op, err)
		}
	}
	return wrap(op, db.tx(ctx, func(tx *sql.Tx) error { return db.addDataKeys(ctx, tx, retire, add, at) }))
}

func (db *DB) addDataKeys(ctx context.Context, tx *sql.Tx, retire []string, add []DataKey, at time.Time) error {
	for _, id := range retire {
		ok, err := exec1(ctx, tx, rebind(db.dialect, `UPDATE data_keys SET state = ?, retired_at = ? WHERE id = ? AND state = ?`),
			DataKeyRetired, micros(at), id, DataKeyActive)
		if err != nil {
			return err
		}
		if !ok {
			return ErrConflict
		}
	}
	q := rebind(db.dialect, `INSERT INTO data_keys (`+dataKeyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	for _, k := range add {
		if _, err := tx.ExecContext(ctx, q, k.ID, k.Purpose, k.Kind, k.State, k.Wrapped, k.KEKID,
			micros(k.CreatedAt), nullMicros(k.RetiredAt)); err != nil {
			return err
		}
	}
	return nil
}

// RewrapDataKeys replaces the wrapping of every listed key in one transaction
// (a KEK rotation is all or nothing). ErrConflict, with nothing changed, if any
// key is missing or no longer wrapped by its OldKEKID.
func (db *DB) RewrapDataKeys(ctx context.Context, rs []Rewrap) error {
	const op = "rewrap data keys"
	for _, r := range rs {
		if r.ID == "" || r.KEKID == "" || len(r.Wrapped) == 0 {
			return fmt.Errorf("store: %s: %w", op, errors.New("rewrap needs an id, a kek id and the wrapped key"))
		}
	}
	q := rebind(db.dialect, `UPDATE data_keys SET wrapped_key = ?, kek_id = ? WHERE id = ? AND kek_id = ?`)
	return wrap(op, db.tx(ctx, func(tx *sql.Tx) error {
		for _, r := range rs {
			ok, err := exec1(ctx, tx, q, r.Wrapped, r.KEKID, r.ID, r.OldKEKID)
			if err != nil {
				return err
			}
			if !ok {
				return ErrConflict
			}
		}
		return nil
	}))
}
