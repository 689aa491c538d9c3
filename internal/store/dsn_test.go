package store

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	cases := []struct {
		in          string
		dialect     string
		target      string
		errContains string
	}{
		{"sqlite://gatehouse.db", "sqlite", "gatehouse.db", ""},
		{"sqlite:///var/lib/gatehouse/g.db", "sqlite", "/var/lib/gatehouse/g.db", ""},
		{"SQLite://data//g.db", "sqlite", "data/g.db", ""},
		{"sqlite:////double/leading", "sqlite", "/double/leading", ""},
		{"postgres://u:p@h/db", "postgres", "postgres://u:p@h/db", ""},
		{"postgresql://h/db?sslmode=disable", "postgres", "postgresql://h/db?sslmode=disable", ""},
		{"sqlite://", "", "", "no path"},
		{"sqlite://:memory:", "", "", "not supported"},
		{"sqlite://file::memory:?cache=shared", "", "", "not supported"},
		{"sqlite:gatehouse.db", "", "", "no scheme"},
		{"postgres://", "", "", "empty"},
		{"redis://h", "", "", `"redis"`},
		{"://x", "", "", "unsupported"},
		{"p@ss:word://x", "", "", "unsupported"},
	}
	for _, tc := range cases {
		d, target, err := parseURL(tc.in)
		if tc.errContains != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errContains) {
				t.Errorf("parseURL(%q) error = %v, want one containing %q", tc.in, err, tc.errContains)
			}
			continue
		}
		if err != nil || d != tc.dialect || target != tc.target {
			t.Errorf("parseURL(%q) = %q, %q, %v; want %q, %q", tc.in, d, target, err, tc.dialect, tc.target)
		}
	}
}

func TestSQLiteDSNEscapes(t *testing.T) {
	got := sqliteDSN("/tmp/a?b#c%d")
	path, query, _ := strings.Cut(got, "?")
	if path != "file:/tmp/a%3fb%23c%25d" {
		t.Fatalf("path part %q", path)
	}
	for _, want := range []string{"_txlock=immediate", "_journal_mode=WAL", "_foreign_keys=1", "_busy_timeout="} {
		if !strings.Contains(query, want) {
			t.Fatalf("dsn %q lacks %s", got, want)
		}
	}
}

func TestRebind(t *testing.T) {
	cases := []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = $1 AND b = $2"},
		{"a = '?' AND b = ?", "a = '?' AND b = $1"},
		{`"we?rd" = ? AND c = 'it''s ?' AND d = ?`, `"we?rd" = $1 AND c = 'it''s ?' AND d = $2`},
	}
	for _, tc := range cases {
		if got := rebind(dialectPostgres, tc.in); got != tc.want {
			t.Errorf("rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := rebind(dialectSQLite, tc.in); got != tc.in {
			t.Errorf("sqlite rebind changed %q to %q", tc.in, got)
		}
	}
}

// FuzzParseURL checks that parseURL never panics, that whatever it accepts is
// well formed, and that its errors never echo more of the input than a
// well-formed scheme (the rest may hold a password).
func FuzzParseURL(f *testing.F) {
	for _, seed := range []string{
		"sqlite://gatehouse.db",           // relative path
		"sqlite:///var/lib/g.db",          // absolute path
		"sqlite://:memory:",               // rejected: in-memory
		"sqlite://file:x?mode=memory",     // rejected: URI form
		"sqlite://a?b#c%d",                // URI syntax in a path
		"postgres://u:secret@h:5432/db",   // ordinary
		"postgresql://h/db?search_path=x", // alias with parameters
		"mysql://root:secret@h/db",        // unsupported scheme
		"root:secret@h://x",               // credential where the scheme would be
		"",                                // empty
		"://",                             // no scheme at all
		"sqlite://\x00",                   // NUL
		"SQLITE://UPPER.db",               // case
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		d, target, err := parseURL(in)
		if err != nil {
			if d != "" || target != "" {
				t.Fatalf("error with results %q %q", d, target)
			}
			scheme, _, _ := strings.Cut(in, "://")
			msg := err.Error()
			if strings.Contains(msg, "%!") {
				t.Fatalf("malformed message %q", msg)
			}
			// The only input ever quoted is a printable scheme.
			if i := strings.IndexByte(msg, '"'); i >= 0 && strings.HasPrefix(msg, "unsupported database url scheme \"") {
				if !printableScheme(scheme) {
					t.Fatalf("message %q quotes a scheme that is not well formed: %q", msg, scheme)
				}
			}
			return
		}
		switch d {
		case dialectSQLite:
			if target == "" || strings.ContainsRune(target, 0) || strings.HasPrefix(target, ":memory:") {
				t.Fatalf("accepted sqlite target %q", target)
			}
			dsn := sqliteDSN(target)
			if strings.Count(dsn, "?") != 1 || strings.Contains(dsn, "#") {
				t.Fatalf("dsn %q has URI syntax from the path", dsn)
			}
		case dialectPostgres:
			if target != in {
				t.Fatalf("postgres target %q differs from input %q", target, in)
			}
		default:
			t.Fatalf("unknown dialect %q", d)
		}
	})
}
