package store

import (
	"context"
	"time"
)

// Forgive takes one hit back from key's counter in its current window (a sign-in
// that was counted before the password was checked turned out to be right). It
// never goes below zero and never touches an expired window. Forgiving a key
// without a counter is not an error.
func (db *DB) Forgive(ctx context.Context, key string, now time.Time) error {
	return wrap("forgive", db.retry(ctx, func() error {
		_, err := db.sql.ExecContext(ctx, db.q.forgive, db.throttleKey(key), micros(now))
		return err
	}))
}
