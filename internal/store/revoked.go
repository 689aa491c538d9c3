package store

import (
	"context"
	"time"
)

// RevokedSession is a session id and when it was revoked.
type RevokedSession struct {
	ID        string
	RevokedAt time.Time
}

// RevokedSince lists sessions revoked at or after since, oldest first, at most
// limit (≤0 → 1000, capped at 10000). Gateways poll it so that a revocation made
// by any process — another replica, the CLI — reaches them without Redis.
func (db *DB) RevokedSince(ctx context.Context, since time.Time, limit int) ([]RevokedSession, error) {
	if limit <= 0 {
		limit = 1000
	}
	limit = min(limit, 10000)
	q := rebind(db.dialect, `SELECT id, revoked_at FROM sessions WHERE revoked_at >= ? ORDER BY revoked_at LIMIT ?`)
	rows, err := db.sql.QueryContext(ctx, q, micros(since), limit)
	if err != nil {
		return nil, wrap("revoked since", err)
	}
	defer rows.Close()
	var out []RevokedSession
	for rows.Next() {
		var r RevokedSession
		var at int64
		if err := rows.Scan(&r.ID, &at); err != nil {
			return nil, wrap("revoked since", err)
		}
		r.RevokedAt = fromMicros(at)
		out = append(out, r)
	}
	return out, wrap("revoked since", rows.Err())
}
