-- +goose Up
-- Envelope encryption, SQLite dialect. Keep in step with migrations/postgres.

-- Data keys (DEKs): random AES-256 keys, one active per (kind, purpose), each
-- stored only wrapped by the KEK (kek_id names which). "seal" keys encrypt
-- values; "index" keys compute blind indexes and are never rotated, so lookups
-- survive both KEK and data-key rotation. Retired keys still open old values.
CREATE TABLE data_keys (
    id          TEXT    NOT NULL PRIMARY KEY,
    purpose     TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('seal', 'index')),
    state       TEXT    NOT NULL CHECK (state IN ('active', 'retired')),
    wrapped_key BLOB    NOT NULL,
    kek_id      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
) STRICT;
CREATE UNIQUE INDEX data_keys_one_active ON data_keys (kind, purpose) WHERE state = 'active';

-- Personal data that used to be stored in plaintext gets sealed columns; the
-- plaintext columns stay (empty) for rows written before this migration until
-- "gatehouse keys rotate --data" seals them.
ALTER TABLE sessions ADD COLUMN ip_sealed BLOB;
ALTER TABLE sessions ADD COLUMN user_agent_sealed BLOB;
ALTER TABLE events ADD COLUMN ip_sealed BLOB;
-- A keyed blind index of the event's IP, so events can still be filtered by IP.
ALTER TABLE events ADD COLUMN ip_index BLOB;
CREATE INDEX events_ip_index_at ON events (ip_index, at);

-- Per-user secrets sealed by the caller: TOTP secrets, OIDC provider tokens.
-- id is user_id || '/' || kind, the row id the sealed value is bound to.
CREATE TABLE user_secrets (
    id         TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL,
    purpose    TEXT    NOT NULL,
    sealed     BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (user_id, kind)
) STRICT;

-- Transit keys: named, versioned keys for the backend's own fields. Each
-- version's key is sealed; id is name || '/' || version.
CREATE TABLE transit_keys (
    name                   TEXT    NOT NULL PRIMARY KEY,
    latest_version         INTEGER NOT NULL,
    min_decryption_version INTEGER NOT NULL,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
) STRICT;
CREATE TABLE transit_key_versions (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL REFERENCES transit_keys (name) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    key_sealed BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (name, version)
) STRICT;

-- Progress of "gatehouse keys rotate --data": one open run at most (open = 1;
-- NULL once finished), and per sealed column the last row id re-sealed, so a
-- run killed mid-way resumes where it stopped.
CREATE TABLE reseal_runs (
    id          TEXT    NOT NULL PRIMARY KEY,
    open        INTEGER UNIQUE CHECK (open = 1),
    started_at  INTEGER NOT NULL,
    finished_at INTEGER
) STRICT;
CREATE TABLE reseal_cursors (
    run_id   TEXT    NOT NULL REFERENCES reseal_runs (id) ON DELETE CASCADE,
    field    TEXT    NOT NULL,
    after_id TEXT    NOT NULL DEFAULT '',
    done     INTEGER NOT NULL DEFAULT 0,
    resealed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, field)
) STRICT;

-- +goose Down
DROP TABLE reseal_cursors;
DROP TABLE reseal_runs;
DROP TABLE transit_key_versions;
DROP TABLE transit_keys;
DROP TABLE user_secrets;
DROP INDEX events_ip_index_at;
ALTER TABLE events DROP COLUMN ip_index;
ALTER TABLE events DROP COLUMN ip_sealed;
ALTER TABLE sessions DROP COLUMN user_agent_sealed;
ALTER TABLE sessions DROP COLUMN ip_sealed;
DROP TABLE data_keys;
