package store

import (
	"context"
	"strings"
	"time"
)

// EventQuery selects events for the admin API and the dashboard, newest first.
// Zero values do not filter. It is EventFilter plus the request's origin fields.
type EventQuery struct {
	Type      string
	UserID    string
	SessionID string
	IP        string
	Since     time.Time
	Before    time.Time // exclusive; pass the last event's Time for the next page
	Limit     int       // 0 means 100; capped at 1000
}

// QueryEvents returns the events that match q, newest first (ties broken by
// ID, descending). Paging works as for ListEvents.
func (db *DB) QueryEvents(ctx context.Context, q EventQuery) ([]Event, error) {
	const op = "query events"
	var (
		where []string
		args  []any
	)
	for _, f := range []struct{ col, v string }{{"type", q.Type}, {"user_id", q.UserID}, {"session_id", q.SessionID}} {
		if f.v != "" {
			where, args = append(where, f.col+" = ?"), append(args, f.v)
		}
	}
	if q.IP != "" {
		w, a := db.ipFilter(q.IP)
		where, args = append(where, w), append(args, a...)
	}
	if !q.Since.IsZero() {
		where, args = append(where, "at >= ?"), append(args, micros(q.Since))
	}
	if !q.Before.IsZero() {
		where, args = append(where, "at < ?"), append(args, micros(q.Before))
	}
	s := "SELECT " + eventCols + " FROM events"
	if len(where) > 0 {
		s += " WHERE " + strings.Join(where, " AND ")
	}
	s += " ORDER BY at DESC, id DESC LIMIT ?"
	args = append(args, clampLimit(q.Limit))
	rows, err := db.sql.QueryContext(ctx, rebind(db.dialect, s), args...)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := db.scanEvent(rows)
		if err != nil {
			return nil, wrap(op, err)
		}
		out = append(out, e)
	}
	return out, wrap(op, rows.Err())
}
