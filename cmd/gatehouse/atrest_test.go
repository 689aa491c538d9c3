package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/envelope"
	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Secrets the at-rest tests plant and then look for in the store.
const (
	atRestTransitSecret = "NOTES_TRANSIT_SECRET"
	atRestIntroSecret   = "INTRO_SECRET"
)

var atRestGetenv = func(k string) string {
	return map[string]string{atRestTransitSecret: "transit-service-secret-4e1b", atRestIntroSecret: "intro-secret-77"}[k]
}

// atRestEnv is a test environment with the admin listener on and two services:
// notes-backend (transit) and introspector (introspect only). storeURL, when
// set, replaces the SQLite store.
func atRestEnv(t testing.TB, storeURL string, extra ...string) (*testEnv, string) {
	t.Helper()
	e := newTestEnv(t, strings.Join(extra, "")+"services:\n"+
		"  - {id: notes-backend, secret_env: "+atRestTransitSecret+", permissions: [transit]}\n"+
		"  - {id: introspector, secret_env: "+atRestIntroSecret+", permissions: [introspect]}\n")
	admin := freePort(t)
	b, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "admin:\n  disabled: true", "admin:\n  listen: "+admin, 1)
	if storeURL != "" {
		cfg = strings.Replace(cfg, "store: sqlite://"+e.db, "store: "+storeURL, 1)
	}
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e, admin
}

// openTestApp opens the app of cfgPath in-process (as `gatehouse keys` does).
func openTestApp(t testing.TB, cfgPath string) *app {
	t.Helper()
	cfg, err := loadConfig(cfgPath, atRestGetenv)
	if err != nil {
		t.Fatal(err)
	}
	a, err := openApp(context.Background(), cfg, slog.New(slog.DiscardHandler), atRestGetenv, appOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// pgSchemaURL creates a fresh schema and returns a store URL selecting it and
// the schema's name; the schema is dropped when the test ends.
func pgSchemaURL(t testing.TB, base string) (string, string) {
	t.Helper()
	schema := "gh_atrest_" + strings.ToLower(rand.Text()[:10])
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		db.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db.Exec("DROP SCHEMA " + schema + " CASCADE")
		db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), schema
}

// needle is one secret and the spellings it could be stored in.
type needle struct {
	what  string
	forms [][]byte
}

func newNeedle(what string, v []byte) needle {
	return needle{what: what, forms: [][]byte{
		v,
		[]byte(hex.EncodeToString(v)),
		[]byte(base64.StdEncoding.EncodeToString(v)),
		[]byte(base64.RawURLEncoding.EncodeToString(v)),
	}}
}

func scanFor(t *testing.T, where string, data []byte, needles []needle) {
	t.Helper()
	for _, n := range needles {
		for _, f := range n.forms {
			if len(f) > 0 && bytes.Contains(data, f) {
				t.Errorf("%s contains the %s (as %q)", where, n.what, f)
			}
		}
	}
}

// TestAtRest runs a full flow — sign-up with an email address from a known IP
// and user agent, sign-in, refresh, a TOTP secret and a social-login token
// sealed through their purposes, transit encryption — and then scans the SQLite
// file (and its WAL) or a pg_dump of the PostgreSQL schema for every secret and
// every piece of personal data used.
func TestAtRest(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		e, admin := atRestEnv(t, "")
		needles := atRestFlow(t, e, admin)
		var all []byte
		for _, f := range []string{e.db, e.db + "-wal", e.db + "-shm"} {
			b, err := os.ReadFile(f)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		if len(all) < 4096 {
			t.Fatalf("the database is suspiciously small (%d bytes)", len(all))
		}
		scanFor(t, "the SQLite file", all, needles)
	})
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv("GATEHOUSE_TEST_POSTGRES_URL")
		if base == "" {
			t.Skip("GATEHOUSE_TEST_POSTGRES_URL is not set: the PostgreSQL at-rest scan is not run")
		}
		if _, err := exec.LookPath("pg_dump"); err != nil {
			t.Skip("pg_dump is not installed: the PostgreSQL at-rest scan is not run")
		}
		storeURL, schema := pgSchemaURL(t, base)
		e, admin := atRestEnv(t, storeURL)
		needles := atRestFlow(t, e, admin)
		dump, err := exec.Command("pg_dump", "--schema="+schema, base).Output()
		if err != nil {
			t.Fatalf("pg_dump: %v", err)
		}
		if !bytes.Contains(dump, []byte("COPY "+schema+".users")) {
			t.Fatalf("the dump has no users table:\n%.2000s", dump)
		}
		scanFor(t, "the pg_dump", dump, needles)
	})
}

func atRestFlow(t *testing.T, e *testEnv, admin string) []needle {
	t.Helper()
	const (
		email     = "quagga.atrest.7731@example.com"
		pw        = "correct horse battery staple 93"
		ua        = "AtRestProbe/9.9 (okapi; zebra-7731)"
		transitPT = "transit-plaintext-okapi-5521 card 4111111111111111"
		totp      = "JBSWY3DPEHPK3PXPATREST7731"
		oidcTok   = "ya29.oidc-provider-token-narwhal-2718"
	)
	s := startServer(t, e, atRestGetenv)
	r := do(t, s.c, "POST", s.issuer+"/auth/v1/signup", jsonType, `{"email":"`+email+`","password":"`+pw+`"}`, "User-Agent", ua)
	wantStatus(t, r, 201)
	refresh := r.str(t, "refresh_token")
	r = do(t, s.c, "POST", s.issuer+"/auth/v1/token", formType, form("grant_type", "password", "username", email, "password", pw), "User-Agent", ua)
	wantStatus(t, r, 200)
	r = do(t, s.c, "POST", s.issuer+"/auth/v1/token", formType, form("grant_type", "refresh_token", "refresh_token", r.str(t, "refresh_token")), "User-Agent", ua)
	wantStatus(t, r, 200)
	refresh2 := r.str(t, "refresh_token")
	// A failed sign-in: an event with the IP, and a throttle row.
	wantStatus(t, do(t, s.c, "POST", s.issuer+"/auth/v1/token", formType, form("grant_type", "password", "username", email, "password", "wrong password 123"), "User-Agent", ua), 400)

	// Transit: the backend's own field.
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("notes-backend:"+atRestGetenv(atRestTransitSecret)))
	adminURL := "https://" + admin + "/admin/v1/transit/"
	wantStatus(t, do(t, s.c, "POST", adminURL+"keys/notes", jsonType, "", "Authorization", basic), 201)
	r = do(t, s.c, "POST", adminURL+"encrypt/notes", jsonType, `{"plaintext":"`+base64.StdEncoding.EncodeToString([]byte(transitPT))+`"}`, "Authorization", basic)
	wantStatus(t, r, 200)
	ct := r.str(t, "ciphertext")
	r = do(t, s.c, "POST", adminURL+"decrypt/notes", jsonType, `{"ciphertext":"`+ct+`"}`, "Authorization", basic)
	wantStatus(t, r, 200)
	if got, _ := base64.StdEncoding.DecodeString(r.str(t, "plaintext")); string(got) != transitPT {
		t.Fatalf("transit round trip: %q", got)
	}

	// TOTP and social login have no endpoints yet: store their secrets the way
	// those flows will, through the user-secret store and their purposes.
	a := openTestApp(t, e.cfg)
	ctx := context.Background()
	u, err := a.db.UserByEmailIndex(ctx, a.sealer.Index(envelope.PurposeEmail, []byte(email)))
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range []struct{ kind, purpose, value string }{
		{store.SecretTOTP, envelope.PurposeTOTP, totp},
		{store.SecretOIDCPrefix + "google", envelope.PurposeOIDCToken, oidcTok},
	} {
		sealed, err := a.sealer.Seal(sec.purpose, []byte(sec.value), "user_secrets", "sealed", store.UserSecretID(u.ID, sec.kind))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if err := a.db.PutUserSecret(ctx, &store.UserSecret{UserID: u.ID, Kind: sec.kind, Purpose: sec.purpose, Sealed: sealed, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	// The private signing keys, opened here only to know what to look for.
	var privs [][]byte
	ks, err := a.db.SigningKeys(ctx)
	if err != nil || len(ks) < 2 {
		t.Fatalf("signing keys: %d %v", len(ks), err)
	}
	for _, k := range ks {
		der, err := a.sealer.Open(envelope.PurposeSigningKey, k.PrivateSealed, "signing_keys", "private", k.ID)
		if err != nil {
			t.Fatalf("signing key %s: %v", k.ID, err)
		}
		privs = append(privs, der)
	}
	// The store still answers with the plaintext where it should.
	sessions, err := a.db.ListSessions(ctx, u.ID, time.Now())
	if err != nil || len(sessions) == 0 || sessions[0].UserAgent != ua || sessions[0].IP != "127.0.0.1" {
		t.Fatalf("sessions read back: %+v %v", sessions, err)
	}
	evs, err := a.db.QueryEvents(ctx, store.EventQuery{IP: "127.0.0.1", Limit: 1000})
	if err != nil || len(evs) < 4 {
		t.Fatalf("events by ip: %d %v", len(evs), err)
	}
	out, _, code := runCLI(t, "", "keys", "check", "--config", e.cfg)
	if code != 0 || !strings.Contains(out, "totp_secret") || !strings.Contains(out, "oidc_token") || !strings.Contains(out, "transit_key") {
		t.Fatalf("keys check: %d\n%s", code, out)
	}
	s.stop(t)
	a.Close()

	needles := []needle{
		newNeedle("email", []byte(email)),
		newNeedle("email's local part", []byte("quagga.atrest.7731")),
		newNeedle("password", []byte(pw)),
		newNeedle("user agent", []byte(ua)),
		newNeedle("user agent fragment", []byte("zebra-7731")),
		newNeedle("IP address", []byte("127.0.0.1")),
		newNeedle("refresh token", []byte(refresh)),
		newNeedle("rotated refresh token", []byte(refresh2)),
		newNeedle("TOTP secret", []byte(totp)),
		newNeedle("OIDC token", []byte(oidcTok)),
		newNeedle("transit plaintext", []byte(transitPT)),
		newNeedle("transit service secret", []byte(atRestGetenv(atRestTransitSecret))),
	}
	for i, der := range privs {
		needles = append(needles, newNeedle("private signing key "+strconv.Itoa(i), der))
	}
	return needles
}

// TestCopiedCiphertextDoesNotOpen: a sealed value copied to another row, or to
// another column of its row, does not open; keys check names both and exits 1.
func TestCopiedCiphertextDoesNotOpen(t *testing.T) {
	e, _ := atRestEnv(t, "")
	s := startServer(t, e, atRestGetenv)
	wantStatus(t, s.signup(t, "first.copy@example.com", "correct horse battery staple 1"), 201)
	wantStatus(t, s.signup(t, "second.copy@example.com", "correct horse battery staple 2"), 201)
	s.stop(t)
	if out, _, code := runCLI(t, "", "keys", "check", "--config", e.cfg); code != 0 {
		t.Fatalf("check before tampering: %d\n%s", code, out)
	}

	raw, err := sql.Open("sqlite", e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var first, second string
	if err := raw.QueryRow(`SELECT id FROM users ORDER BY created_at, id LIMIT 1`).Scan(&first); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow(`SELECT id FROM users WHERE id <> ?`, first).Scan(&second); err != nil {
		t.Fatal(err)
	}
	var sessionID string
	raw.QueryRow(`SELECT id FROM sessions WHERE user_id = ?`, second).Scan(&sessionID)
	for _, q := range []string{
		// Another row: the first user's sealed address on the second user.
		`UPDATE users SET email_sealed = (SELECT email_sealed FROM users WHERE id = '` + first + `') WHERE id = '` + second + `'`,
		// Another column: the session's sealed IP as its user agent.
		`UPDATE sessions SET user_agent_sealed = ip_sealed WHERE id = '` + sessionID + `'`,
	} {
		if res, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		} else if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("%s: %d rows", q, n)
		}
	}
	out, errOut, code := runCLI(t, "", "keys", "check", "--config", e.cfg)
	if code != 1 || !strings.Contains(out, "FAILED users.email row "+second) || !strings.Contains(out, "FAILED sessions.user_agent row "+sessionID) {
		t.Fatalf("check after tampering: exit %d\n%s\n%s", code, out, errOut)
	}
	a := openTestApp(t, e.cfg)
	if _, err := a.db.SessionByID(context.Background(), sessionID); !errors.Is(err, keys.ErrOpen) {
		t.Fatalf("session with a copied column: %v", err)
	}
	u, err := a.db.UserByID(context.Background(), second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.sealer.Open(envelope.PurposeEmail, u.EmailSealed, "users", "email", second); !errors.Is(err, keys.ErrOpen) {
		t.Fatalf("email copied from another row opened: %v", err)
	}
}

// TestServeRefusesWrongKEK: started with a KEK that does not unwrap the data
// keys, serve exits at once with a message naming both KEKs.
func TestServeRefusesWrongKEK(t *testing.T) {
	e, _ := atRestEnv(t, "")
	if out, _, code := runCLI(t, "", "migrate", "--config", e.cfg); code != 0 {
		t.Fatal(out)
	}
	a := openTestApp(t, e.cfg) // creates the data keys under the right KEK
	rightID := a.sealer.KEKID()
	a.Close()
	wrong := filepath.Join(e.dir, "wrong.key")
	if err := keys.GenerateKEKFile(wrong); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(e.cfg)
	if err := os.WriteFile(e.cfg, bytes.Replace(b, []byte(filepath.Join(e.dir, "kek.key")), []byte(wrong), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb syncBuffer
	err := run(ctx, []string{"gatehouse", "serve", "--config", e.cfg}, atRestGetenv, strings.NewReader(""), &out, &errb)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("serve with the wrong kek: %v", err)
	}
	msg := err.Error() + errb.String()
	if !strings.Contains(msg, "wrong kek") || !strings.Contains(msg, rightID) {
		t.Fatalf("unclear error: %s", msg)
	}
	if strings.Contains(out.String(), "listening") {
		t.Fatalf("serve started: %s", out.String())
	}
}

// The crash test's child: run only when re-executed by TestRotateDataCrash.
const (
	crashChildEnv = "GATEHOUSE_TEST_RESEAL_CHILD" // config path
	crashPauseEnv = "GATEHOUSE_TEST_RESEAL_PAUSE" // batches before pausing
)

// TestRotateDataChild is `keys rotate --data` with a hook that stops after N
// batches and waits to be killed. It is a no-op unless re-executed by
// TestRotateDataCrash.
func TestRotateDataChild(t *testing.T) {
	cfgPath := os.Getenv(crashChildEnv)
	if cfgPath == "" {
		t.Skip("helper process for TestRotateDataCrash; runs only when re-executed by it")
	}
	pauseAfter, _ := strconv.Atoi(os.Getenv(crashPauseEnv))
	a := openTestApp(t, cfgPath)
	batches := 0
	err := a.rotateData(context.Background(), env{getenv: atRestGetenv, stdout: io.Discard, stderr: os.Stderr},
		envelope.ResealOptions{BatchSize: 7, AfterBatch: func(field string, p store.ResealProgress) {
			if batches++; batches == pauseAfter {
				fmt.Printf("PAUSED %s %d\n", field, p.Resealed)
				select {} // wait for SIGKILL
			}
		}})
	t.Fatalf("the child was meant to be killed, not to finish (%v)", err)
}

// TestRotateDataCrash: `keys rotate --data` killed with SIGKILL mid-way leaves
// every value readable (a serving process opens both old and new DEKs while it
// is stopped), and a second run resumes and finishes; keys check then passes.
func TestRotateDataCrash(t *testing.T) {
	e, _ := atRestEnv(t, "")
	a := openTestApp(t, e.cfg)
	ctx := context.Background()
	now := time.Now()
	legacy := keys.NewSealer(mustLoadKEK(t, filepath.Join(e.dir, "kek.key")))
	emails := map[string]string{}
	for i := range 40 {
		id := fmt.Sprintf("user-%03d", i)
		addr := fmt.Sprintf("crash-%03d@example.com", i)
		seal := a.sealer.Seal
		if i%3 == 0 {
			seal = legacy.Seal // pre-envelope values are converted on the way
		}
		sealed, err := seal(envelope.PurposeEmail, []byte(addr), "users", "email", id)
		if err != nil {
			t.Fatal(err)
		}
		emails[id] = addr
		if err := a.db.CreateUser(ctx, &store.User{ID: id, EmailIndex: a.sealer.Index(envelope.PurposeEmail, []byte(addr)), EmailSealed: sealed, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		sess := &store.Session{ID: "s-" + id, UserID: id, Generation: 1, IP: "192.0.2.77", UserAgent: "crash-ua", CreatedAt: now, LastUsedAt: now, IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour)}
		if err := a.db.CreateSession(ctx, sess, &store.RefreshToken{Hash: []byte("h-" + id), Generation: 1, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()

	child := exec.Command(os.Args[0], "-test.run=^TestRotateDataChild$", "-test.v")
	child.Env = append(os.Environ(), crashChildEnv+"="+e.cfg, crashPauseEnv+"=3")
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var childErr bytes.Buffer
	child.Stderr = &childErr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	paused := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "PAUSED") {
				paused <- sc.Text()
			}
		}
		close(paused)
	}()
	select {
	case line, ok := <-paused:
		if !ok {
			child.Wait()
			t.Fatalf("the child ended without pausing: %s", childErr.String())
		}
		t.Logf("child %s; killing it", line)
	case <-time.After(3 * time.Minute):
		child.Process.Kill()
		t.Fatal("the child did not reach its pause")
	}
	if err := child.Process.Kill(); err != nil { // SIGKILL: no clean-up runs
		t.Fatal(err)
	}
	child.Wait()

	// Mid-rotation: a run is open, some values are under the new DEKs, some
	// under the old, and a serving process reads them all.
	a = openTestApp(t, e.cfg)
	if _, err := a.db.OpenResealRun(ctx); err != nil {
		t.Fatalf("no open run after the kill: %v", err)
	}
	dekStates := map[string]int{}
	for id, addr := range emails {
		u, err := a.db.UserByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.sealer.Open(envelope.PurposeEmail, u.EmailSealed, "users", "email", id)
		if err != nil || string(got) != addr {
			t.Fatalf("%s mid-rotation: %q %v", id, got, err)
		}
		v, dek := envelope.Describe(u.EmailSealed)
		dekStates[fmt.Sprintf("v%d/%s", v, a.sealer.State(dek))]++
	}
	if dekStates["v2/active"] == 0 || dekStates["v2/retired"]+dekStates["v1/"] == 0 {
		t.Fatalf("the kill did not land mid-way: %v", dekStates)
	}
	a.Close()

	out, errOut, code := runCLI(t, "", "keys", "rotate", "--data", "--batch", "7", "--config", e.cfg)
	if code != 0 || !strings.Contains(out, "resumed") {
		t.Fatalf("second run: %d\n%s\n%s", code, out, errOut)
	}
	out, _, code = runCLI(t, "", "keys", "check", "--config", e.cfg)
	if code != 0 {
		t.Fatalf("keys check after the resumed run: %d\n%s", code, out)
	}
	a = openTestApp(t, e.cfg)
	rep, err := a.sealer.Check(ctx, a.db)
	if err != nil || rep.Failed != 0 {
		t.Fatalf("check: %+v %v", rep, err)
	}
	for _, c := range rep.Purposes {
		if c.Version1 != 0 || c.Retired != 0 || c.Plaintext != 0 {
			t.Fatalf("%s still has old values after the run: %+v", c.Purpose, c)
		}
	}
	for id, addr := range emails {
		u, _ := a.db.UserByID(ctx, id)
		if got, err := a.sealer.Open(envelope.PurposeEmail, u.EmailSealed, "users", "email", id); err != nil || string(got) != addr {
			t.Fatalf("%s after: %q %v", id, got, err)
		}
		if u, err := a.db.UserByEmailIndex(ctx, a.sealer.Index(envelope.PurposeEmail, []byte(addr))); err != nil || u.ID != id {
			t.Fatalf("lookup by email after rotation: %v", err)
		}
	}
}

func mustLoadKEK(t testing.TB, path string) *keys.KEK {
	t.Helper()
	k, err := keys.LoadKEK("file://"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
