package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
)

// InsertEvent stores the audit event e. An empty e.ID is filled in with a
// random identifier before the insert. ErrConflict if the ID is taken.
func (db *DB) InsertEvent(ctx context.Context, e *Event) error {
	const op = "insert event"
	if e == nil || e.Type == "" {
		return fmt.Errorf("store: %s: %w", op, errors.New("event type is empty"))
	}
	detail, err := encodeDetail(e.Detail)
	if err != nil {
		return wrap(op, err)
	}
	if e.ID == "" {
		e.ID = rand.Text()
	}
	// Why sealed, with a blind index: an IP address is personal data, but
	// operators filter events by IP; the keyed index answers "events from this
	// IP" without revealing any IP to whoever reads the store.
	ip, ipSealed, err := db.sealField(PurposeEventIP, e.IP, "events", "ip", e.ID)
	if err != nil {
		return wrap(op, err)
	}
	ipIndex := db.ipIndex(e.IP)
	return wrap(op, db.retry(ctx, func() error {
		_, err := db.sql.ExecContext(ctx, db.q.insertEvent, e.ID, e.Type, micros(e.Time), e.UserID, e.SessionID,
			ip, e.RequestID, detail, nullBytes(ipSealed), nullBytes(ipIndex))
		return err
	}))
}

// ListEvents returns the events that match f, newest first (ties broken by ID,
// descending). To page backwards pass the Time of the last event returned as the
// next Before; since Before is exclusive, events that share that exact
// microsecond but did not fit on the page are skipped, so paging is exact only
// where event times are distinct. Limit 0 means 100; it is capped at 1000.
func (db *DB) ListEvents(ctx context.Context, f EventFilter) ([]Event, error) {
	const op = "list events"
	var (
		where []string
		args  []any
	)
	if f.Type != "" {
		where, args = append(where, "type = ?"), append(args, f.Type)
	}
	if f.UserID != "" {
		where, args = append(where, "user_id = ?"), append(args, f.UserID)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "at >= ?"), append(args, micros(f.Since))
	}
	if !f.Before.IsZero() {
		where, args = append(where, "at < ?"), append(args, micros(f.Before))
	}
	q := "SELECT " + eventCols + " FROM events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY at DESC, id DESC LIMIT ?"
	args = append(args, clampLimit(f.Limit))

	rows, err := db.sql.QueryContext(ctx, rebind(db.dialect, q), args...)
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
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}

func (db *DB) scanEvent(s scanner) (Event, error) {
	var (
		e        Event
		at       int64
		detail   string
		ipSealed []byte
		ipIndex  []byte
	)
	if err := s.Scan(&e.ID, &e.Type, &at, &e.UserID, &e.SessionID, &e.IP, &e.RequestID, &detail, &ipSealed, &ipIndex); err != nil {
		return Event{}, err
	}
	e.Time = fromMicros(at)
	var err error
	if e.Detail, err = decodeDetail(detail); err != nil {
		return Event{}, err
	}
	if e.IP, err = db.openField(PurposeEventIP, e.IP, ipSealed, "events", "ip", e.ID); err != nil {
		return Event{}, err
	}
	return e, nil
}

// ipFilter is the WHERE clause and arguments that select events from ip: by
// blind index for sealed rows, by the plaintext column for rows written before
// sealing (or by a DB without a sealer).
func (db *DB) ipFilter(ip string) (string, []any) {
	if idx := db.ipIndex(ip); idx != nil {
		return "(ip_index = ? OR (ip_sealed IS NULL AND ip = ?))", []any{idx, ip}
	}
	return "ip = ?", []any{ip}
}
