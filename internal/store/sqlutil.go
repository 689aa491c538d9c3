package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

const (
	dialectSQLite   = "sqlite"
	dialectPostgres = "postgres"
)

// rebind rewrites "?" placeholders to PostgreSQL's "$1", "$2", ... It leaves
// question marks inside single-quoted literals and double-quoted identifiers alone.
// For SQLite the query is returned unchanged.
func rebind(dialect, query string) string {
	if dialect != dialectPostgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Times are stored as int64 unix microseconds in UTC in both dialects: the same
// representation everywhere, exact round trips at microsecond precision, cheap
// comparisons in indexes, and no dependence on a driver's time parsing.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func fromNullMicros(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromMicros(n.Int64)
	return &t
}

// nullBytes stores an empty byte slice as NULL, so that "absent" has one
// representation in both dialects.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func encodeList(l []string) (string, error) {
	if len(l) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// decodeList returns nil for an empty list.
func decodeList(s string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, errors.New("stored list is not valid JSON")
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}

func encodeDetail(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// decodeDetail returns nil for an empty map.
func decodeDetail(s string) (map[string]string, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, errors.New("stored event detail is not valid JSON")
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// errKind classifies a driver error.
type errKind int

const (
	kindOther     errKind = iota
	kindUnique            // a unique or primary-key constraint failed
	kindForeign           // a foreign-key constraint failed
	kindRetryable         // busy, locked, serialization failure, deadlock: nothing was written
)

// classify inspects a driver error and returns its kind and a description that
// names only the error code. Driver messages can quote the values of the statement
// (PostgreSQL's DETAIL does, and so do some SQLite messages), so they never leave
// this package.
func classify(err error) (errKind, string, bool) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		desc := "postgres error SQLSTATE " + pgErr.Code
		switch pgErr.Code {
		case "23505":
			return kindUnique, desc, true
		case "23503":
			return kindForeign, desc, true
		case "40001", "40P01", "55P03":
			return kindRetryable, desc, true
		}
		return kindOther, desc, true
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		code := sqErr.Code()
		desc := "sqlite error code " + strconv.Itoa(code)
		switch {
		case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return kindUnique, desc, true
		case code == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return kindForeign, desc, true
		case code&0xff == sqlite3.SQLITE_BUSY || code&0xff == sqlite3.SQLITE_LOCKED:
			return kindRetryable, desc, true
		}
		return kindOther, desc, true
	}
	return kindOther, "", false
}

// driverError is what a driver error becomes at the package boundary: the
// operation and the error code, never the driver's message.
type driverError struct {
	desc string
}

func (e *driverError) Error() string { return e.desc }

// wrap turns err into the error a method returns for op. Unique violations become
// ErrConflict, foreign-key violations ErrNotFound (the parent row is missing),
// sql.ErrNoRows ErrNotFound; context errors stay matchable with errors.Is; other
// driver errors keep only their code.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: %s: %w", op, ErrNotFound)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("store: %s: %w", op, context.Canceled)
		}
		return fmt.Errorf("store: %s: %w", op, context.DeadlineExceeded)
	}
	kind, desc, isDriver := classify(err)
	switch kind {
	case kindUnique:
		return fmt.Errorf("store: %s: %w", op, ErrConflict)
	case kindForeign:
		return fmt.Errorf("store: %s: %w", op, ErrNotFound)
	case kindRetryable:
		return fmt.Errorf("store: %s: %w", op, errBusy)
	}
	if isDriver {
		return fmt.Errorf("store: %s: %w", op, &driverError{desc: desc})
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// errBusy is returned only when a retryable database error (lock contention,
// serialization failure, deadlock) persists through every retry.
var errBusy = errors.New("database busy: retries exhausted")

const maxAttempts = 10

// retry runs fn until it succeeds, fails with a non-retryable error, or has been
// tried maxAttempts times. Only errors that guarantee nothing was written are
// retried (busy, locked, serialization failure, deadlock), so a retried write can
// never be applied twice.
//
// Every caller of retry writes. On SQLite the writers of this process also take
// turns on db.writer before touching the database: SQLite admits one writer at a
// time anyway, and queueing here (in order, cancellable) is far cheaper than
// SQLite's busy handler, which polls with sleeps of up to 100 ms. busy_timeout
// still covers writers in other processes.
func (db *DB) retry(ctx context.Context, fn func() error) error {
	var err error
	for attempt := range maxAttempts {
		err = db.serialised(ctx, fn)
		if err == nil {
			return nil
		}
		kind, desc, _ := classify(err)
		if kind != kindRetryable {
			return err
		}
		db.log.DebugContext(ctx, "store: retrying after lock contention", "attempt", attempt+1, "error", desc)
		backoff := time.Duration(1<<min(attempt, 6)) * time.Millisecond
		backoff += rand.N(backoff) // jitter, so that losers do not retry in lockstep
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return err
}

// serialised runs fn holding the SQLite writer slot; on PostgreSQL it just runs
// fn (row locks do the job there).
func (db *DB) serialised(ctx context.Context, fn func() error) error {
	if db.writer == nil {
		return fn()
	}
	select {
	case db.writer <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-db.writer }()
	return fn()
}

// tx runs fn in one transaction, retried as a whole on retryable errors. On SQLite
// the transaction begins IMMEDIATE (the DSN sets _txlock), so writers queue on the
// database lock at BEGIN instead of upgrading a read lock mid-transaction, which is
// what produces SQLITE_BUSY deadlocks under WAL. fn's error is returned unwrapped;
// the caller wraps it with its op.
func (db *DB) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.retry(ctx, func() error {
		tx, err := db.sql.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

// execer is the subset of *sql.DB and *sql.Tx the statements use.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// exec1 runs a conditional update and reports whether it changed any row.
func exec1(ctx context.Context, x execer, query string, args ...any) (bool, error) {
	res, err := x.ExecContext(ctx, query, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n > 0, nil
}

func clampLimit(limit int) int {
	switch {
	case limit <= 0:
		return 100
	case limit > 1000:
		return 1000
	}
	return limit
}
