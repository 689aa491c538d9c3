package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Kinds of one-time code. The identity flows own their meaning; the store only
// counts attempts and marks codes used.
const (
	CodeMFA           = "mfa"            // mfa_token of the password grant's second step
	CodeEmailVerify   = "email_verify"   // email verification
	CodePasswordReset = "password_reset" // password reset
	CodeOIDCState     = "oidc_state"     // Gatehouse's state at a social-login provider
	CodeOIDCAuth      = "oidc_code"      // authorization code handed to the app
	CodeWebAuthn      = "webauthn"       // a WebAuthn ceremony's session data
)

// Code is a one-time code: its hash or random id, what it is for, and how many
// attempts it has left. Data is the flow's own payload (the caller seals what
// must not be stored plainly).
type Code struct {
	ID          string
	Kind        string
	UserID      string // "" when the code belongs to no user yet
	Subject     []byte // optional blind index to find the latest code (LatestCode)
	Data        []byte
	Attempts    int
	MaxAttempts int
	CreatedAt   time.Time
	ExpiresAt   time.Time
	UsedAt      *time.Time
}

const codeColumns = `id, kind, user_id, subject, data, attempts, max_attempts, created_at, expires_at, used_at`

func scanCode(row interface{ Scan(...any) error }) (*Code, error) {
	var (
		c                     Code
		attempts, maxAttempts int64
		created, expires      int64
		used                  sql.NullInt64
	)
	if err := row.Scan(&c.ID, &c.Kind, &c.UserID, &c.Subject, &c.Data, &attempts, &maxAttempts, &created, &expires, &used); err != nil {
		return nil, err
	}
	c.Attempts, c.MaxAttempts = int(attempts), int(maxAttempts)
	c.CreatedAt, c.ExpiresAt, c.UsedAt = fromMicros(created), fromMicros(expires), fromNullMicros(used)
	return &c, nil
}

// CreateCode stores a new code. ErrConflict if the id exists.
func (db *DB) CreateCode(ctx context.Context, c *Code) error {
	const op = "create code"
	if c == nil || c.ID == "" || c.Kind == "" || c.MaxAttempts <= 0 || !c.ExpiresAt.After(c.CreatedAt) {
		return fmt.Errorf("store: %s: %w", op, errors.New("id, kind, max attempts > 0 and an expiry after creation must be set"))
	}
	q := rebind(db.dialect, `INSERT INTO one_time_codes (`+codeColumns+`) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, NULL)`)
	return wrap(op, db.retry(ctx, func() error {
		_, err := db.sql.ExecContext(ctx, q, c.ID, c.Kind, c.UserID, nullBytes(c.Subject), nullBytes(c.Data),
			c.MaxAttempts, micros(c.CreatedAt), micros(c.ExpiresAt))
		return err
	}))
}

// Code returns a code by id, used or not, expired or not. ErrNotFound if absent.
func (db *DB) Code(ctx context.Context, id string) (*Code, error) {
	c, err := scanCode(db.sql.QueryRowContext(ctx, rebind(db.dialect, `SELECT `+codeColumns+` FROM one_time_codes WHERE id = ?`), id))
	return c, wrap("code", err)
}

// LatestCode returns the newest live (unused, unexpired) code of kind for
// subject. ErrNotFound if there is none.
func (db *DB) LatestCode(ctx context.Context, kind string, subject []byte, now time.Time) (*Code, error) {
	c, err := scanCode(db.sql.QueryRowContext(ctx, rebind(db.dialect, `SELECT `+codeColumns+` FROM one_time_codes
		WHERE kind = ? AND subject = ? AND used_at IS NULL AND expires_at > ?
		ORDER BY created_at DESC, id DESC LIMIT 1`), kind, subject, micros(now)))
	return c, wrap("latest code", err)
}

// AttemptCode counts one attempt against a live code of kind that has attempts
// left and returns the code as it is after the attempt. It is one conditional
// update: N parallel attempts on a code with k left succeed exactly k times.
// ErrNotFound if the code is absent, of another kind, used, expired or
// exhausted.
func (db *DB) AttemptCode(ctx context.Context, kind, id string, now time.Time) (*Code, error) {
	q := rebind(db.dialect, `UPDATE one_time_codes SET attempts = attempts + 1
		WHERE id = ? AND kind = ? AND used_at IS NULL AND expires_at > ? AND attempts < max_attempts
		RETURNING `+codeColumns)
	var c *Code
	err := db.retry(ctx, func() error {
		var err error
		c, err = scanCode(db.sql.QueryRowContext(ctx, q, id, kind, micros(now)))
		return err
	})
	return c, wrap("attempt code", err)
}

// UseCode marks a live code of kind used and returns it. Exactly one of any
// number of concurrent calls succeeds. ErrNotFound if the code is absent, of
// another kind, already used or expired. Exhaustion does not stop a use: the
// caller counts the attempt (AttemptCode) before checking the guess.
func (db *DB) UseCode(ctx context.Context, kind, id string, now time.Time) (*Code, error) {
	q := rebind(db.dialect, `UPDATE one_time_codes SET used_at = ?
		WHERE id = ? AND kind = ? AND used_at IS NULL AND expires_at > ?
		RETURNING `+codeColumns)
	var c *Code
	err := db.retry(ctx, func() error {
		var err error
		c, err = scanCode(db.sql.QueryRowContext(ctx, q, micros(now), id, kind, micros(now)))
		return err
	})
	return c, wrap("use code", err)
}

// DeleteCodes removes every code of kind the user has (a new reset code
// replaces the old ones; a password reset ends every pending one).
func (db *DB) DeleteCodes(ctx context.Context, userID, kind string) (int64, error) {
	var n int64
	err := db.retry(ctx, func() error {
		res, err := db.sql.ExecContext(ctx, rebind(db.dialect, `DELETE FROM one_time_codes WHERE user_id = ? AND kind = ?`), userID, kind)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, wrap("delete codes", err)
}

// PurgeCodes deletes codes that expired before before.
func (db *DB) PurgeCodes(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.retry(ctx, func() error {
		res, err := db.sql.ExecContext(ctx, rebind(db.dialect, `DELETE FROM one_time_codes WHERE expires_at < ?`), micros(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, wrap("purge codes", err)
}
