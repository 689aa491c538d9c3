-- +goose Up
-- Gateways poll for sessions revoked since their last look (revocation reaches
-- every replica even without Redis); this keeps that poll an index range scan.
CREATE INDEX sessions_revoked_at ON sessions (revoked_at);

-- +goose Down
DROP INDEX sessions_revoked_at;
