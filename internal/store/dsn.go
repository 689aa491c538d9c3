package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// parseURL splits a database URL into its dialect and the driver's data source:
// for SQLite the file path, for PostgreSQL the URL itself. Error messages never
// echo the URL, which may carry a password; at most they name the scheme.
func parseURL(raw string) (dialect, target string, err error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "", "", errors.New(`database url has no scheme: want "sqlite://PATH" or "postgres://..."`)
	}
	switch strings.ToLower(scheme) {
	case "sqlite":
		path, err := sqlitePath(rest)
		if err != nil {
			return "", "", err
		}
		return dialectSQLite, path, nil
	case "postgres", "postgresql":
		if rest == "" {
			return "", "", errors.New("postgres url is empty after the scheme")
		}
		return dialectPostgres, raw, nil
	}
	if !printableScheme(scheme) {
		return "", "", errors.New(`unsupported database url scheme: want "sqlite" or "postgres"`)
	}
	return "", "", fmt.Errorf(`unsupported database url scheme %q: want "sqlite" or "postgres"`, scheme)
}

func sqlitePath(p string) (string, error) {
	switch {
	case p == "":
		return "", errors.New(`sqlite url has no path: want "sqlite://PATH"`)
	case strings.HasPrefix(p, ":memory:") || strings.HasPrefix(p, "file:"):
		return "", errors.New("sqlite in-memory and URI databases are not supported: use a file path")
	case strings.ContainsRune(p, 0):
		return "", errors.New("sqlite path contains a NUL byte")
	}
	return filepath.Clean(p), nil
}

// printableScheme reports whether s looks like a URL scheme (RFC 3986: a letter
// followed by letters, digits, "+", "-" or "."), which is safe to echo: anything
// else may be part of a credential that was pasted without a scheme.
func printableScheme(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// sqliteDSN builds the modernc.org/sqlite data source for a file path: an SQLite
// URI (so that "%", "?" and "#" in the path are escaped rather than read as URI
// syntax) with the connection settings every connection must have.
//
//   - journal_mode WAL: readers do not block the writer, nor the writer readers.
//   - busy_timeout: a writer waits for the lock instead of failing at once.
//   - foreign_keys: SQLite does not enforce them unless asked, per connection.
//   - synchronous FULL: a rotation that was reported committed survives power loss,
//     so a rotated refresh token cannot come back to life.
//   - _txlock=immediate: every transaction takes the write lock at BEGIN, so
//     writers serialise instead of deadlocking on a read-to-write lock upgrade.
//   - _dqs=0: a misspelt identifier in double quotes is an error, not a string.
func sqliteDSN(path string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(path) +
		"?_busy_timeout=10000&_foreign_keys=1&_journal_mode=WAL&_synchronous=FULL&_txlock=immediate&_dqs=0"
}
