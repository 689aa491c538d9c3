package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// User-secret kinds. A kind names what the secret is for; the purpose it is
// sealed under is stored with it.
const (
	SecretTOTP = "totp"
	// SecretOIDCPrefix + provider name: the provider's tokens for social login.
	SecretOIDCPrefix = "oidc:"
)

// UserSecret is a per-user secret sealed by the caller: a TOTP secret, an OIDC
// provider's tokens. Sealed must be bound to ("user_secrets", "sealed",
// UserSecretID(UserID, Kind)); the store never sees the secret itself.
type UserSecret struct {
	UserID    string
	Kind      string
	Purpose   string
	Sealed    []byte
	Counter   int64 // the last TOTP time step accepted (AdvanceSecretCounter)
	CreatedAt time.Time
	UpdatedAt time.Time
}

// UserSecretID is the row id a user secret is bound to when sealed.
func UserSecretID(userID, kind string) string { return userID + "/" + kind }

// PutUserSecret stores s, replacing the user's secret of the same kind (and
// keeping its CreatedAt). ErrNotFound if the user does not exist.
func (db *DB) PutUserSecret(ctx context.Context, s *UserSecret) error {
	const op = "put user secret"
	if s == nil || s.UserID == "" || s.Kind == "" || s.Purpose == "" || len(s.Sealed) == 0 {
		return fmt.Errorf("store: %s: %w", op, errors.New("user id, kind, purpose and sealed value must be set"))
	}
	q := rebind(db.dialect, `INSERT INTO user_secrets (id, user_id, kind, purpose, sealed, counter, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET purpose = excluded.purpose, sealed = excluded.sealed, counter = excluded.counter, updated_at = excluded.updated_at`)
	return wrap(op, db.retry(ctx, func() error {
		_, err := db.sql.ExecContext(ctx, q, UserSecretID(s.UserID, s.Kind), s.UserID, s.Kind, s.Purpose, s.Sealed, s.Counter,
			micros(s.CreatedAt), micros(s.UpdatedAt))
		return err
	}))
}

// UserSecret returns the user's secret of kind, or ErrNotFound.
func (db *DB) UserSecret(ctx context.Context, userID, kind string) (*UserSecret, error) {
	const op = "user secret"
	var (
		s                UserSecret
		created, updated int64
	)
	err := db.sql.QueryRowContext(ctx, rebind(db.dialect, `SELECT user_id, kind, purpose, sealed, counter, created_at, updated_at
		FROM user_secrets WHERE id = ?`), UserSecretID(userID, kind)).
		Scan(&s.UserID, &s.Kind, &s.Purpose, &s.Sealed, &s.Counter, &created, &updated)
	if err != nil {
		return nil, wrap(op, err)
	}
	s.CreatedAt, s.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &s, nil
}

// DeleteUserSecret removes the user's secret of kind. ErrNotFound if there is none.
func (db *DB) DeleteUserSecret(ctx context.Context, userID, kind string) error {
	const op = "delete user secret"
	var found bool
	err := db.retry(ctx, func() error {
		var err error
		found, err = exec1(ctx, db.sql, rebind(db.dialect, `DELETE FROM user_secrets WHERE id = ?`), UserSecretID(userID, kind))
		return err
	})
	if err != nil {
		return wrap(op, err)
	}
	if !found {
		return fmt.Errorf("store: %s: %w", op, ErrNotFound)
	}
	return nil
}
