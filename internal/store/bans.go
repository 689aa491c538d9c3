package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Ban kinds: what a ban matches at the edge.
const (
	BanIP      = "ip"      // a client address (exact, normalised)
	BanUser    = "user"    // a user id (the token's sub)
	BanSession = "session" // a session id (the token's sid)
)

// Ban is a temporary ban. It is active from CreatedAt until ExpiresAt unless
// LiftedAt is set. UpdatedAt changes on every write, so replicas can poll for
// bans made or lifted elsewhere.
type Ban struct {
	ID        string
	Kind      string // BanIP, BanUser or BanSession
	Value     string
	Reason    string // why, for operators: "brute_force_ip: 20 failed logins in 5m"
	Source    string // who: "detector:brute_force_ip", "admin:<name>", "cli"
	CreatedAt time.Time
	ExpiresAt time.Time
	LiftedAt  *time.Time
	UpdatedAt time.Time
}

// Active reports whether the ban applies at now.
func (b *Ban) Active(now time.Time) bool {
	return b.LiftedAt == nil && now.Before(b.ExpiresAt)
}

const banCols = "id, kind, value, reason, source, created_at, expires_at, lifted_at, updated_at"

// maxBanValue bounds what a ban can name (an IPv6 address, a user or session id).
const maxBanValue = 256

// InsertBan stores b. An empty b.ID is filled in; b.UpdatedAt is set to
// b.CreatedAt. ErrConflict if the id is taken.
func (db *DB) InsertBan(ctx context.Context, b *Ban) error {
	const op = "insert ban"
	switch {
	case b == nil:
		return fmt.Errorf("store: %s: %w", op, errors.New("ban is nil"))
	case b.Kind != BanIP && b.Kind != BanUser && b.Kind != BanSession:
		return fmt.Errorf("store: %s: %w", op, errors.New("ban kind must be ip, user or session"))
	case b.Value == "" || len(b.Value) > maxBanValue:
		return fmt.Errorf("store: %s: %w", op, errors.New("ban value is empty or too long"))
	case !b.ExpiresAt.After(b.CreatedAt):
		return fmt.Errorf("store: %s: %w", op, errors.New("ban expires before it starts"))
	}
	if b.ID == "" {
		b.ID = rand.Text()
	}
	b.UpdatedAt = b.CreatedAt
	return wrap(op, db.retry(ctx, func() error {
		_, err := db.sql.ExecContext(ctx, rebind(db.dialect, "INSERT INTO bans ("+banCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
			b.ID, b.Kind, b.Value, b.Reason, b.Source, micros(b.CreatedAt), micros(b.ExpiresAt), nullMicros(b.LiftedAt), micros(b.UpdatedAt))
		return err
	}))
}

// LiftBan ends the ban id at now and returns it. ErrNotFound if there is no
// such ban or it was already lifted (lifting is idempotent for callers that
// treat ErrNotFound as done).
func (db *DB) LiftBan(ctx context.Context, id string, now time.Time) (*Ban, error) {
	const op = "lift ban"
	var out *Ban
	err := db.tx(ctx, func(tx *sql.Tx) error {
		ok, err := exec1(ctx, tx, rebind(db.dialect, "UPDATE bans SET lifted_at = ?, updated_at = ? WHERE id = ? AND lifted_at IS NULL"),
			micros(now), micros(now), id)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		rows, err := tx.QueryContext(ctx, rebind(db.dialect, "SELECT "+banCols+" FROM bans WHERE id = ?"), id)
		if err != nil {
			return err
		}
		bans, err := scanBans(rows)
		if err != nil {
			return err
		}
		if len(bans) != 1 {
			return ErrNotFound
		}
		out = &bans[0]
		return nil
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}

// GetBan returns the ban id. ErrNotFound if there is none.
func (db *DB) GetBan(ctx context.Context, id string) (*Ban, error) {
	const op = "get ban"
	rows, err := db.sql.QueryContext(ctx, rebind(db.dialect, "SELECT "+banCols+" FROM bans WHERE id = ?"), id)
	if err != nil {
		return nil, wrap(op, err)
	}
	bans, err := scanBans(rows)
	if err != nil {
		return nil, wrap(op, err)
	}
	if len(bans) == 0 {
		return nil, wrap(op, ErrNotFound)
	}
	return &bans[0], nil
}

// ActiveBans lists the bans in force at now (started, not lifted, not expired), newest
// first, at most limit (≤0 → 1000, capped at 10000).
func (db *DB) ActiveBans(ctx context.Context, now time.Time, limit int) ([]Ban, error) {
	const op = "active bans"
	if limit <= 0 {
		limit = 1000
	}
	limit = min(limit, 10000)
	rows, err := db.sql.QueryContext(ctx, rebind(db.dialect,
		"SELECT "+banCols+" FROM bans WHERE lifted_at IS NULL AND created_at <= ? AND expires_at > ? ORDER BY created_at DESC, id DESC LIMIT ?"),
		micros(now), micros(now), limit)
	if err != nil {
		return nil, wrap(op, err)
	}
	out, err := scanBans(rows)
	return out, wrap(op, err)
}

// BansChangedSince lists bans created or lifted at or after since, oldest
// change first, at most limit (≤0 → 1000, capped at 10000). Gateways poll it so
// that a ban made by any process reaches them without Redis.
func (db *DB) BansChangedSince(ctx context.Context, since time.Time, limit int) ([]Ban, error) {
	const op = "bans changed since"
	if limit <= 0 {
		limit = 1000
	}
	limit = min(limit, 10000)
	rows, err := db.sql.QueryContext(ctx, rebind(db.dialect,
		"SELECT "+banCols+" FROM bans WHERE updated_at >= ? ORDER BY updated_at, id LIMIT ?"), micros(since), limit)
	if err != nil {
		return nil, wrap(op, err)
	}
	out, err := scanBans(rows)
	return out, wrap(op, err)
}

// PurgeBans deletes bans that ended (expired or lifted) before before, and
// returns how many it deleted.
func (db *DB) PurgeBans(ctx context.Context, before time.Time) (int64, error) {
	const op = "purge bans"
	var n int64
	err := db.retry(ctx, func() error {
		res, err := db.sql.ExecContext(ctx, rebind(db.dialect,
			"DELETE FROM bans WHERE expires_at < ? OR (lifted_at IS NOT NULL AND lifted_at < ?)"), micros(before), micros(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, wrap(op, err)
}

func scanBans(rows *sql.Rows) ([]Ban, error) {
	defer rows.Close()
	var out []Ban
	for rows.Next() {
		var (
			b                         Ban
			created, expires, updated int64
			lifted                    sql.NullInt64
		)
		if err := rows.Scan(&b.ID, &b.Kind, &b.Value, &b.Reason, &b.Source, &created, &expires, &lifted, &updated); err != nil {
			return nil, err
		}
		b.CreatedAt, b.ExpiresAt, b.UpdatedAt, b.LiftedAt = fromMicros(created), fromMicros(expires), fromMicros(updated), fromNullMicros(lifted)
		out = append(out, b)
	}
	return out, rows.Err()
}
