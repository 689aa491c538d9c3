package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ReplaceRecoveryCodes replaces every recovery code the user has with hashes,
// in one transaction. ErrNotFound if the user does not exist.
func (db *DB) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error {
	const op = "replace recovery codes"
	return wrap(op, db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, rebind(db.dialect, `DELETE FROM recovery_codes WHERE user_id = ?`), userID); err != nil {
			return err
		}
		q := rebind(db.dialect, `INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)`)
		for _, h := range hashes {
			if len(h) == 0 {
				return errors.New("empty recovery code hash")
			}
			if _, err := tx.ExecContext(ctx, q, userID, h, micros(now)); err != nil {
				return err
			}
		}
		return nil
	}))
}

// UseRecoveryCode marks the user's unused code with hash used. It reports false
// when there is no such unused code. One conditional update: a code is used once.
func (db *DB) UseRecoveryCode(ctx context.Context, userID string, hash []byte, now time.Time) (bool, error) {
	var ok bool
	err := db.retry(ctx, func() error {
		var err error
		ok, err = exec1(ctx, db.sql, rebind(db.dialect, `UPDATE recovery_codes SET used_at = ?
			WHERE user_id = ? AND code_hash = ? AND used_at IS NULL`), micros(now), userID, hash)
		return err
	})
	return ok, wrap("use recovery code", err)
}

// CountRecoveryCodes returns how many unused recovery codes the user has.
func (db *DB) CountRecoveryCodes(ctx context.Context, userID string) (int, error) {
	var n int64
	err := db.sql.QueryRowContext(ctx, rebind(db.dialect, `SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL`), userID).Scan(&n)
	return int(n), wrap("count recovery codes", err)
}

// DeleteRecoveryCodes removes all of the user's recovery codes.
func (db *DB) DeleteRecoveryCodes(ctx context.Context, userID string) error {
	return wrap("delete recovery codes", db.retry(ctx, func() error {
		_, err := db.sql.ExecContext(ctx, rebind(db.dialect, `DELETE FROM recovery_codes WHERE user_id = ?`), userID)
		return err
	}))
}

// AdvanceSecretCounter sets the counter of the user's secret of kind to counter
// if it is below it (the last TOTP time step accepted), and reports whether it
// did. One conditional update: of two requests with the same code, one wins.
// ErrNotFound if there is no such secret.
func (db *DB) AdvanceSecretCounter(ctx context.Context, userID, kind string, counter int64, now time.Time) (bool, error) {
	const op = "advance secret counter"
	var ok bool
	err := db.retry(ctx, func() error {
		var err error
		ok, err = exec1(ctx, db.sql, rebind(db.dialect, `UPDATE user_secrets SET counter = ?, updated_at = ?
			WHERE id = ? AND counter < ?`), counter, micros(now), UserSecretID(userID, kind), counter)
		return err
	})
	if err != nil {
		return false, wrap(op, err)
	}
	if !ok {
		if _, err := db.UserSecret(ctx, userID, kind); err != nil {
			return false, wrap(op, err)
		}
	}
	return ok, nil
}

// WebAuthnCredential is a passkey. ID is the credential id (base64url);
// Credential is the WebAuthn library's record as JSON.
type WebAuthnCredential struct {
	ID         string
	UserID     string
	Name       string
	Credential []byte
	SignCount  int64
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

const webauthnColumns = `id, user_id, name, credential, sign_count, created_at, last_used_at`

func scanWebAuthn(row interface{ Scan(...any) error }) (*WebAuthnCredential, error) {
	var (
		c       WebAuthnCredential
		created int64
		used    sql.NullInt64
	)
	if err := row.Scan(&c.ID, &c.UserID, &c.Name, &c.Credential, &c.SignCount, &created, &used); err != nil {
		return nil, err
	}
	c.CreatedAt, c.LastUsedAt = fromMicros(created), fromNullMicros(used)
	return &c, nil
}

// CreateWebAuthnCredential stores a passkey. ErrConflict if the credential id
// is registered already (to anyone); ErrNotFound if the user does not exist.
func (db *DB) CreateWebAuthnCredential(ctx context.Context, c *WebAuthnCredential) error {
	const op = "create webauthn credential"
	if c == nil || c.ID == "" || c.UserID == "" || len(c.Credential) == 0 || len(c.ID) > 1400 || len(c.Name) > 200 {
		return fmt.Errorf("store: %s: %w", op, errors.New("id (at most 1400 bytes), user id and credential must be set; name at most 200 bytes"))
	}
	q := rebind(db.dialect, `INSERT INTO webauthn_credentials (`+webauthnColumns+`) VALUES (?, ?, ?, ?, ?, ?, NULL)`)
	return wrap(op, db.retry(ctx, func() error {
		_, err := db.sql.ExecContext(ctx, q, c.ID, c.UserID, c.Name, c.Credential, c.SignCount, micros(c.CreatedAt))
		return err
	}))
}

// WebAuthnCredentialByID returns a passkey by credential id, or ErrNotFound.
func (db *DB) WebAuthnCredentialByID(ctx context.Context, id string) (*WebAuthnCredential, error) {
	c, err := scanWebAuthn(db.sql.QueryRowContext(ctx, rebind(db.dialect, `SELECT `+webauthnColumns+` FROM webauthn_credentials WHERE id = ?`), id))
	return c, wrap("webauthn credential", err)
}

// ListWebAuthnCredentials returns the user's passkeys, oldest first.
func (db *DB) ListWebAuthnCredentials(ctx context.Context, userID string) ([]WebAuthnCredential, error) {
	const op = "list webauthn credentials"
	rows, err := db.sql.QueryContext(ctx, rebind(db.dialect, `SELECT `+webauthnColumns+` FROM webauthn_credentials
		WHERE user_id = ? ORDER BY created_at, id`), userID)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var out []WebAuthnCredential
	for rows.Next() {
		c, err := scanWebAuthn(rows)
		if err != nil {
			return nil, wrap(op, err)
		}
		out = append(out, *c)
	}
	return out, wrap(op, rows.Err())
}

// UpdateWebAuthnUse records a sign-in with a passkey: it sets the sign count
// to newCount and the record to credential, only if the stored count is still
// oldCount (compare-and-set, so two sign-ins cannot both pass the counter
// check). It reports whether it did.
func (db *DB) UpdateWebAuthnUse(ctx context.Context, id string, oldCount, newCount int64, credential []byte, at time.Time) (bool, error) {
	var ok bool
	err := db.retry(ctx, func() error {
		var err error
		ok, err = exec1(ctx, db.sql, rebind(db.dialect, `UPDATE webauthn_credentials SET sign_count = ?, credential = ?, last_used_at = ?
			WHERE id = ? AND sign_count = ?`), newCount, credential, micros(at), id, oldCount)
		return err
	})
	return ok, wrap("update webauthn use", err)
}

// DeleteWebAuthnCredential removes the user's passkey id. ErrNotFound if the
// user has no such passkey.
func (db *DB) DeleteWebAuthnCredential(ctx context.Context, userID, id string) error {
	const op = "delete webauthn credential"
	var ok bool
	err := db.retry(ctx, func() error {
		var err error
		ok, err = exec1(ctx, db.sql, rebind(db.dialect, `DELETE FROM webauthn_credentials WHERE id = ? AND user_id = ?`), id, userID)
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

// Identity links an account at a social-login provider to a user.
type Identity struct {
	Provider  string
	Subject   string // the provider's "sub"
	UserID    string
	CreatedAt time.Time
}

// LinkIdentity stores a link. ErrConflict if the provider account is linked
// already; ErrNotFound if the user does not exist.
func (db *DB) LinkIdentity(ctx context.Context, i *Identity) error {
	const op = "link identity"
	if i == nil || i.Provider == "" || i.Subject == "" || i.UserID == "" || len(i.Subject) > 255 || len(i.Provider) > 64 {
		return fmt.Errorf("store: %s: %w", op, errors.New("provider (at most 64 bytes), subject (at most 255) and user id must be set"))
	}
	return wrap(op, db.retry(ctx, func() error {
		_, err := db.sql.ExecContext(ctx, rebind(db.dialect, `INSERT INTO user_identities (provider, subject, user_id, created_at) VALUES (?, ?, ?, ?)`),
			i.Provider, i.Subject, i.UserID, micros(i.CreatedAt))
		return err
	}))
}

// IdentityByProvider returns the link for a provider account, or ErrNotFound.
func (db *DB) IdentityByProvider(ctx context.Context, provider, subject string) (*Identity, error) {
	var (
		i       Identity
		created int64
	)
	err := db.sql.QueryRowContext(ctx, rebind(db.dialect, `SELECT provider, subject, user_id, created_at FROM user_identities
		WHERE provider = ? AND subject = ?`), provider, subject).Scan(&i.Provider, &i.Subject, &i.UserID, &created)
	if err != nil {
		return nil, wrap("identity by provider", err)
	}
	i.CreatedAt = fromMicros(created)
	return &i, nil
}

// ListIdentities returns the user's linked provider accounts.
func (db *DB) ListIdentities(ctx context.Context, userID string) ([]Identity, error) {
	const op = "list identities"
	rows, err := db.sql.QueryContext(ctx, rebind(db.dialect, `SELECT provider, subject, user_id, created_at FROM user_identities
		WHERE user_id = ? ORDER BY created_at, provider`), userID)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var out []Identity
	for rows.Next() {
		var (
			i       Identity
			created int64
		)
		if err := rows.Scan(&i.Provider, &i.Subject, &i.UserID, &created); err != nil {
			return nil, wrap(op, err)
		}
		i.CreatedAt = fromMicros(created)
		out = append(out, i)
	}
	return out, wrap(op, rows.Err())
}
