package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanUser(s scanner) (User, error) {
	var (
		u        User
		roles    string
		lockedAt sql.NullInt64
		created  int64
		updated  int64
	)
	if err := s.Scan(&u.ID, &u.EmailIndex, &u.EmailSealed, &u.PasswordHash, &roles, &u.Plan,
		&u.EmailVerified, &lockedAt, &created, &updated); err != nil {
		return User{}, err
	}
	var err error
	if u.Roles, err = decodeList(roles); err != nil {
		return User{}, err
	}
	u.LockedAt = fromNullMicros(lockedAt)
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return u, nil
}

// CreateUser inserts u. ErrConflict if u.ID or u.EmailIndex is taken. An empty
// EmailIndex or EmailSealed is stored as NULL: such an account (a service or
// social-only account without an address) cannot be found by email and never
// collides with another.
func (db *DB) CreateUser(ctx context.Context, u *User) error {
	const op = "create user"
	if u == nil || u.ID == "" {
		return fmt.Errorf("store: %s: %w", op, errors.New("user id is empty"))
	}
	roles, err := encodeList(u.Roles)
	if err != nil {
		return wrap(op, err)
	}
	return wrap(op, db.retry(ctx, func() error {
		_, err := db.sql.ExecContext(ctx, db.q.createUser, u.ID, nullBytes(u.EmailIndex), nullBytes(u.EmailSealed),
			u.PasswordHash, roles, u.Plan, u.EmailVerified, nullMicros(u.LockedAt), micros(u.CreatedAt), micros(u.UpdatedAt))
		return err
	}))
}

// UserByID returns the user with id, or ErrNotFound.
func (db *DB) UserByID(ctx context.Context, id string) (*User, error) {
	u, err := scanUser(db.sql.QueryRowContext(ctx, db.q.userByID, id))
	if err != nil {
		return nil, wrap("user by id", err)
	}
	return &u, nil
}

// UserByEmailIndex returns the user whose blind email index is idx, or
// ErrNotFound. An empty idx matches nobody.
func (db *DB) UserByEmailIndex(ctx context.Context, idx []byte) (*User, error) {
	const op = "user by email index"
	if len(idx) == 0 {
		return nil, fmt.Errorf("store: %s: %w", op, ErrNotFound)
	}
	u, err := scanUser(db.sql.QueryRowContext(ctx, db.q.userByEmailIndex, idx))
	if err != nil {
		return nil, wrap(op, err)
	}
	return &u, nil
}

// ListUsers returns up to limit users with an ID greater than afterID, ordered by
// ID (keyset paging: pass the last ID of a page to get the next). limit <= 0
// means 100; it is capped at 1000.
func (db *DB) ListUsers(ctx context.Context, afterID string, limit int) ([]User, error) {
	const op = "list users"
	rows, err := db.sql.QueryContext(ctx, db.q.listUsers, afterID, clampLimit(limit))
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, wrap(op, err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}

// updateUser runs one UPDATE on a user row; no row means ErrNotFound.
func (db *DB) updateUser(ctx context.Context, op, query string, args ...any) error {
	var found bool
	err := db.retry(ctx, func() error {
		var err error
		found, err = exec1(ctx, db.sql, query, args...)
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

// SetPasswordHash replaces the user's password hash (a PHC string; empty removes
// the password) and sets UpdatedAt to now. ErrNotFound if there is no such user.
func (db *DB) SetPasswordHash(ctx context.Context, userID, hash string, now time.Time) error {
	return db.updateUser(ctx, "set password hash", db.q.setPasswordHash, hash, micros(now), userID)
}

// SetLocked locks the account at *lockedAt, or unlocks it when lockedAt is nil,
// and sets UpdatedAt to now. ErrNotFound if there is no such user.
func (db *DB) SetLocked(ctx context.Context, userID string, lockedAt *time.Time, now time.Time) error {
	return db.updateUser(ctx, "set locked", db.q.setLocked, nullMicros(lockedAt), micros(now), userID)
}

// SetRolesPlan replaces the user's roles and plan and sets UpdatedAt to now.
// ErrNotFound if there is no such user.
func (db *DB) SetRolesPlan(ctx context.Context, userID string, roles []string, plan string, now time.Time) error {
	const op = "set roles and plan"
	r, err := encodeList(roles)
	if err != nil {
		return wrap(op, err)
	}
	return db.updateUser(ctx, op, db.q.setRolesPlan, r, plan, micros(now), userID)
}

// SetEmailVerified sets the verified flag and UpdatedAt = now. ErrNotFound if
// there is no such user.
func (db *DB) SetEmailVerified(ctx context.Context, userID string, verified bool, now time.Time) error {
	return db.updateUser(ctx, "set email verified", db.q.setEmailVerified, verified, micros(now), userID)
}
