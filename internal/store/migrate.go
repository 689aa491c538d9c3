package store

import (
	"context"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// Migrate applies every pending migration for the DB's dialect. It is idempotent.
// On PostgreSQL concurrent callers (replicas starting together) are serialised by
// a session advisory lock scoped to the current schema.
func (db *DB) Migrate(ctx context.Context) error {
	const op = "migrate"
	fsys, err := fs.Sub(migrationFiles, "migrations/"+db.dialect)
	if err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	opts := []goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(db.log),
		// Why: migration numbers are reserved per feature and may land out of
		// order (00004 before 00003); a database that already has a later one
		// must still get the earlier one instead of refusing to start.
		goose.WithAllowOutofOrder(true),
	}
	dialect := goose.DialectSQLite3
	if db.dialect == dialectPostgres {
		dialect = goose.DialectPostgres
		var schema string
		if err := db.sql.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
			return wrap(op, err)
		}
		// The lock id is derived from the schema so that separate schemas in one
		// database (tests, tenants) migrate independently, while replicas sharing
		// a schema take turns.
		h := fnv.New64a()
		h.Write([]byte("gatehouse:" + schema))
		locker, err := lock.NewPostgresSessionLocker(
			lock.WithLockID(int64(h.Sum64()>>1)),
			lock.WithLockTimeout(1, 300),
		)
		if err != nil {
			return fmt.Errorf("store: %s: %w", op, err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, db.sql, fsys, opts...)
	if err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return wrap(op, err)
	}
	for _, r := range results {
		db.log.InfoContext(ctx, "store: migration applied", "dialect", db.dialect,
			"version", r.Source.Version, "duration", r.Duration)
	}
	return nil
}
