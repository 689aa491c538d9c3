-- Gatehouse schema, SQLite dialect. Keep in step with migrations/postgres.
-- Times are INTEGER unix microseconds, UTC. String lists and event details are
-- JSON text. Tables are STRICT so a value of the wrong type is an error, not a
-- silent conversion.

-- +goose Up
CREATE TABLE users (
    id             TEXT    NOT NULL PRIMARY KEY,
    email_index    BLOB    UNIQUE,
    email_sealed   BLOB,
    password_hash  TEXT    NOT NULL DEFAULT '',
    roles          TEXT    NOT NULL DEFAULT '[]',
    plan           TEXT    NOT NULL DEFAULT '',
    email_verified INTEGER NOT NULL DEFAULT 0,
    locked_at      INTEGER,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    id              TEXT    NOT NULL PRIMARY KEY,
    user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    generation      INTEGER NOT NULL,
    amr             TEXT    NOT NULL DEFAULT '[]',
    user_agent      TEXT    NOT NULL DEFAULT '',
    ip              TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER NOT NULL,
    idle_expires_at INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
    revoke_reason   TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX sessions_user_created ON sessions (user_id, created_at);
CREATE INDEX sessions_idle_expires ON sessions (idle_expires_at);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- One token per generation of a family: a second row for the same generation
-- would mean two live branches of one family.
CREATE TABLE refresh_tokens (
    hash             BLOB    NOT NULL PRIMARY KEY,
    session_id       TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation       INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    rotated_at       INTEGER,
    successor_sealed BLOB,
    UNIQUE (session_id, generation)
) STRICT;

CREATE TABLE signing_keys (
    id             TEXT    NOT NULL PRIMARY KEY,
    algorithm      TEXT    NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('next', 'active', 'retiring', 'retired')),
    public_jwk     BLOB    NOT NULL,
    private_sealed BLOB    NOT NULL,
    created_at     INTEGER NOT NULL,
    activated_at   INTEGER,
    retiring_at    INTEGER,
    retired_at     INTEGER
) STRICT;
-- At most one key signs at a time, whatever the callers do.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';

CREATE TABLE events (
    id         TEXT    NOT NULL PRIMARY KEY,
    type       TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    user_id    TEXT    NOT NULL DEFAULT '',
    session_id TEXT    NOT NULL DEFAULT '',
    ip         TEXT    NOT NULL DEFAULT '',
    request_id TEXT    NOT NULL DEFAULT '',
    detail     TEXT    NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX events_at ON events (at);
CREATE INDEX events_user_at ON events (user_id, at);
CREATE INDEX events_type_at ON events (type, at);

CREATE TABLE throttles (
    throttle_key TEXT    NOT NULL PRIMARY KEY,
    hits         INTEGER NOT NULL,
    reset_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX throttles_reset_at ON throttles (reset_at);

-- +goose Down
DROP TABLE throttles;
DROP TABLE events;
DROP TABLE signing_keys;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
