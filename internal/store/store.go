package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
)

// Options tunes Open. The zero value is ready to use.
type Options struct {
	// SkipMigrate, when true, opens the database without applying migrations
	// (for deployments that run "gatehouse migrate" as a separate step).
	// False: Open applies every pending migration.
	SkipMigrate bool
	// Logger receives migration and retry messages; it never receives stored
	// values. Nil: messages are discarded.
	Logger *slog.Logger
	// MaxOpenConns bounds the connection pool. 0: the dialect default, 4 for
	// SQLite (one writer at a time anyway; a few for concurrent WAL readers) and
	// 20 for PostgreSQL.
	MaxOpenConns int
}

// DB is a Gatehouse store over SQLite or PostgreSQL. It is safe for concurrent use.
type DB struct {
	sql     *sql.DB
	dialect string
	log     *slog.Logger
	q       queries
	// writer is the SQLite write slot (capacity 1); nil for PostgreSQL.
	writer chan struct{}
	// fields seals personal data in sessions and events; nil stores it as given.
	fields FieldSealer
}

// Open connects to the database at url and, unless opts.SkipMigrate, applies
// pending migrations. Accepted URLs:
//
//   - "sqlite://PATH": an SQLite file, relative ("sqlite://data/gatehouse.db") or
//     absolute ("sqlite:///var/lib/gatehouse/gatehouse.db"). The directory must
//     exist; the file is created if missing. In-memory databases are not
//     supported (each pooled connection would see its own): use a temporary file.
//   - "postgres://..." or "postgresql://...": any pgx connection URL; extra query
//     parameters such as search_path are sent as run-time parameters.
//
// Any other scheme is an error naming the scheme. Errors never echo the URL.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	const op = "open"
	dialect, target, err := parseURL(url)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var sqldb *sql.DB
	maxConns := opts.MaxOpenConns
	switch dialect {
	case dialectSQLite:
		conn, err := sqlite.NewConnector(sqliteDSN(target))
		if err != nil {
			return nil, fmt.Errorf("store: %s: sqlite: %w", op, err)
		}
		sqldb = sql.OpenDB(conn)
		if maxConns <= 0 {
			maxConns = 4
		}
	case dialectPostgres:
		cfg, err := pgx.ParseConfig(target)
		if err != nil {
			// pgx's message quotes the URL (with a best-effort password mask);
			// ours does not quote it at all.
			return nil, fmt.Errorf("store: %s: %w", op, errors.New("cannot parse the postgres url"))
		}
		sqldb = stdlib.OpenDB(*cfg)
		if maxConns <= 0 {
			maxConns = 20
		}
		sqldb.SetConnMaxIdleTime(5 * time.Minute)
	}
	sqldb.SetMaxOpenConns(maxConns)
	sqldb.SetMaxIdleConns(maxConns)

	db := &DB{sql: sqldb, dialect: dialect, log: log}
	if dialect == dialectSQLite {
		db.writer = make(chan struct{}, 1)
	}
	db.q = newQueries(func(q string) string { return rebind(dialect, q) })
	if err := sqldb.PingContext(ctx); err != nil {
		_ = sqldb.Close()
		return nil, wrap(op, err)
	}
	if !opts.SkipMigrate {
		if err := db.Migrate(ctx); err != nil { // already "store: migrate: ..."
			_ = sqldb.Close()
			return nil, err
		}
	}
	return db, nil
}

// Close closes the connection pool.
func (db *DB) Close() error {
	if err := db.sql.Close(); err != nil {
		return wrap("close", err)
	}
	return nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	return wrap("ping", db.sql.PingContext(ctx))
}

// Dialect is "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.dialect }
