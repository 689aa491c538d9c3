package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// SealedField describes one column of sealed values: where it lives, which
// purpose seals it, and how each value is bound. Every value of the field is
// sealed with associated data (AADTable, AADColumn, row id); callers elsewhere
// seal with the same binding (identity: users/email; keys.Ring:
// signing_keys/private; token.Families: refresh_tokens/successor_sealed with the
// token hash in base64url as row id), which `gatehouse keys check` proves.
type SealedField struct {
	Name      string // "table.column", as shown to operators
	Purpose   string // "" when each row names its purpose (user_secrets)
	AADTable  string
	AADColumn string
	// IndexPurpose, when set, names the blind index kept beside the value
	// (events.ip): re-sealing writes it too.
	IndexPurpose string

	table, pk, col     string
	plainCol, indexCol string // legacy plaintext column; blind-index column
	purposeCol         string
	binaryID           bool // pk is bytes; the bound row id is its base64url
}

// Purposes sealed by callers outside the store, as they bind them.
const (
	PurposeEmail            = "email"
	PurposeSigningKey       = "signing_key"
	PurposeRefreshSuccessor = "refresh_successor"
	PurposeTransitKey       = "transit_key"
)

// SealedFields lists every column of sealed values in the schema.
func SealedFields() []SealedField {
	return []SealedField{
		{Name: "users.email", Purpose: PurposeEmail, AADTable: "users", AADColumn: "email", table: "users", pk: "id", col: "email_sealed"},
		{Name: "signing_keys.private", Purpose: PurposeSigningKey, AADTable: "signing_keys", AADColumn: "private", table: "signing_keys", pk: "id", col: "private_sealed"},
		{Name: "refresh_tokens.successor", Purpose: PurposeRefreshSuccessor, AADTable: "refresh_tokens", AADColumn: "successor_sealed", table: "refresh_tokens", pk: "hash", col: "successor_sealed", binaryID: true},
		{Name: "sessions.ip", Purpose: PurposeSessionIP, AADTable: "sessions", AADColumn: "ip", table: "sessions", pk: "id", col: "ip_sealed", plainCol: "ip"},
		{Name: "sessions.user_agent", Purpose: PurposeSessionUserAgent, AADTable: "sessions", AADColumn: "user_agent", table: "sessions", pk: "id", col: "user_agent_sealed", plainCol: "user_agent"},
		{Name: "events.ip", Purpose: PurposeEventIP, AADTable: "events", AADColumn: "ip", table: "events", pk: "id", col: "ip_sealed", plainCol: "ip", indexCol: "ip_index", IndexPurpose: PurposeEventIP},
		{Name: "user_secrets.sealed", AADTable: "user_secrets", AADColumn: "sealed", table: "user_secrets", pk: "id", col: "sealed", purposeCol: "purpose"},
		{Name: "transit_key_versions.key", Purpose: PurposeTransitKey, AADTable: "transit_key_versions", AADColumn: "key", table: "transit_key_versions", pk: "id", col: "key_sealed"},
	}
}

func sealedField(name string) (SealedField, error) {
	for _, f := range SealedFields() {
		if f.Name == name {
			return f, nil
		}
	}
	return SealedField{}, fmt.Errorf("unknown sealed field %q", name)
}

// SealedValue is one stored value of a sealed field. Sealed is empty when the
// row predates sealing and holds its value in plaintext (Plain).
type SealedValue struct {
	Field   string
	RowID   string // the row id the value is bound to
	Purpose string
	Sealed  []byte
	Plain   string
	cursor  string
	pk      any
}

// AAD is the associated data the value is bound to: table, column, row id.
func (v SealedValue) AAD(f SealedField) []string { return []string{f.AADTable, f.AADColumn, v.RowID} }

// Resealed is a value sealed anew, with its blind index for fields that have one.
type Resealed struct {
	Sealed []byte
	Index  []byte
}

func (f SealedField) selectSQL() string {
	purpose := "''"
	if f.purposeCol != "" {
		purpose = f.purposeCol
	}
	plain := "''"
	where := f.col + " IS NOT NULL"
	if f.plainCol != "" {
		plain = f.plainCol
		where = "(" + f.col + " IS NOT NULL OR " + f.plainCol + " <> '')"
	}
	return `SELECT ` + f.pk + `, ` + purpose + `, ` + f.col + `, ` + plain + ` FROM ` + f.table +
		` WHERE ` + where + ` AND ` + f.pk + ` > ? ORDER BY ` + f.pk + ` LIMIT ?`
}

// cursorArg turns a cursor ("" = from the start) into the pk comparison value.
func (f SealedField) cursorArg(cursor string) (any, error) {
	if !f.binaryID {
		return cursor, nil
	}
	b, err := hex.DecodeString(cursor)
	if err != nil {
		return nil, errors.New("stored cursor is not hex")
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

func (db *DB) scanSealed(ctx context.Context, x execer, f SealedField, after string, limit int) ([]SealedValue, error) {
	arg, err := f.cursorArg(after)
	if err != nil {
		return nil, err
	}
	rows, err := x.QueryContext(ctx, rebind(db.dialect, f.selectSQL()), arg, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SealedValue
	for rows.Next() {
		v := SealedValue{Field: f.Name}
		var pk any
		if f.binaryID {
			var b []byte
			if err := rows.Scan(&b, &v.Purpose, &v.Sealed, &v.Plain); err != nil {
				return nil, err
			}
			pk, v.RowID, v.cursor = b, base64.RawURLEncoding.EncodeToString(b), hex.EncodeToString(b)
		} else {
			var s string
			if err := rows.Scan(&s, &v.Purpose, &v.Sealed, &v.Plain); err != nil {
				return nil, err
			}
			pk, v.RowID, v.cursor = s, s, s
		}
		v.pk = pk
		if f.purposeCol == "" {
			v.Purpose = f.Purpose
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// ScanSealed returns up to limit values of the named field (see SealedFields)
// after cursor ("" to start), in row order, and the cursor to pass next ("" when
// there are no more). limit <= 0 means 100; it is capped at 1000.
func (db *DB) ScanSealed(ctx context.Context, field, cursor string, limit int) ([]SealedValue, string, error) {
	const op = "scan sealed"
	f, err := sealedField(field)
	if err != nil {
		return nil, "", fmt.Errorf("store: %s: %w", op, err)
	}
	limit = clampLimit(limit)
	vs, err := db.scanSealed(ctx, db.sql, f, cursor, limit)
	if err != nil {
		return nil, "", wrap(op, err)
	}
	next := ""
	if len(vs) == limit {
		next = vs[len(vs)-1].cursor
	}
	return vs, next, nil
}

// ResealRun is one run of `gatehouse keys rotate --data`.
type ResealRun struct {
	ID         string
	StartedAt  time.Time
	FinishedAt *time.Time
}

// OpenResealRun returns the run that was started and not finished, or
// ErrNotFound.
func (db *DB) OpenResealRun(ctx context.Context) (*ResealRun, error) {
	var (
		r       ResealRun
		started int64
	)
	err := db.sql.QueryRowContext(ctx, `SELECT id, started_at FROM reseal_runs WHERE open = 1`).Scan(&r.ID, &started)
	if err != nil {
		return nil, wrap("open reseal run", err)
	}
	r.StartedAt = fromMicros(started)
	return &r, nil
}

// StartReseal records a new run and, in the same transaction, retires the data
// keys named in retire and adds add (see AddDataKeys): the run and the keys it
// re-seals under are created together or not at all. ErrConflict if a run is
// already open (resume it instead) or the key change conflicts.
func (db *DB) StartReseal(ctx context.Context, at time.Time, retire []string, add []DataKey) (*ResealRun, error) {
	const op = "start reseal"
	for i := range add {
		if err := validDataKey(&add[i]); err != nil {
			return nil, fmt.Errorf("store: %s: %w", op, err)
		}
	}
	r := &ResealRun{ID: rand.Text(), StartedAt: at}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, rebind(db.dialect, `INSERT INTO reseal_runs (id, open, started_at) VALUES (?, 1, ?)`),
			r.ID, micros(at)); err != nil {
			return err
		}
		return db.addDataKeys(ctx, tx, retire, add, at)
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	return r, nil
}

// FinishReseal closes the run. ErrNotFound if it is not open.
func (db *DB) FinishReseal(ctx context.Context, runID string, at time.Time) error {
	const op = "finish reseal"
	var ok bool
	err := db.retry(ctx, func() error {
		var err error
		ok, err = exec1(ctx, db.sql, rebind(db.dialect, `UPDATE reseal_runs SET open = NULL, finished_at = ? WHERE id = ? AND open = 1`),
			micros(at), runID)
		return err
	})
	if err != nil {
		return wrap(op, err)
	}
	if !ok {
		return fmt.Errorf("store: %s: %w", op, ErrNotFound)
	}
	return nil
}

// ResealProgress is where a run stands on one field.
type ResealProgress struct {
	Resealed int64 // values re-sealed by this run so far
	Done     bool
}

// ResealBatch re-seals the next batch of up to limit values of field for run,
// in one transaction: it reads the run's cursor for the field, calls reseal for
// each value after it, writes each result back on the condition that the row
// still holds the value that was read (a value changed meanwhile by a live
// server is left as that server wrote it), and advances the cursor. A crash
// loses at most the batch in flight, and a later call resumes after the last
// committed one. An error from reseal aborts the batch with nothing written.
func (db *DB) ResealBatch(ctx context.Context, runID, field string, limit int,
	reseal func(v SealedValue) (Resealed, error)) (ResealProgress, error) {
	const op = "reseal batch"
	f, err := sealedField(field)
	if err != nil {
		return ResealProgress{}, fmt.Errorf("store: %s: %w", op, err)
	}
	if limit <= 0 {
		limit = 500
	}
	set := f.col + " = ?"
	if f.plainCol != "" {
		set += ", " + f.plainCol + " = ''"
	}
	if f.indexCol != "" {
		set += ", " + f.indexCol + " = ?"
	}
	updSealed := rebind(db.dialect, `UPDATE `+f.table+` SET `+set+` WHERE `+f.pk+` = ? AND `+f.col+` = ?`)
	updPlain := ""
	if f.plainCol != "" {
		updPlain = rebind(db.dialect, `UPDATE `+f.table+` SET `+set+` WHERE `+f.pk+` = ? AND `+f.col+` IS NULL AND `+f.plainCol+` = ?`)
	}
	var p ResealProgress
	err = db.tx(ctx, func(tx *sql.Tx) error {
		p = ResealProgress{}
		if _, err := tx.ExecContext(ctx, rebind(db.dialect, `INSERT INTO reseal_cursors (run_id, field) VALUES (?, ?)
			ON CONFLICT (run_id, field) DO NOTHING`), runID, field); err != nil {
			return err
		}
		var (
			after string
			done  int64
		)
		if err := tx.QueryRowContext(ctx, rebind(db.dialect, `SELECT after_id, done, resealed FROM reseal_cursors
			WHERE run_id = ? AND field = ?`), runID, field).Scan(&after, &done, &p.Resealed); err != nil {
			return err
		}
		if done != 0 {
			p.Done = true
			return nil
		}
		vs, err := db.scanSealed(ctx, tx, f, after, limit)
		if err != nil {
			return err
		}
		var n int64
		for _, v := range vs {
			out, err := reseal(v)
			if err != nil {
				return fmt.Errorf("%s row %s: %w", f.Name, v.RowID, err)
			}
			args := []any{out.Sealed}
			if f.indexCol != "" {
				args = append(args, nullBytes(out.Index))
			}
			q := updSealed
			if len(v.Sealed) == 0 {
				q, args = updPlain, append(args, v.pk, v.Plain)
			} else {
				args = append(args, v.pk, v.Sealed)
			}
			ok, err := exec1(ctx, tx, q, args...)
			if err != nil {
				return err
			}
			if ok {
				n++
			}
		}
		if len(vs) > 0 {
			after = vs[len(vs)-1].cursor
		}
		p.Done = len(vs) < limit
		p.Resealed += n
		_, err = tx.ExecContext(ctx, rebind(db.dialect, `UPDATE reseal_cursors SET after_id = ?, done = ?, resealed = ?
			WHERE run_id = ? AND field = ?`), after, boolInt(p.Done), p.Resealed, runID, field)
		return err
	})
	if err != nil {
		return ResealProgress{}, wrap(op, err)
	}
	return p, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
