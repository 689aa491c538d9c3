package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

func (db *DB) scanSession(s scanner) (Session, error) {
	var (
		ss                                 Session
		amr                                string
		created, lastUsed, idle, expiresAt int64
		revokedAt                          sql.NullInt64
		ipSealed, uaSealed                 []byte
	)
	if err := s.Scan(&ss.ID, &ss.UserID, &ss.Generation, &amr, &ss.UserAgent, &ss.IP,
		&created, &lastUsed, &idle, &expiresAt, &revokedAt, &ss.RevokeReason, &ipSealed, &uaSealed); err != nil {
		return Session{}, err
	}
	if err := db.openSession(&ss, ipSealed, uaSealed); err != nil {
		return Session{}, err
	}
	var err error
	if ss.AMR, err = decodeList(amr); err != nil {
		return Session{}, err
	}
	ss.CreatedAt, ss.LastUsedAt = fromMicros(created), fromMicros(lastUsed)
	ss.IdleExpiresAt, ss.ExpiresAt = fromMicros(idle), fromMicros(expiresAt)
	ss.RevokedAt = fromNullMicros(revokedAt)
	return ss, nil
}

// openSession fills ss.IP and ss.UserAgent from their sealed columns when set.
func (db *DB) openSession(ss *Session, ipSealed, uaSealed []byte) error {
	var err error
	if ss.IP, err = db.openField(PurposeSessionIP, ss.IP, ipSealed, "sessions", "ip", ss.ID); err != nil {
		return err
	}
	ss.UserAgent, err = db.openField(PurposeSessionUserAgent, ss.UserAgent, uaSealed, "sessions", "user_agent", ss.ID)
	return err
}

func insertToken(ctx context.Context, tx *sql.Tx, q string, t *RefreshToken) error {
	_, err := tx.ExecContext(ctx, q, t.Hash, t.SessionID, t.Generation, micros(t.CreatedAt),
		nullMicros(t.RotatedAt), nullBytes(t.SuccessorSealed))
	return err
}

// CreateSession inserts the session s and its first refresh token in one
// transaction: a session never exists without its token, nor a token without
// its session. first.SessionID may be empty (it is set to s.ID) but must not name
// another session. ErrNotFound if s.UserID names no user; ErrConflict if the
// session ID or the token hash is taken.
func (db *DB) CreateSession(ctx context.Context, s *Session, first *RefreshToken) error {
	const op = "create session"
	switch {
	case s == nil || s.ID == "":
		return fmt.Errorf("store: %s: %w", op, errors.New("session id is empty"))
	case first == nil || len(first.Hash) == 0:
		return fmt.Errorf("store: %s: %w", op, errors.New("first refresh token hash is empty"))
	case first.SessionID != "" && first.SessionID != s.ID:
		return fmt.Errorf("store: %s: %w", op, errors.New("first refresh token belongs to another session"))
	}
	first.SessionID = s.ID
	amr, err := encodeList(s.AMR)
	if err != nil {
		return wrap(op, err)
	}
	// Why sealed: an IP address and a user agent are personal data, and the
	// store is assumed readable by an attacker (a leaked backup).
	ip, ipSealed, err := db.sealField(PurposeSessionIP, s.IP, "sessions", "ip", s.ID)
	if err != nil {
		return wrap(op, err)
	}
	ua, uaSealed, err := db.sealField(PurposeSessionUserAgent, s.UserAgent, "sessions", "user_agent", s.ID)
	if err != nil {
		return wrap(op, err)
	}
	return wrap(op, db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q.createSession, s.ID, s.UserID, s.Generation, amr, ua, ip,
			micros(s.CreatedAt), micros(s.LastUsedAt), micros(s.IdleExpiresAt), micros(s.ExpiresAt),
			nullMicros(s.RevokedAt), s.RevokeReason, nullBytes(ipSealed), nullBytes(uaSealed)); err != nil {
			return err
		}
		return insertToken(ctx, tx, db.q.createToken, first)
	}))
}

// SessionByID returns the session, active or not, or ErrNotFound.
func (db *DB) SessionByID(ctx context.Context, id string) (*Session, error) {
	s, err := db.scanSession(db.sql.QueryRowContext(ctx, db.q.sessionByID, id))
	if err != nil {
		return nil, wrap("session by id", err)
	}
	return &s, nil
}

// ListSessions returns the user's sessions that are Active at now, newest first.
func (db *DB) ListSessions(ctx context.Context, userID string, now time.Time) ([]Session, error) {
	const op = "list sessions"
	rows, err := db.sql.QueryContext(ctx, db.q.listSessions, userID, micros(now), micros(now))
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		s, err := db.scanSession(rows)
		if err != nil {
			return nil, wrap(op, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}

// RevokeSession revokes the session at at with reason. It returns true if this
// call revoked it and false if it was already revoked (the first revocation's time
// and reason are kept); ErrNotFound if there is no such session.
func (db *DB) RevokeSession(ctx context.Context, id, reason string, at time.Time) (bool, error) {
	const op = "revoke session"
	var revoked bool
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		revoked, err = exec1(ctx, tx, db.q.revokeSession, micros(at), reason, id)
		if err != nil {
			return err
		}
		if !revoked {
			var one int
			return tx.QueryRowContext(ctx, db.q.sessionExists, id).Scan(&one)
		}
		// Why: a revoked family must not be able to hand out a sealed successor
		// again, whatever the caller checks afterwards; successors are kept only for
		// the reuse leeway of a live family. The session row is locked before its
		// tokens, as in a rotation's critical part, so the two cannot deadlock.
		_, err = tx.ExecContext(ctx, db.q.eraseSessionSuccessors, id)
		return err
	})
	if err != nil {
		return false, wrap(op, err)
	}
	return revoked, nil
}

// RevokeUserSessions revokes every not-yet-revoked session of the user except
// exceptID (empty: none excepted) and returns the IDs this call revoked, sorted.
// Expired sessions are revoked too: revocation is permanent, expiry is not a
// promise the row will never be extended by a bug.
func (db *DB) RevokeUserSessions(ctx context.Context, userID, exceptID, reason string, at time.Time) ([]string, error) {
	const op = "revoke user sessions"
	var ids []string
	err := db.tx(ctx, func(tx *sql.Tx) error {
		ids = ids[:0]
		rows, err := tx.QueryContext(ctx, db.q.revokeUserSessions, micros(at), reason, userID, exceptID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		// Why: as in RevokeSession, sealed successors die with the family.
		_, err = tx.ExecContext(ctx, db.q.eraseUserSuccessors, userID)
		return err
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	slices.Sort(ids)
	return ids, nil
}

// RefreshToken returns the refresh token with the given hash and its session,
// or ErrNotFound. The token is returned whether or not it was rotated, and the
// session whether or not it is active: deciding what that means (a valid
// refresh, a retry within the leeway, or reuse) is the caller's job.
func (db *DB) RefreshToken(ctx context.Context, hash []byte) (*RefreshToken, *Session, error) {
	const op = "refresh token"
	if len(hash) == 0 {
		return nil, nil, fmt.Errorf("store: %s: %w", op, ErrNotFound)
	}
	var (
		t                                  RefreshToken
		s                                  Session
		tCreated                           int64
		tRotated                           sql.NullInt64
		amr                                string
		created, lastUsed, idle, expiresAt int64
		revokedAt                          sql.NullInt64
		ipSealed, uaSealed                 []byte
	)
	err := db.sql.QueryRowContext(ctx, db.q.tokenAndSession, hash).Scan(
		&t.Hash, &t.SessionID, &t.Generation, &tCreated, &tRotated, &t.SuccessorSealed,
		&s.ID, &s.UserID, &s.Generation, &amr, &s.UserAgent, &s.IP, &created, &lastUsed,
		&idle, &expiresAt, &revokedAt, &s.RevokeReason, &ipSealed, &uaSealed)
	if err != nil {
		return nil, nil, wrap(op, err)
	}
	if err := db.openSession(&s, ipSealed, uaSealed); err != nil {
		return nil, nil, wrap(op, err)
	}
	if s.AMR, err = decodeList(amr); err != nil {
		return nil, nil, wrap(op, err)
	}
	t.CreatedAt, t.RotatedAt = fromMicros(tCreated), fromNullMicros(tRotated)
	s.CreatedAt, s.LastUsedAt = fromMicros(created), fromMicros(lastUsed)
	s.IdleExpiresAt, s.ExpiresAt = fromMicros(idle), fromMicros(expiresAt)
	s.RevokedAt = fromNullMicros(revokedAt)
	return &t, &s, nil
}

// RotateRefreshToken replaces the session's live refresh token (r.OldHash, at
// r.OldGeneration) with r.New, in one transaction:
//
//  1. mark the old token rotated at r.Now and keep r.SuccessorSealed on it, only
//     if it belongs to the session and was not rotated yet;
//  2. advance the session to r.New.Generation (with LastUsedAt = r.Now and
//     IdleExpiresAt = r.IdleExpiresAt), only if it is still at r.OldGeneration and
//     not revoked;
//  3. insert r.New;
//  4. erase the sealed successors kept on older tokens of the family.
//
// If step 1 or 2 changes no row, another rotation (or a revocation) won: nothing
// is written and the error is ErrConflict. Under any number of concurrent
// rotations of the same token exactly one succeeds; lock contention is retried
// internally and never surfaces as a driver error. r.New.SessionID may be empty
// (it is set to r.SessionID); r.New.Generation must be greater than
// r.OldGeneration.
func (db *DB) RotateRefreshToken(ctx context.Context, r Rotation) error {
	const op = "rotate refresh token"
	switch {
	case len(r.OldHash) == 0 || len(r.New.Hash) == 0:
		return fmt.Errorf("store: %s: %w", op, errors.New("token hash is empty"))
	case r.New.SessionID != "" && r.New.SessionID != r.SessionID:
		return fmt.Errorf("store: %s: %w", op, errors.New("new token belongs to another session"))
	case r.New.Generation <= r.OldGeneration:
		return fmt.Errorf("store: %s: %w", op, errors.New("new generation must be greater than the old"))
	}
	r.New.SessionID = r.SessionID
	return wrap(op, db.tx(ctx, func(tx *sql.Tx) error {
		// Why conditional: "rotated_at IS NULL" makes the old token single-use.
		// Two refreshes racing with the same token both reach this statement; the
		// row lock (PostgreSQL) or the write lock (SQLite) lets one through, and the
		// other then finds the token rotated and changes nothing, so a stolen token
		// replayed concurrently with the legitimate one can never mint a second
		// branch of the family.
		ok, err := exec1(ctx, tx, db.q.rotateOld, micros(r.Now), nullBytes(r.SuccessorSealed), r.OldHash, r.SessionID)
		if err != nil {
			return err
		}
		if !ok {
			return ErrConflict
		}
		// Why: the session row is the family's single source of truth for which
		// generation is live; requiring the old generation and no revocation means a
		// token from a revoked or already-advanced family cannot move it forward.
		ok, err = exec1(ctx, tx, db.q.rotateSession, r.New.Generation, micros(r.Now), micros(r.IdleExpiresAt),
			r.SessionID, r.OldGeneration)
		if err != nil {
			return err
		}
		if !ok {
			return ErrConflict
		}
		if err := insertToken(ctx, tx, db.q.createToken, &r.New); err != nil {
			return err
		}
		// Why: a sealed successor exists only so that a client that lost the
		// response to the previous refresh can be given the same token within the
		// leeway. Once the family moves on, older successors have no use and would
		// only be material for an attacker holding a stale token, so they are erased.
		_, err = tx.ExecContext(ctx, db.q.eraseOlderSuccessors, r.SessionID, r.OldGeneration)
		return err
	}))
}

// PurgeExpired deletes, in one transaction, the sessions whose IdleExpiresAt or
// ExpiresAt is before sessionsBefore together with their refresh tokens, the
// events older than eventsBefore, and the throttle counters whose window ended at
// or before sessionsBefore (an expired counter reads as zero anyway). Revoked
// sessions are kept until they expire, so reuse of their tokens is still
// recognised. It returns the number of rows deleted across all tables.
func (db *DB) PurgeExpired(ctx context.Context, sessionsBefore, eventsBefore time.Time) (int64, error) {
	const op = "purge expired"
	var total int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		total = 0
		sb, eb := micros(sessionsBefore), micros(eventsBefore)
		for _, st := range []struct {
			q    string
			args []any
		}{
			{db.q.purgeTokens, []any{sb, sb}},
			{db.q.purgeSessions, []any{sb, sb}},
			{db.q.purgeEvents, []any{eb}},
			{db.q.purgeThrottles, []any{sb}},
		} {
			res, err := tx.ExecContext(ctx, st.q, st.args...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, wrap(op, err)
	}
	return total, nil
}
