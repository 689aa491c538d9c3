-- Gatehouse schema, PostgreSQL dialect. Keep in step with migrations/sqlite.
-- Times are BIGINT unix microseconds, UTC (the same representation as SQLite, so
-- both dialects round-trip identically). String lists and event details are JSON
-- text. Identifier columns use the "C" collation: byte order, the same as
-- SQLite's BINARY, so that ORDER BY id and keyset paging agree across dialects and
-- do not depend on the database's locale.

-- +goose Up
CREATE TABLE users (
    id             TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    email_index    BYTEA   UNIQUE,
    email_sealed   BYTEA,
    password_hash  TEXT    NOT NULL DEFAULT '',
    roles          TEXT    NOT NULL DEFAULT '[]',
    plan           TEXT    NOT NULL DEFAULT '',
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    locked_at      BIGINT,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);

CREATE TABLE sessions (
    id              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    user_id         TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    generation      BIGINT NOT NULL,
    amr             TEXT   NOT NULL DEFAULT '[]',
    user_agent      TEXT   NOT NULL DEFAULT '',
    ip              TEXT   NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    revoke_reason   TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_created ON sessions (user_id, created_at);
CREATE INDEX sessions_idle_expires ON sessions (idle_expires_at);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- One token per generation of a family: a second row for the same generation
-- would mean two live branches of one family.
CREATE TABLE refresh_tokens (
    hash             BYTEA  NOT NULL PRIMARY KEY,
    session_id       TEXT COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation       BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    rotated_at       BIGINT,
    successor_sealed BYTEA,
    UNIQUE (session_id, generation)
);

CREATE TABLE signing_keys (
    id             TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    algorithm      TEXT   NOT NULL,
    state          TEXT   NOT NULL CHECK (state IN ('next', 'active', 'retiring', 'retired')),
    public_jwk     BYTEA  NOT NULL,
    private_sealed BYTEA  NOT NULL,
    created_at     BIGINT NOT NULL,
    activated_at   BIGINT,
    retiring_at    BIGINT,
    retired_at     BIGINT
);
-- At most one key signs at a time, whatever the callers do.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';

CREATE TABLE events (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    type       TEXT   NOT NULL,
    at         BIGINT NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL DEFAULT '',
    session_id TEXT COLLATE "C" NOT NULL DEFAULT '',
    ip         TEXT   NOT NULL DEFAULT '',
    request_id TEXT   NOT NULL DEFAULT '',
    detail     TEXT   NOT NULL DEFAULT '{}'
);
CREATE INDEX events_at ON events (at);
CREATE INDEX events_user_at ON events (user_id, at);
CREATE INDEX events_type_at ON events (type, at);

CREATE TABLE throttles (
    throttle_key TEXT   NOT NULL PRIMARY KEY,
    hits         BIGINT NOT NULL,
    reset_at     BIGINT NOT NULL
);
CREATE INDEX throttles_reset_at ON throttles (reset_at);

-- +goose Down
DROP TABLE throttles;
DROP TABLE events;
DROP TABLE signing_keys;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
