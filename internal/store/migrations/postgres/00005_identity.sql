-- +goose Up
-- One-time codes of every kind the identity flows hand out: MFA tokens, email
-- verification and password-reset codes, social-login state and authorization
-- codes, WebAuthn ceremonies. id is a hash of the code (or a random id when the
-- code is short and looked up by subject); the code itself is never stored.
-- subject is an optional blind index to find a user's latest code of a kind.
-- Attempts are counted and used_at set by single conditional updates, so
-- parallel guesses cannot exceed max_attempts and a code is used at most once.
CREATE TABLE one_time_codes (
    id           TEXT COLLATE "C"    NOT NULL PRIMARY KEY,
    kind         TEXT    NOT NULL,
    user_id      TEXT COLLATE "C"    NOT NULL DEFAULT '',
    subject      BYTEA,
    data         BYTEA,
    attempts     BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL CHECK (max_attempts > 0),
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);
CREATE INDEX one_time_codes_subject ON one_time_codes (kind, subject, created_at);
CREATE INDEX one_time_codes_user ON one_time_codes (user_id, kind);
CREATE INDEX one_time_codes_expires_at ON one_time_codes (expires_at);

-- Recovery codes: keyed hashes only; used_at set once.
CREATE TABLE recovery_codes (
    user_id    TEXT COLLATE "C"    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BYTEA    NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- Passkeys. id is the credential id (base64url); credential is the WebAuthn
-- library's record (public key, flags, AAGUID, transports) as JSON. sign_count
-- is kept apart so a sign-in can compare-and-set it.
CREATE TABLE webauthn_credentials (
    id           TEXT COLLATE "C"    NOT NULL PRIMARY KEY,
    user_id      TEXT COLLATE "C"    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL DEFAULT '',
    credential   BYTEA    NOT NULL,
    sign_count   BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);

-- Accounts at social-login providers linked to Gatehouse users.
CREATE TABLE user_identities (
    provider   TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    user_id    TEXT COLLATE "C"    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX user_identities_user ON user_identities (user_id);

-- The last TOTP time step accepted, so a code is never accepted twice.
ALTER TABLE user_secrets ADD COLUMN counter BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE user_secrets DROP COLUMN counter;
DROP TABLE user_identities;
DROP TABLE webauthn_credentials;
DROP TABLE recovery_codes;
DROP TABLE one_time_codes;
