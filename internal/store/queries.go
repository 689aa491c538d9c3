package store

// queries holds every fixed statement, rebound for the dialect once, when the DB
// is opened. The SQL is written once, with "?" placeholders, for both dialects.
type queries struct {
	createUser, userByID, userByEmailIndex, listUsers          string
	setPasswordHash, setLocked, setRolesPlan, setEmailVerified string
	createSession, createToken, sessionByID, listSessions      string
	revokeSession, eraseSessionSuccessors, sessionExists       string
	eraseUserSuccessors, revokeUserSessions, tokenAndSession   string
	rotateOld, rotateSession, eraseOlderSuccessors             string
	purgeTokens, purgeSessions, purgeEvents, purgeThrottles    string
	createKey, listKeys                                        string
	insertEvent                                                string
	hit, peek, resetThrottle, forgive                          string
	transition                                                 map[string]string // by target state
}

const (
	userCols    = `id, email_index, email_sealed, password_hash, roles, plan, email_verified, locked_at, created_at, updated_at`
	sessionCols = `id, user_id, generation, amr, user_agent, ip, created_at, last_used_at, idle_expires_at, expires_at, revoked_at, revoke_reason, ip_sealed, user_agent_sealed`
	tokenCols   = `hash, session_id, generation, created_at, rotated_at, successor_sealed`
	keyCols     = `id, algorithm, state, public_jwk, private_sealed, created_at, activated_at, retiring_at, retired_at`
	eventCols   = `id, type, at, user_id, session_id, ip, request_id, detail, ip_sealed, ip_index`
)

func newQueries(rb func(string) string) queries {
	return queries{
		createUser:       rb(`INSERT INTO users (` + userCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		userByID:         rb(`SELECT ` + userCols + ` FROM users WHERE id = ?`),
		userByEmailIndex: rb(`SELECT ` + userCols + ` FROM users WHERE email_index = ?`),
		listUsers:        rb(`SELECT ` + userCols + ` FROM users WHERE id > ? ORDER BY id LIMIT ?`),
		setPasswordHash:  rb(`UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`),
		setLocked:        rb(`UPDATE users SET locked_at = ?, updated_at = ? WHERE id = ?`),
		setRolesPlan:     rb(`UPDATE users SET roles = ?, plan = ?, updated_at = ? WHERE id = ?`),
		setEmailVerified: rb(`UPDATE users SET email_verified = ?, updated_at = ? WHERE id = ?`),

		createSession: rb(`INSERT INTO sessions (` + sessionCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		createToken:   rb(`INSERT INTO refresh_tokens (` + tokenCols + `) VALUES (?, ?, ?, ?, ?, ?)`),
		sessionByID:   rb(`SELECT ` + sessionCols + ` FROM sessions WHERE id = ?`),
		listSessions: rb(`SELECT ` + sessionCols + ` FROM sessions
			WHERE user_id = ? AND revoked_at IS NULL AND idle_expires_at > ? AND expires_at > ?
			ORDER BY created_at DESC, id DESC`),
		revokeSession: rb(`UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL`),
		eraseSessionSuccessors: rb(`UPDATE refresh_tokens SET successor_sealed = NULL
			WHERE session_id = ? AND successor_sealed IS NOT NULL`),
		sessionExists: rb(`SELECT 1 FROM sessions WHERE id = ?`),
		eraseUserSuccessors: rb(`UPDATE refresh_tokens SET successor_sealed = NULL
			WHERE successor_sealed IS NOT NULL AND session_id IN
			(SELECT id FROM sessions WHERE user_id = ? AND revoked_at IS NOT NULL)`),
		revokeUserSessions: rb(`UPDATE sessions SET revoked_at = ?, revoke_reason = ?
			WHERE user_id = ? AND id <> ? AND revoked_at IS NULL RETURNING id`),
		tokenAndSession: rb(`SELECT t.hash, t.session_id, t.generation, t.created_at, t.rotated_at, t.successor_sealed,
			s.id, s.user_id, s.generation, s.amr, s.user_agent, s.ip, s.created_at, s.last_used_at,
			s.idle_expires_at, s.expires_at, s.revoked_at, s.revoke_reason, s.ip_sealed, s.user_agent_sealed
			FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.hash = ?`),

		rotateOld: rb(`UPDATE refresh_tokens SET rotated_at = ?, successor_sealed = ?
			WHERE hash = ? AND session_id = ? AND rotated_at IS NULL`),
		rotateSession: rb(`UPDATE sessions SET generation = ?, last_used_at = ?, idle_expires_at = ?
			WHERE id = ? AND generation = ? AND revoked_at IS NULL`),
		eraseOlderSuccessors: rb(`UPDATE refresh_tokens SET successor_sealed = NULL
			WHERE session_id = ? AND generation < ? AND successor_sealed IS NOT NULL`),

		purgeTokens: rb(`DELETE FROM refresh_tokens WHERE session_id IN
			(SELECT id FROM sessions WHERE idle_expires_at < ? OR expires_at < ?)`),
		purgeSessions:  rb(`DELETE FROM sessions WHERE idle_expires_at < ? OR expires_at < ?`),
		purgeEvents:    rb(`DELETE FROM events WHERE at < ?`),
		purgeThrottles: rb(`DELETE FROM throttles WHERE reset_at <= ?`),

		createKey: rb(`INSERT INTO signing_keys (` + keyCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		listKeys:  rb(`SELECT ` + keyCols + ` FROM signing_keys ORDER BY created_at, id`),
		transition: map[string]string{
			KeyActive:   rb(`UPDATE signing_keys SET state = ?, activated_at = ? WHERE id = ? AND state = ?`),
			KeyRetiring: rb(`UPDATE signing_keys SET state = ?, retiring_at = ? WHERE id = ? AND state = ?`),
			KeyRetired:  rb(`UPDATE signing_keys SET state = ?, retired_at = ? WHERE id = ? AND state = ?`),
		},

		insertEvent: rb(`INSERT INTO events (` + eventCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),

		// One statement, so that concurrent hits on one key are serialised by the
		// row lock (PostgreSQL) or the database lock (SQLite) and every caller sees
		// its own count: parallel guesses cannot all read the same old value.
		// Parameters: key, reset_at for a new window, now, now.
		hit: rb(`INSERT INTO throttles (throttle_key, hits, reset_at) VALUES (?, 1, ?)
			ON CONFLICT (throttle_key) DO UPDATE SET
				hits     = CASE WHEN throttles.reset_at <= ? THEN 1 ELSE throttles.hits + 1 END,
				reset_at = CASE WHEN throttles.reset_at <= ? THEN excluded.reset_at ELSE throttles.reset_at END
			RETURNING hits, reset_at`),
		peek:          rb(`SELECT hits, reset_at FROM throttles WHERE throttle_key = ?`),
		resetThrottle: rb(`DELETE FROM throttles WHERE throttle_key = ?`),
		// Conditional in one statement, so a forgiveness racing a hit or another
		// forgiveness can neither go below zero nor revive an ended window.
		forgive: rb(`UPDATE throttles SET hits = hits - 1 WHERE throttle_key = ? AND hits > 0 AND reset_at > ?`),
	}
}
