package passkey_test

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// postgresFixture is a fixture over a fresh schema of the PostgreSQL test
// server, or skips.
func postgresFixture(t *testing.T) *fixture {
	t.Helper()
	base := os.Getenv("GATEHOUSE_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("GATEHOUSE_TEST_POSTGRES_URL not set; passkeys over PostgreSQL not run")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	schema := "gh_passkey_" + strings.ToLower(rand.Text())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return newFixtureOn(t, base+sep+"search_path="+schema)
}

// The same flows over PostgreSQL: ceremonies as one-time codes, the
// compare-and-set counter and single use under concurrency.
func TestPostgres(t *testing.T) {
	for name, run := range map[string]func(*testing.T, *fixture){
		"register and discoverable login": testRegisterAndDiscoverableLogin,
		"replay and expiry":               testReplayAndExpiry,
		"login refused":                   testLoginRefused,
		"mfa":                             testMFA,
		"registration refused":            testRegistrationRefused,
	} {
		t.Run(name, func(t *testing.T) { run(t, postgresFixture(t)) })
	}
}
