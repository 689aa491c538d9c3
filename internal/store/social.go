package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// CreateUserWithIdentity creates u and links the provider account i to it in
// one transaction (i.UserID is set to u.ID), so a sign-in through a provider
// never leaves an account behind without its link, nor a link without its
// account. ErrConflict, and nothing written, if u's id or email index is
// taken or the provider account is linked already.
func (db *DB) CreateUserWithIdentity(ctx context.Context, u *User, i *Identity) error {
	const op = "create user with identity"
	if u == nil || u.ID == "" || i == nil || i.Provider == "" || i.Subject == "" || len(i.Subject) > 255 || len(i.Provider) > 64 {
		return fmt.Errorf("store: %s: %w", op, errors.New("user id, provider (at most 64 bytes) and subject (at most 255) must be set"))
	}
	roles, err := encodeList(u.Roles)
	if err != nil {
		return wrap(op, err)
	}
	i.UserID = u.ID
	return wrap(op, db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q.createUser, u.ID, nullBytes(u.EmailIndex), nullBytes(u.EmailSealed),
			u.PasswordHash, roles, u.Plan, u.EmailVerified, nullMicros(u.LockedAt), micros(u.CreatedAt), micros(u.UpdatedAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, rebind(db.dialect, `INSERT INTO user_identities (provider, subject, user_id, created_at) VALUES (?, ?, ?, ?)`),
			i.Provider, i.Subject, i.UserID, micros(i.CreatedAt))
		return err
	}))
}
