package store_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

const postgresEnv = "GATEHOUSE_TEST_POSTGRES_URL"

// openSQLite opens a migrated SQLite database in a file of its own.
func openSQLite(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(context.Background(), "sqlite://"+filepath.Join(tb.TempDir(), "gatehouse.db"), store.Options{})
	if err != nil {
		tb.Fatalf("open sqlite: %v", err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// postgresURL returns the test server's URL or skips the test.
func postgresURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(postgresEnv)
	if u == "" {
		tb.Skip(postgresEnv + " not set; PostgreSQL conformance not run")
	}
	return u
}

// postgresSchema creates a schema of its own for the test, dropped when the test
// ends, and returns a URL whose connections use it, so that tests running in
// parallel never see each other's rows.
func postgresSchema(tb testing.TB) string {
	tb.Helper()
	base := postgresURL(tb)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("connect to %s: %v", postgresEnv, err)
	}
	defer conn.Close(ctx)
	schema := "gh_test_" + strings.ToLower(rand.Text())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

// openPostgres opens a migrated PostgreSQL store in a fresh schema.
func openPostgres(tb testing.TB) *store.DB {
	tb.Helper()
	url := postgresSchema(tb)
	// Cleanups run last-in first-out: the pool closes before the schema drops.
	db, err := store.Open(context.Background(), url, store.Options{MaxOpenConns: 8})
	if err != nil {
		tb.Fatalf("open postgres: %v", err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *store.DB { return openSQLite(t) })
}

func TestPostgresConformance(t *testing.T) {
	postgresURL(t)
	storetest.Run(t, func(t *testing.T) *store.DB { return openPostgres(t) })
}

// Opening an already migrated database applies nothing and keeps the data.
func TestMigrationsIdempotent(t *testing.T) {
	urls := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "g.db") },
		"postgres": func(t *testing.T) string { return postgresSchema(t) },
	}
	for name, mk := range urls {
		t.Run(name, func(t *testing.T) {
			url := mk(t)
			ctx := t.Context()
			db, err := store.Open(ctx, url, store.Options{})
			if err != nil {
				t.Fatalf("first open: %v", err)
			}
			if err := db.SetEmailVerified(ctx, "nobody", true, t0()); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("fresh schema: %v", err)
			}
			mustCreate(t, db)
			if err := db.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			for i := range 2 {
				db, err = store.Open(ctx, url, store.Options{})
				if err != nil {
					t.Fatalf("reopen %d: %v", i, err)
				}
				if err := db.Migrate(ctx); err != nil {
					t.Fatalf("explicit migrate on reopen %d: %v", i, err)
				}
				if _, err := db.UserByID(ctx, "u1"); err != nil {
					t.Fatalf("data after reopen %d: %v", i, err)
				}
				_ = db.Close()
			}
			db, err = store.Open(ctx, url, store.Options{SkipMigrate: true})
			if err != nil {
				t.Fatalf("open without migrating: %v", err)
			}
			defer db.Close()
			if _, err := db.UserByID(ctx, "u1"); err != nil {
				t.Fatalf("data with SkipMigrate: %v", err)
			}
		})
	}
}

// SkipMigrate really skips: an empty database has no tables until Migrate runs.
func TestSkipMigrate(t *testing.T) {
	ctx := t.Context()
	url := "sqlite://" + filepath.Join(t.TempDir(), "g.db")
	db, err := store.Open(ctx, url, store.Options{SkipMigrate: true})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	_, err = db.UserByID(ctx, "u1")
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("query before migrating: got %v, want a missing-table error", err)
	}
	if strings.Contains(err.Error(), "u1") {
		t.Fatalf("error %q echoes a query value", err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if _, err := db.UserByID(ctx, "u1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after migrating: %v", err)
	}
}

func TestOpenBadURL(t *testing.T) {
	cases := []struct {
		name    string
		url     string
		want    string // in the error
		notWant string // must not be in the error
	}{
		{"empty", "", "no scheme", ""},
		{"bare path", "/var/lib/gatehouse.db", "no scheme", ""},
		{"mysql", "mysql://root:hunter2@db/gatehouse", `scheme "mysql"`, "hunter2"},
		{"http", "http://example.com", `scheme "http"`, ""},
		{"credential without scheme", "user:hunter2@db://x", "unsupported database url scheme", "hunter2"},
		{"sqlite without path", "sqlite://", "no path", ""},
		{"sqlite memory", "sqlite://:memory:", "not supported", ""},
		{"sqlite uri", "sqlite://file:x.db?mode=memory", "not supported", ""},
		{"sqlite nul", "sqlite://a\x00b.db", "NUL", ""},
		{"postgres empty", "postgres://", "empty", ""},
		{"postgres unparsable", "postgres://user:hunter2@host:notaport/db", "cannot parse", "hunter2"},
		{"postgres unreachable", "postgres://user:hunter2@127.0.0.1:1/db?connect_timeout=2&sslmode=disable", "store: open", "hunter2"},
		{"sqlite missing dir", "sqlite://" + filepath.Join(t.TempDir(), "no", "such", "dir", "g.db"), "store: open", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db, err := store.Open(t.Context(), tc.url, store.Options{})
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded", tc.url)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "store: open: ") {
				t.Fatalf("Open(%q) = %q, want it to start with %q and contain %q", tc.url, err, "store: open: ", tc.want)
			}
			if tc.notWant != "" && strings.Contains(err.Error(), tc.notWant) {
				t.Fatalf("Open(%q) = %q leaks %q", tc.url, err, tc.notWant)
			}
		})
	}
}

// Paths with URI syntax in them are files, not URI parameters.
func TestSQLiteOddPaths(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a?mode=memory.db", "b#frag.db", "c%20d.db", "e f.db", "ünï.db"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			db, err := store.Open(t.Context(), "sqlite://"+path, store.Options{})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer db.Close()
			if db.Dialect() != "sqlite" {
				t.Fatalf("dialect %q", db.Dialect())
			}
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("database file not at the given path: %v", err)
			}
		})
	}
	// A relative path is relative to the working directory.
	t.Chdir(dir)
	db, err := store.Open(t.Context(), "sqlite://rel.db", store.Options{})
	if err != nil {
		t.Fatalf("open relative: %v", err)
	}
	defer db.Close()
	if _, err := os.Stat(filepath.Join(dir, "rel.db")); err != nil {
		t.Fatalf("relative path: %v", err)
	}
}

func TestDialect(t *testing.T) {
	if got := openSQLite(t).Dialect(); got != "sqlite" {
		t.Fatalf("sqlite: Dialect() = %q", got)
	}
	if got := openPostgres(t).Dialect(); got != "postgres" {
		t.Fatalf("postgres: Dialect() = %q", got)
	}
}
