package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Hit counts one event (a failed login) against key in a fixed window and
// returns the count in the current window and when the window ends. If the key
// has no counter, or its window ended at or before now, a new window of length
// window starts at now with count 1. It is one atomic statement: concurrent hits
// on a key each get a distinct count, so parallel guesses cannot slip under a
// threshold by all reading the same value.
func (db *DB) Hit(ctx context.Context, key string, window time.Duration, now time.Time) (int64, time.Time, error) {
	const op = "hit"
	if window <= 0 {
		return 0, time.Time{}, fmt.Errorf("store: %s: %w", op, errors.New("window must be positive"))
	}
	var count, resetAt int64
	nowUS := micros(now)
	key = db.throttleKey(key)
	err := db.retry(ctx, func() error {
		return db.sql.QueryRowContext(ctx, db.q.hit, key, micros(now.Add(window)), nowUS, nowUS).Scan(&count, &resetAt)
	})
	if err != nil {
		return 0, time.Time{}, wrap(op, err)
	}
	return count, fromMicros(resetAt), nil
}

// Peek returns key's count and window end without counting: 0 and the zero
// time if there is no counter or its window has ended at or before now.
func (db *DB) Peek(ctx context.Context, key string, now time.Time) (int64, time.Time, error) {
	var count, resetAt int64
	err := db.sql.QueryRowContext(ctx, db.q.peek, db.throttleKey(key)).Scan(&count, &resetAt)
	if errors.Is(err, sql.ErrNoRows) || err == nil && resetAt <= micros(now) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, wrap("peek", err)
	}
	return count, fromMicros(resetAt), nil
}

// ResetThrottle deletes key's counter (after a successful login, or by an
// administrator). Resetting a key without a counter is not an error.
func (db *DB) ResetThrottle(ctx context.Context, key string) error {
	return wrap("reset throttle", db.retry(ctx, func() error {
		_, err := db.sql.ExecContext(ctx, db.q.resetThrottle, db.throttleKey(key))
		return err
	}))
}

// throttleKey is the key a counter is stored under. With a FieldSealer it is a
// keyed blind index of the caller's key: callers key counters by client IP and
// by account, and neither belongs in the store in plaintext. The index is
// deterministic, so counting is unchanged.
func (db *DB) throttleKey(key string) string {
	if db.fields == nil {
		return key
	}
	return "bi:" + hex.EncodeToString(db.fields.Index(PurposeThrottleKey, []byte(key)))
}
