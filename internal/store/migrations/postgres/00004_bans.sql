-- +goose Up
-- Temporary bans (by IP, user or session), made by detectors or an operator.
-- Gateways load active bans at start-up and poll for rows changed since their
-- last look (updated_at), so a ban or unban reaches replicas without Redis.
CREATE TABLE bans (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    kind       TEXT   NOT NULL CHECK (kind IN ('ip', 'user', 'session')),
    value      TEXT COLLATE "C" NOT NULL,
    reason     TEXT   NOT NULL DEFAULT '',
    source     TEXT   NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    lifted_at  BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX bans_updated_at ON bans (updated_at);
CREATE INDEX bans_expires_at ON bans (expires_at);

-- +goose Down
DROP TABLE bans;
