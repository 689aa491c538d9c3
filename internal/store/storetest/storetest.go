// Package storetest is the conformance suite every store.DB backend must pass:
// the same subtests run against SQLite and PostgreSQL, so the two dialects cannot
// drift apart in behaviour. It checks every method's results, its errors (not
// found, conflicts, invalid input), ordering, paging and limits, and the
// concurrency guarantees the security model relies on: one winner among racing
// refresh-token rotations, one winner among racing key rotations, and exact
// counts from racing throttle hits.
//
// It must never depend on a particular dialect, on timing, or on rows left by
// another subtest: each subtest asks open for a fresh, empty database.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Run runs the conformance suite. open must return a migrated, empty database
// that is closed and discarded when the test passed to it ends; it is called once
// per subtest, and subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) *store.DB) {
	tests := []struct {
		name string
		fn   func(t *testing.T, db *store.DB)
	}{
		{"Basics", testBasics},
		{"TimeRoundTrip", testTimeRoundTrip},
		{"CanceledContext", testCanceledContext},
		{"UserCreateAndGet", testUserCreateAndGet},
		{"UserConflicts", testUserConflicts},
		{"UserNotFound", testUserNotFound},
		{"UserSetters", testUserSetters},
		{"ListUsersPaging", testListUsersPaging},
		{"ListUsersByteOrder", testListUsersByteOrder},
		{"ListUsersLimitCap", testListUsersLimitCap},
		{"ErrorsHideValues", testErrorsHideValues},
		{"SessionCreateAndGet", testSessionCreateAndGet},
		{"SessionCreateAtomic", testSessionCreateAtomic},
		{"ListSessions", testListSessions},
		{"RevokeSession", testRevokeSession},
		{"RevokeUserSessions", testRevokeUserSessions},
		{"RotateChain", testRotateChain},
		{"RotateConflicts", testRotateConflicts},
		{"RotateRace", testRotateRace},
		{"RotateRaceWithRevoke", testRotateRaceWithRevoke},
		{"PurgeExpired", testPurgeExpired},
		{"SigningKeys", testSigningKeys},
		{"TransitionKeys", testTransitionKeys},
		{"TransitionKeysConflicts", testTransitionKeysConflicts},
		{"TransitionKeysRace", testTransitionKeysRace},
		{"Events", testEvents},
		{"EventsLimitCap", testEventsLimitCap},
		{"Throttle", testThrottle},
		{"ThrottleRace", testThrottleRace},
		{"Forgive", testForgive},
		{"RevokedSince", testRevokedSince},
		{"Bans", testBans},
		{"QueryEvents", testQueryEvents},
		{"DataKeys", testDataKeys},
		{"FieldSealing", testFieldSealing},
		{"UserSecrets", testUserSecrets},
		{"TransitKeys", testTransitKeys},
		{"Reseal", testReseal},
		{"Codes", testCodes},
		{"CodeRace", testCodeRace},
		{"RecoveryCodes", testRecoveryCodes},
		{"SecretCounter", testSecretCounter},
		{"WebAuthnCredentials", testWebAuthnCredentials},
		{"Identities", testIdentities},
		{"CreateUserWithIdentity", testCreateUserWithIdentity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// t0 has microsecond precision, the precision the store keeps.
var t0 = time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ptr[T any](v T) *T { return &v }

// norm is what the store gives back for t: UTC, microsecond precision.
func norm(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()).UTC() }

func normp(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	return ptr(norm(*t))
}

func ctxT(t *testing.T) context.Context { return t.Context() }

func mustNil(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func mustIs(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func equal[T any](t *testing.T, got, want T, what string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func newUser(id string) store.User {
	return store.User{
		ID:           id,
		EmailIndex:   []byte("idx-" + id),
		EmailSealed:  []byte("sealed-" + id),
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		Roles:        []string{"user"},
		Plan:         "free",
		CreatedAt:    t0,
		UpdatedAt:    t0,
	}
}

func createUser(t *testing.T, db *store.DB, id string) store.User {
	t.Helper()
	u := newUser(id)
	mustNil(t, db.CreateUser(ctxT(t), &u), "create user "+id)
	return u
}

func newSession(id, userID string, created time.Time) (store.Session, store.RefreshToken) {
	s := store.Session{
		ID:            id,
		UserID:        userID,
		Generation:    1,
		AMR:           []string{"pwd"},
		UserAgent:     "GatehouseTest/1.0",
		IP:            "192.0.2.1",
		CreatedAt:     created,
		LastUsedAt:    created,
		IdleExpiresAt: created.Add(30 * 24 * time.Hour),
		ExpiresAt:     created.Add(90 * 24 * time.Hour),
	}
	tok := store.RefreshToken{Hash: []byte("hash-" + id + "-1"), SessionID: id, Generation: 1, CreatedAt: created}
	return s, tok
}

func createSession(t *testing.T, db *store.DB, id, userID string, created time.Time) (store.Session, store.RefreshToken) {
	t.Helper()
	s, tok := newSession(id, userID, created)
	mustNil(t, db.CreateSession(ctxT(t), &s, &tok), "create session "+id)
	return s, tok
}

func normSession(s store.Session) store.Session {
	s.CreatedAt, s.LastUsedAt = norm(s.CreatedAt), norm(s.LastUsedAt)
	s.IdleExpiresAt, s.ExpiresAt = norm(s.IdleExpiresAt), norm(s.ExpiresAt)
	s.RevokedAt = normp(s.RevokedAt)
	return s
}

func normToken(tok store.RefreshToken) store.RefreshToken {
	tok.CreatedAt = norm(tok.CreatedAt)
	tok.RotatedAt = normp(tok.RotatedAt)
	return tok
}

func normUser(u store.User) store.User {
	u.CreatedAt, u.UpdatedAt = norm(u.CreatedAt), norm(u.UpdatedAt)
	u.LockedAt = normp(u.LockedAt)
	return u
}

func rotation(sessionID string, oldHash []byte, oldGen int64, now time.Time, newHash string) store.Rotation {
	return store.Rotation{
		SessionID:       sessionID,
		OldHash:         oldHash,
		OldGeneration:   oldGen,
		SuccessorSealed: []byte("sealed:" + newHash),
		New:             store.RefreshToken{Hash: []byte(newHash), SessionID: sessionID, Generation: oldGen + 1, CreatedAt: now},
		Now:             now,
		IdleExpiresAt:   now.Add(30 * 24 * time.Hour),
	}
}

func testBasics(t *testing.T, db *store.DB) {
	if d := db.Dialect(); d != "sqlite" && d != "postgres" {
		t.Fatalf("Dialect() = %q, want sqlite or postgres", d)
	}
	mustNil(t, db.Ping(ctxT(t)), "ping")
	mustNil(t, db.Migrate(ctxT(t)), "migrate an up-to-date database")
}

// Times come back in UTC at microsecond precision whatever location and
// precision they were given in.
func testTimeRoundTrip(t *testing.T, db *store.DB) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	cases := []struct {
		name string
		in   time.Time
		want time.Time
	}{
		{"utc micro", t0, t0},
		{"other zone", t0.In(zone), t0},
		{"nanoseconds truncated", t0.Add(999 * time.Nanosecond), t0},
		{"before 1970", time.Date(1969, 12, 31, 23, 59, 59, 1000, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 1000, time.UTC)},
		{"zero time", time.Time{}, time.Time{}},
	}
	for i, tc := range cases {
		u := newUser(fmt.Sprintf("u%d", i))
		u.CreatedAt, u.UpdatedAt, u.LockedAt = tc.in, tc.in, ptr(tc.in)
		mustNil(t, db.CreateUser(ctxT(t), &u), tc.name)
		got, err := db.UserByID(ctxT(t), u.ID)
		mustNil(t, err, tc.name)
		for _, g := range []time.Time{got.CreatedAt, got.UpdatedAt, *got.LockedAt} {
			if !g.Equal(tc.want) || g.Location() != time.UTC {
				t.Errorf("%s: got %v (%v), want %v in UTC", tc.name, g, g.Location(), tc.want)
			}
		}
		if tc.want.IsZero() && !got.CreatedAt.IsZero() {
			t.Errorf("%s: zero time came back as %v, IsZero false", tc.name, got.CreatedAt)
		}
	}
}

func testCanceledContext(t *testing.T, db *store.DB) {
	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	u := newUser("u1")
	checks := map[string]error{
		"create user": db.CreateUser(ctx, &u),
		"ping":        db.Ping(ctx),
	}
	_, err := db.UserByID(ctx, "u1")
	checks["user by id"] = err
	_, _, err = db.Hit(ctx, "k", time.Minute, t0)
	checks["hit"] = err
	checks["rotate"] = db.RotateRefreshToken(ctx, rotation("s1", []byte("a"), 1, t0, "b"))
	for op, err := range checks {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: got %v, want context.Canceled", op, err)
		}
	}
	if _, err := db.UserByID(ctxT(t), "u1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("user created under a canceled context: %v", err)
	}
}

func testUserCreateAndGet(t *testing.T, db *store.DB) {
	cases := []struct {
		name string
		u    store.User
	}{
		{"full", func() store.User {
			u := newUser("u-full")
			u.Roles = []string{"admin", "user", `quote"d`, "ünïcode"}
			u.EmailVerified = true
			u.LockedAt = ptr(at(time.Hour))
			u.UpdatedAt = at(2 * time.Hour)
			return u
		}()},
		{"minimal", store.User{ID: "u-min", CreatedAt: t0, UpdatedAt: t0}},
		{"hostile strings", func() store.User {
			u := newUser("u'; DROP TABLE users; --")
			u.Plan = "pro' OR '1'='1"
			u.EmailIndex = []byte{0, 1, 2, 0xff, '\'', '?', '$', '1'}
			return u
		}()},
	}
	for _, tc := range cases {
		u := tc.u
		mustNil(t, db.CreateUser(ctxT(t), &u), tc.name)
		got, err := db.UserByID(ctxT(t), u.ID)
		mustNil(t, err, tc.name+": by id")
		equal(t, *got, normUser(tc.u), tc.name+": by id")
		if len(u.EmailIndex) > 0 {
			got, err = db.UserByEmailIndex(ctxT(t), u.EmailIndex)
			mustNil(t, err, tc.name+": by email index")
			equal(t, *got, normUser(tc.u), tc.name+": by email index")
		}
	}
	// Empty lists read back as nil, whether stored nil or empty.
	u := newUser("u-empty-roles")
	u.Roles = []string{}
	mustNil(t, db.CreateUser(ctxT(t), &u), "empty roles")
	got, err := db.UserByID(ctxT(t), u.ID)
	mustNil(t, err, "empty roles")
	if got.Roles != nil {
		t.Fatalf("empty roles came back as %#v, want nil", got.Roles)
	}
}

func testUserConflicts(t *testing.T, db *store.DB) {
	createUser(t, db, "u1")

	dupID := newUser("u1")
	dupID.EmailIndex = []byte("another")
	err := db.CreateUser(ctxT(t), &dupID)
	mustIs(t, err, store.ErrConflict, "duplicate id")
	if !strings.HasPrefix(err.Error(), "store: create user: ") {
		t.Errorf("error %q lacks the op prefix", err)
	}

	dupIdx := newUser("u2")
	dupIdx.EmailIndex = []byte("idx-u1")
	mustIs(t, db.CreateUser(ctxT(t), &dupIdx), store.ErrConflict, "duplicate email index")
	if _, err := db.UserByID(ctxT(t), "u2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("conflicting user was written: %v", err)
	}

	// Accounts without an address do not collide with each other.
	for _, id := range []string{"svc1", "svc2"} {
		u := store.User{ID: id, CreatedAt: t0, UpdatedAt: t0}
		mustNil(t, db.CreateUser(ctxT(t), &u), "user without email "+id)
	}
	_, err = db.UserByEmailIndex(ctxT(t), nil)
	mustIs(t, err, store.ErrNotFound, "empty email index matches nobody")

	if err := db.CreateUser(ctxT(t), &store.User{}); err == nil || errors.Is(err, store.ErrConflict) {
		t.Fatalf("empty id: got %v, want a validation error", err)
	}
	if err := db.CreateUser(ctxT(t), nil); err == nil {
		t.Fatal("nil user: no error")
	}
}

func testUserNotFound(t *testing.T, db *store.DB) {
	createUser(t, db, "exists")
	_, err := db.UserByID(ctxT(t), "nope")
	mustIs(t, err, store.ErrNotFound, "user by id")
	_, err = db.UserByEmailIndex(ctxT(t), []byte("nope"))
	mustIs(t, err, store.ErrNotFound, "user by email index")
	setters := map[string]error{
		"set password hash":  db.SetPasswordHash(ctxT(t), "nope", "h", t0),
		"set locked":         db.SetLocked(ctxT(t), "nope", ptr(t0), t0),
		"set roles and plan": db.SetRolesPlan(ctxT(t), "nope", []string{"a"}, "p", t0),
		"set email verified": db.SetEmailVerified(ctxT(t), "nope", true, t0),
	}
	for op, err := range setters {
		mustIs(t, err, store.ErrNotFound, op)
		if !strings.HasPrefix(err.Error(), "store: "+op+": ") {
			t.Errorf("%s: error %q lacks the op prefix", op, err)
		}
	}
	got, err := db.UserByID(ctxT(t), "exists")
	mustNil(t, err, "untouched user")
	equal(t, *got, normUser(newUser("exists")), "untouched user")
}

func testUserSetters(t *testing.T, db *store.DB) {
	want := createUser(t, db, "u1")
	other := createUser(t, db, "u2")
	steps := []struct {
		name  string
		apply func(now time.Time) error
		edit  func(u *store.User)
	}{
		{"password", func(now time.Time) error { return db.SetPasswordHash(ctxT(t), "u1", "$argon2id$new", now) },
			func(u *store.User) { u.PasswordHash = "$argon2id$new" }},
		{"remove password", func(now time.Time) error { return db.SetPasswordHash(ctxT(t), "u1", "", now) },
			func(u *store.User) { u.PasswordHash = "" }},
		{"lock", func(now time.Time) error { return db.SetLocked(ctxT(t), "u1", ptr(at(time.Minute)), now) },
			func(u *store.User) { u.LockedAt = ptr(at(time.Minute)) }},
		{"unlock", func(now time.Time) error { return db.SetLocked(ctxT(t), "u1", nil, now) },
			func(u *store.User) { u.LockedAt = nil }},
		{"roles and plan", func(now time.Time) error {
			return db.SetRolesPlan(ctxT(t), "u1", []string{"admin", "support"}, "enterprise", now)
		}, func(u *store.User) { u.Roles, u.Plan = []string{"admin", "support"}, "enterprise" }},
		{"no roles", func(now time.Time) error { return db.SetRolesPlan(ctxT(t), "u1", nil, "", now) },
			func(u *store.User) { u.Roles, u.Plan = nil, "" }},
		{"verify", func(now time.Time) error { return db.SetEmailVerified(ctxT(t), "u1", true, now) },
			func(u *store.User) { u.EmailVerified = true }},
		{"unverify", func(now time.Time) error { return db.SetEmailVerified(ctxT(t), "u1", false, now) },
			func(u *store.User) { u.EmailVerified = false }},
	}
	for i, st := range steps {
		now := at(time.Duration(i+1) * time.Second)
		mustNil(t, st.apply(now), st.name)
		st.edit(&want)
		want.UpdatedAt = now
		got, err := db.UserByID(ctxT(t), "u1")
		mustNil(t, err, st.name)
		equal(t, *got, normUser(want), st.name)
	}
	got, err := db.UserByID(ctxT(t), "u2")
	mustNil(t, err, "other user")
	equal(t, *got, normUser(other), "other user is untouched")
}

func ids[T any](items []T, id func(T) string) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, id(it))
	}
	return out
}

func userID(u store.User) string { return u.ID }

func testListUsersPaging(t *testing.T, db *store.DB) {
	got, err := db.ListUsers(ctxT(t), "", 10)
	mustNil(t, err, "empty table")
	if len(got) != 0 {
		t.Fatalf("empty table: got %d users", len(got))
	}
	var all []string
	for _, i := range []int{7, 3, 24, 0, 11, 19, 1, 5, 13, 22, 9, 2, 16, 4, 20, 6, 8, 10, 12, 14, 15, 17, 18, 21, 23} {
		id := fmt.Sprintf("u%02d", i)
		createUser(t, db, id)
		all = append(all, id)
	}
	slices.Sort(all)
	cases := []struct {
		name    string
		afterID string
		limit   int
		want    []string
	}{
		{"first page", "", 10, all[:10]},
		{"second page", "u09", 10, all[10:20]},
		{"last page", "u19", 10, all[20:]},
		{"past the end", "u24", 10, nil},
		{"after id not in table", "u09x", 3, all[10:13]},
		{"zero limit means 100", "", 0, all},
		{"negative limit means 100", "", -5, all},
		{"limit one", "u00", 1, all[1:2]},
		{"hostile after id", "' OR '1'='1", 2, all[:2]},
	}
	for _, tc := range cases {
		got, err := db.ListUsers(ctxT(t), tc.afterID, tc.limit)
		mustNil(t, err, tc.name)
		if g := ids(got, userID); !slices.Equal(g, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, g, tc.want)
		}
	}
}

// IDs are ordered by their bytes in every dialect, whatever the database locale,
// so that keyset paging means the same thing everywhere.
func testListUsersByteOrder(t *testing.T, db *store.DB) {
	in := []string{"b", "B", "a", "_x", "Z9", "é", "-", "a-", "aa", "A"}
	for _, id := range in {
		createUser(t, db, id)
	}
	want := slices.Clone(in)
	slices.Sort(want) // Go compares strings bytewise
	got, err := db.ListUsers(ctxT(t), "", 0)
	mustNil(t, err, "list")
	equal(t, ids(got, userID), want, "byte order")
	var paged []string
	after := ""
	for {
		page, err := db.ListUsers(ctxT(t), after, 3)
		mustNil(t, err, "page")
		if len(page) == 0 {
			break
		}
		paged = append(paged, ids(page, userID)...)
		after = page[len(page)-1].ID
	}
	equal(t, paged, want, "paging by three")
}

func testListUsersLimitCap(t *testing.T, db *store.DB) {
	const n = 1001
	for i := range n {
		u := store.User{ID: fmt.Sprintf("u%04d", i), CreatedAt: t0, UpdatedAt: t0}
		mustNil(t, db.CreateUser(ctxT(t), &u), "create")
	}
	got, err := db.ListUsers(ctxT(t), "", 5000)
	mustNil(t, err, "list")
	if len(got) != 1000 {
		t.Fatalf("limit 5000: got %d users, want the cap of 1000", len(got))
	}
	got, err = db.ListUsers(ctxT(t), "", 0)
	mustNil(t, err, "list")
	if len(got) != 100 {
		t.Fatalf("limit 0: got %d users, want 100", len(got))
	}
}

// Errors must never carry the values of the statement: they reach logs.
func testErrorsHideValues(t *testing.T, db *store.DB) {
	const marker = "SECRET-MARKER-7f3a"
	u := newUser("u1")
	u.EmailIndex = []byte(marker)
	mustNil(t, db.CreateUser(ctxT(t), &u), "create")
	dup := newUser("u2")
	dup.EmailIndex = []byte(marker)
	dup.PasswordHash = marker
	errs := []error{db.CreateUser(ctxT(t), &dup)}
	dupID := newUser("u1")
	dupID.PasswordHash = marker
	errs = append(errs, db.CreateUser(ctxT(t), &dupID))
	s, tok := newSession("s1", "u1", t0)
	mustNil(t, db.CreateSession(ctxT(t), &s, &tok), "create session")
	s2, tok2 := newSession("s2", "u1", t0)
	tok2.Hash = tok.Hash
	s2.UserAgent = marker
	errs = append(errs, db.CreateSession(ctxT(t), &s2, &tok2))
	for i, err := range errs {
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("case %d: got %v, want ErrConflict", i, err)
		}
		if strings.Contains(err.Error(), marker) {
			t.Fatalf("case %d: error %q leaks a stored value", i, err)
		}
	}
}

func testSessionCreateAndGet(t *testing.T, db *store.DB) {
	createUser(t, db, "u1")
	s, tok := newSession("s1", "u1", t0)
	s.AMR = []string{"pwd", "otp"}
	tok.SessionID = "" // filled in from the session
	mustNil(t, db.CreateSession(ctxT(t), &s, &tok), "create")
	if tok.SessionID != "s1" {
		t.Fatalf("first token SessionID = %q, want it set to s1", tok.SessionID)
	}
	got, err := db.SessionByID(ctxT(t), "s1")
	mustNil(t, err, "session by id")
	equal(t, *got, normSession(s), "session by id")

	gotTok, gotSess, err := db.RefreshToken(ctxT(t), tok.Hash)
	mustNil(t, err, "refresh token")
	equal(t, *gotTok, normToken(tok), "refresh token")
	equal(t, *gotSess, normSession(s), "refresh token's session")

	_, err = db.SessionByID(ctxT(t), "nope")
	mustIs(t, err, store.ErrNotFound, "unknown session")
	_, _, err = db.RefreshToken(ctxT(t), []byte("nope"))
	mustIs(t, err, store.ErrNotFound, "unknown token")
	_, _, err = db.RefreshToken(ctxT(t), nil)
	mustIs(t, err, store.ErrNotFound, "empty hash")
}

// A failed CreateSession writes neither the session nor the token.
func testSessionCreateAtomic(t *testing.T, db *store.DB) {
	createUser(t, db, "u1")
	_, tok1 := createSession(t, db, "s1", "u1", t0)

	// The session id is taken: the new token must not appear.
	s, tok := newSession("s1", "u1", t0)
	tok.Hash = []byte("fresh-hash")
	mustIs(t, db.CreateSession(ctxT(t), &s, &tok), store.ErrConflict, "duplicate session id")
	_, _, err := db.RefreshToken(ctxT(t), []byte("fresh-hash"))
	mustIs(t, err, store.ErrNotFound, "token of the rejected session")

	// The token hash is taken: the new session must not appear.
	s, tok = newSession("s2", "u1", t0)
	tok.Hash = tok1.Hash
	mustIs(t, db.CreateSession(ctxT(t), &s, &tok), store.ErrConflict, "duplicate token hash")
	_, err = db.SessionByID(ctxT(t), "s2")
	mustIs(t, err, store.ErrNotFound, "session of the rejected token")

	// No such user.
	s, tok = newSession("s3", "ghost", t0)
	mustIs(t, db.CreateSession(ctxT(t), &s, &tok), store.ErrNotFound, "unknown user")
	_, _, err = db.RefreshToken(ctxT(t), tok.Hash)
	mustIs(t, err, store.ErrNotFound, "token of the session without user")

	// Invalid input.
	s, tok = newSession("s4", "u1", t0)
	tok.SessionID = "someone-else"
	if err := db.CreateSession(ctxT(t), &s, &tok); err == nil {
		t.Fatal("token for another session: no error")
	}
	s, _ = newSession("s5", "u1", t0)
	if err := db.CreateSession(ctxT(t), &s, nil); err == nil {
		t.Fatal("nil first token: no error")
	}
	s, tok = newSession("s6", "u1", t0)
	tok.Hash = nil
	if err := db.CreateSession(ctxT(t), &s, &tok); err == nil {
		t.Fatal("empty token hash: no error")
	}
	for _, id := range []string{"s4", "s5", "s6"} {
		if _, err := db.SessionByID(ctxT(t), id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("invalid session %s was written: %v", id, err)
		}
	}
}

func sessionID(s store.Session) string { return s.ID }

func testListSessions(t *testing.T, db *store.DB) {
	createUser(t, db, "u1")
	createUser(t, db, "u2")
	now := at(100 * time.Hour)
	got, err := db.ListSessions(ctxT(t), "u1", now)
	mustNil(t, err, "no sessions")
	if len(got) != 0 {
		t.Fatalf("no sessions: got %d", len(got))
	}

	mk := func(id, user string, created time.Time, edit func(*store.Session)) {
		s, tok := newSession(id, user, created)
		if edit != nil {
			edit(&s)
		}
		mustNil(t, db.CreateSession(ctxT(t), &s, &tok), "create "+id)
	}
	mk("old", "u1", at(time.Hour), nil)
	mk("newest", "u1", at(3*time.Hour), nil)
	mk("middle", "u1", at(2*time.Hour), nil)
	mk("revoked", "u1", at(4*time.Hour), func(s *store.Session) { s.RevokedAt, s.RevokeReason = ptr(at(5*time.Hour)), "logout" })
	mk("idle-expired", "u1", at(5*time.Hour), func(s *store.Session) { s.IdleExpiresAt = now })
	mk("expired", "u1", at(6*time.Hour), func(s *store.Session) { s.ExpiresAt = now.Add(-time.Microsecond) })
	mk("other-user", "u2", at(7*time.Hour), nil)

	got, err = db.ListSessions(ctxT(t), "u1", now)
	mustNil(t, err, "list")
	if g, want := ids(got, sessionID), []string{"newest", "middle", "old"}; !slices.Equal(g, want) {
		t.Fatalf("got %v, want %v (active only, newest first)", g, want)
	}
	for _, s := range got {
		if !s.Active(now) {
			t.Fatalf("inactive session %s listed", s.ID)
		}
	}
	// One microsecond before the idle expiry the session is still active.
	got, err = db.ListSessions(ctxT(t), "u1", now.Add(-time.Microsecond))
	mustNil(t, err, "list")
	if !slices.Contains(ids(got, sessionID), "idle-expired") {
		t.Fatalf("session listed as expired one microsecond early: %v", ids(got, sessionID))
	}
	got, err = db.ListSessions(ctxT(t), "nobody", now)
	mustNil(t, err, "unknown user")
	if len(got) != 0 {
		t.Fatalf("unknown user: got %d sessions", len(got))
	}
}

func testRevokeSession(t *testing.T, db *store.DB) {
	createUser(t, db, "u1")
	_, tok := createSession(t, db, "s1", "u1", t0)
	createSession(t, db, "s2", "u1", t0)
	mustNil(t, db.RotateRefreshToken(ctxT(t), rotation("s1", tok.Hash, 1, at(time.Minute), "s1-2")), "rotate")

	ok, err := db.RevokeSession(ctxT(t), "s1", "logout", at(time.Hour))
	mustNil(t, err, "revoke")
	if !ok {
		t.Fatal("first revoke reported false")
	}
	ok, err = db.RevokeSession(ctxT(t), "s1", "admin", at(2*time.Hour))
	mustNil(t, err, "revoke again")
	if ok {
		t.Fatal("second revoke reported true")
	}
	got, err := db.SessionByID(ctxT(t), "s1")
	mustNil(t, err, "session")
	if got.RevokedAt == nil || !got.RevokedAt.Equal(at(time.Hour)) || got.RevokeReason != "logout" {
		t.Fatalf("revocation = %v %q, want the first one kept (%v, logout)", got.RevokedAt, got.RevokeReason, at(time.Hour))
	}
	if got.Active(at(time.Hour)) {
		t.Fatal("revoked session is active")
	}
	// The sealed successor dies with the family.
	old, _, err := db.RefreshToken(ctxT(t), tok.Hash)
	mustNil(t, err, "old token")
	if old.SuccessorSealed != nil {
		t.Fatalf("revoked family still holds a sealed successor: %q", old.SuccessorSealed)
	}
	// The other session is untouched.
	other, err := db.SessionByID(ctxT(t), "s2")
	mustNil(t, err, "other session")
	if other.RevokedAt != nil {
		t.Fatal("revoking s1 revoked s2")
	}
	_, err = db.RevokeSession(ctxT(t), "nope", "logout", t0)
	mustIs(t, err, store.ErrNotFound, "unknown session")
}

func testRevokeUserSessions(t *testing.T, db *store.DB) {
	createUser(t, db, "u1")
	createUser(t, db, "u2")
	for _, id := range []string{"c", "a", "keep", "b"} {
		createSession(t, db, id, "u1", t0)
	}
	createSession(t, db, "already", "u1", t0)
	_, err := db.RevokeSession(ctxT(t), "already", "logout", t0)
	mustNil(t, err, "pre-revoke")
	createSession(t, db, "other", "u2", t0)

	got, err := db.RevokeUserSessions(ctxT(t), "u1", "keep", "password changed", at(time.Hour))
	mustNil(t, err, "revoke")
	equal(t, got, []string{"a", "b", "c"}, "ids revoked by this call, sorted")
	for _, id := range got {
		s, err := db.SessionByID(ctxT(t), id)
		mustNil(t, err, id)
		if s.RevokedAt == nil || !s.RevokedAt.Equal(at(time.Hour)) || s.RevokeReason != "password changed" {
			t.Fatalf("%s: revocation %v %q", id, s.RevokedAt, s.RevokeReason)
		}
	}
	for _, id := range []string{"keep", "other"} {
		s, err := db.SessionByID(ctxT(t), id)
		mustNil(t, err, id)
		if s.RevokedAt != nil {
			t.Fatalf("%s was revoked", id)
		}
	}
	s, err := db.SessionByID(ctxT(t), "already")
	mustNil(t, err, "already")
	if s.RevokeReason != "logout" {
		t.Fatalf("earlier revocation overwritten: %q", s.RevokeReason)
	}

	got, err = db.RevokeUserSessions(ctxT(t), "u1", "", "lock", at(2*time.Hour))
	mustNil(t, err, "revoke all")
	equal(t, got, []string{"keep"}, "no exception: the remaining session")
	got, err = db.RevokeUserSessions(ctxT(t), "u1", "", "lock", at(3*time.Hour))
	mustNil(t, err, "revoke again")
	if len(got) != 0 {
		t.Fatalf("nothing left to revoke, got %v", got)
	}
	got, err = db.RevokeUserSessions(ctxT(t), "nobody", "", "lock", t0)
	mustNil(t, err, "unknown user")
	if len(got) != 0 {
		t.Fatalf("unknown user: got %v", got)
	}
}

func token(t *testing.T, db *store.DB, hash []byte) store.RefreshToken {
	t.Helper()
	tok, _, err := db.RefreshToken(ctxT(t), hash)
	mustNil(t, err, "refresh token "+string(hash))
	return *tok
}

func testRotateChain(t *testing.T, db *store.DB) {
	createUser(t, db, "u1")
	s, first := createSession(t, db, "s1", "u1", t0)
	hashes := [][]byte{first.Hash}
	for gen := int64(1); gen <= 4; gen++ {
		now := at(time.Duration(gen) * time.Minute)
		r := rotation("s1", hashes[gen-1], gen, now, fmt.Sprintf("h%d", gen+1))
		r.New.SessionID = "" // filled in from the rotation
		mustNil(t, db.RotateRefreshToken(ctxT(t), r), fmt.Sprintf("rotation %d", gen))
		hashes = append(hashes, r.New.Hash)

		got, err := db.SessionByID(ctxT(t), "s1")
		mustNil(t, err, "session")
		want := s
		want.Generation, want.LastUsedAt, want.IdleExpiresAt = gen+1, now, r.IdleExpiresAt
		equal(t, *got, normSession(want), fmt.Sprintf("session after rotation %d", gen))

		old := token(t, db, hashes[gen-1])
		if old.RotatedAt == nil || !old.RotatedAt.Equal(now) {
			t.Fatalf("rotation %d: old token RotatedAt = %v, want %v", gen, old.RotatedAt, now)
		}
		if string(old.SuccessorSealed) != "sealed:"+string(r.New.Hash) {
			t.Fatalf("rotation %d: old token successor = %q", gen, old.SuccessorSealed)
		}
		want2 := r.New
		want2.SessionID = "s1"
		equal(t, token(t, db, r.New.Hash), normToken(want2), "new token")
		// Only the immediately previous token keeps its successor.
		for g := int64(1); g < gen; g++ {
			if older := token(t, db, hashes[g-1]); older.SuccessorSealed != nil {
				t.Fatalf("after rotation %d, generation %d still holds a sealed successor", gen, g)
			}
		}
	}
}

func testRotateConflicts(t *testing.T, db *store.DB) {
	createUser(t, db, "u1")
	_, other := createSession(t, db, "other", "u1", t0)
	now := at(time.Minute)
	cases := []struct {
		name     string
		prepare  func(sid string, h []byte)
		rot      func(sid string, h []byte) store.Rotation
		conflict bool // ErrConflict; otherwise some other error
	}{
		{"already rotated",
			func(sid string, h []byte) {
				mustNil(t, db.RotateRefreshToken(ctxT(t), rotation(sid, h, 1, now, sid+"-first")), "first rotation")
			},
			func(sid string, h []byte) store.Rotation { return rotation(sid, h, 1, now, sid+"-second") }, true},
		{"stale generation", nil,
			func(sid string, h []byte) store.Rotation { return rotation(sid, h, 5, now, sid+"-x") }, true},
		{"revoked session",
			func(sid string, h []byte) {
				_, err := db.RevokeSession(ctxT(t), sid, "logout", t0)
				mustNil(t, err, "revoke")
			},
			func(sid string, h []byte) store.Rotation { return rotation(sid, h, 1, now, sid+"-x") }, true},
		{"new hash taken", nil,
			func(sid string, h []byte) store.Rotation {
				r := rotation(sid, h, 1, now, "")
				r.New.Hash = other.Hash
				return r
			}, true},
		{"old hash of another session", nil,
			func(sid string, h []byte) store.Rotation { return rotation(sid, other.Hash, 1, now, sid+"-x") }, true},
		{"unknown old hash", nil,
			func(sid string, h []byte) store.Rotation { return rotation(sid, []byte("nope"), 1, now, sid+"-x") }, true},
		{"unknown session", nil,
			func(sid string, h []byte) store.Rotation { return rotation("ghost", h, 1, now, sid+"-x") }, true},
		{"generation not increasing", nil,
			func(sid string, h []byte) store.Rotation {
				r := rotation(sid, h, 1, now, sid+"-x")
				r.New.Generation = 1
				return r
			}, false},
		{"new token for another session", nil,
			func(sid string, h []byte) store.Rotation {
				r := rotation(sid, h, 1, now, sid+"-x")
				r.New.SessionID = "other"
				return r
			}, false},
		{"empty new hash", nil,
			func(sid string, h []byte) store.Rotation {
				r := rotation(sid, h, 1, now, sid+"-x")
				r.New.Hash = nil
				return r
			}, false},
		{"empty old hash", nil,
			func(sid string, h []byte) store.Rotation { return rotation(sid, nil, 1, now, sid+"-x") }, false},
	}
	for i, tc := range cases {
		sid := fmt.Sprintf("s%d", i)
		_, tok := createSession(t, db, sid, "u1", t0)
		if tc.prepare != nil {
			tc.prepare(sid, tok.Hash)
		}
		beforeSess, err := db.SessionByID(ctxT(t), sid)
		mustNil(t, err, tc.name)
		beforeTok, beforeOther := token(t, db, tok.Hash), token(t, db, other.Hash)

		r := tc.rot(sid, tok.Hash)
		err = db.RotateRefreshToken(ctxT(t), r)
		switch {
		case err == nil:
			t.Fatalf("%s: rotation succeeded", tc.name)
		case tc.conflict && !errors.Is(err, store.ErrConflict):
			t.Fatalf("%s: got %v, want ErrConflict", tc.name, err)
		case !tc.conflict && errors.Is(err, store.ErrConflict):
			t.Fatalf("%s: got ErrConflict, want a validation error", tc.name)
		}
		// Nothing half-written: the old token, the session and the other
		// family are exactly as before, and the new token does not exist.
		afterSess, err := db.SessionByID(ctxT(t), sid)
		mustNil(t, err, tc.name)
		equal(t, *afterSess, *beforeSess, tc.name+": session unchanged")
		equal(t, token(t, db, tok.Hash), beforeTok, tc.name+": old token unchanged")
		equal(t, token(t, db, other.Hash), beforeOther, tc.name+": other family unchanged")
		if len(r.New.Hash) > 0 && string(r.New.Hash) != string(other.Hash) {
			_, _, err := db.RefreshToken(ctxT(t), r.New.Hash)
			mustIs(t, err, store.ErrNotFound, tc.name+": new token")
		}
	}
	// A failed attempt leaves the family usable.
	_, tok := createSession(t, db, "fresh", "u1", t0)
	mustIs(t, db.RotateRefreshToken(ctxT(t), rotation("fresh", tok.Hash, 7, now, "fresh-bad")), store.ErrConflict, "stale")
	mustNil(t, db.RotateRefreshToken(ctxT(t), rotation("fresh", tok.Hash, 1, now, "fresh-2")), "rotation after a failed one")
}

// race starts n goroutines at once and returns their errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// winner checks that exactly one error is nil and all others are ErrConflict,
// and returns the index of the winner.
func winner(t *testing.T, errs []error, what string) int {
	t.Helper()
	win := -1
	for i, err := range errs {
		switch {
		case err == nil && win >= 0:
			t.Fatalf("%s: goroutines %d and %d both succeeded", what, win, i)
		case err == nil:
			win = i
		case !errors.Is(err, store.ErrConflict):
			t.Fatalf("%s: goroutine %d: got %v, want nil or ErrConflict", what, i, err)
		}
	}
	if win < 0 {
		t.Fatalf("%s: nobody succeeded", what)
	}
	return win
}

// Twenty refreshes racing with the same token: one new token, nineteen conflicts.
func testRotateRace(t *testing.T, db *store.DB) {
	const n = 20
	createUser(t, db, "u1")
	for round := range 3 {
		sid := fmt.Sprintf("s%d", round)
		_, tok := createSession(t, db, sid, "u1", t0)
		errs := race(n, func(i int) error {
			return db.RotateRefreshToken(ctxT(t), rotation(sid, tok.Hash, 1, at(time.Minute), fmt.Sprintf("%s-new-%d", sid, i)))
		})
		win := winner(t, errs, "rotation race")
		winHash := fmt.Sprintf("%s-new-%d", sid, win)
		for i := range n {
			_, _, err := db.RefreshToken(ctxT(t), []byte(fmt.Sprintf("%s-new-%d", sid, i)))
			if i == win {
				mustNil(t, err, "winner's token")
			} else {
				mustIs(t, err, store.ErrNotFound, "loser's token")
			}
		}
		s, err := db.SessionByID(ctxT(t), sid)
		mustNil(t, err, "session")
		if s.Generation != 2 {
			t.Fatalf("generation = %d after one successful rotation", s.Generation)
		}
		if old := token(t, db, tok.Hash); string(old.SuccessorSealed) != "sealed:"+winHash {
			t.Fatalf("old token's successor = %q, want the winner's", old.SuccessorSealed)
		}
	}
}

// A rotation racing a revocation: whichever wins, the family ends revoked with
// no sealed successor left, and a rotation that lost wrote nothing.
func testRotateRaceWithRevoke(t *testing.T, db *store.DB) {
	createUser(t, db, "u1")
	for round := range 8 {
		sid := fmt.Sprintf("s%d", round)
		_, tok := createSession(t, db, sid, "u1", t0)
		newHash := sid + "-2"
		var revoked bool
		errs := race(2, func(i int) error {
			if i == 0 {
				return db.RotateRefreshToken(ctxT(t), rotation(sid, tok.Hash, 1, at(time.Minute), newHash))
			}
			var err error
			revoked, err = db.RevokeSession(ctxT(t), sid, "reuse", at(time.Minute))
			return err
		})
		if errs[0] != nil && !errors.Is(errs[0], store.ErrConflict) {
			t.Fatalf("rotation: %v", errs[0])
		}
		mustNil(t, errs[1], "revoke")
		if !revoked {
			t.Fatal("revoke reported false")
		}
		old := token(t, db, tok.Hash)
		if old.SuccessorSealed != nil {
			t.Fatalf("round %d: revoked family holds a sealed successor", round)
		}
		_, _, err := db.RefreshToken(ctxT(t), []byte(newHash))
		if errs[0] == nil {
			mustNil(t, err, "successful rotation's token")
		} else {
			mustIs(t, err, store.ErrNotFound, "failed rotation's token")
			if old.RotatedAt != nil {
				t.Fatalf("round %d: failed rotation marked the old token rotated", round)
			}
		}
	}
}

func testPurgeExpired(t *testing.T, db *store.DB) {
	createUser(t, db, "u1")
	cutoff := at(100 * time.Hour)
	mk := func(id string, edit func(*store.Session)) store.RefreshToken {
		s, tok := newSession(id, "u1", t0)
		edit(&s)
		mustNil(t, db.CreateSession(ctxT(t), &s, &tok), id)
		return tok
	}
	mk("live", func(s *store.Session) {})
	idleTok := mk("idle-expired", func(s *store.Session) {})
	r := rotation("idle-expired", idleTok.Hash, 1, at(time.Minute), "idle-2")
	r.IdleExpiresAt = cutoff.Add(-time.Microsecond)
	mustNil(t, db.RotateRefreshToken(ctxT(t), r), "rotate")
	mk("abs-expired", func(s *store.Session) { s.ExpiresAt = at(time.Hour) })
	mk("at-cutoff", func(s *store.Session) { s.IdleExpiresAt = cutoff })
	mk("revoked-live", func(s *store.Session) { s.RevokedAt, s.RevokeReason = ptr(t0), "logout" })

	for i, d := range []time.Duration{-3 * time.Hour, -2 * time.Hour, -time.Microsecond, 0, time.Hour} {
		e := store.Event{ID: fmt.Sprintf("e%d", i), Type: "login_succeeded", Time: cutoff.Add(d)}
		mustNil(t, db.InsertEvent(ctxT(t), &e), "event")
	}
	_, _, err := db.Hit(ctxT(t), "expired", time.Minute, t0)
	mustNil(t, err, "hit")
	_, _, err = db.Hit(ctxT(t), "live", time.Hour, cutoff.Add(-time.Minute))
	mustNil(t, err, "hit")

	n, err := db.PurgeExpired(ctxT(t), cutoff, cutoff)
	mustNil(t, err, "purge")
	// idle-expired (session + 2 tokens), abs-expired (session + token),
	// 3 events, 1 throttle counter.
	if n != 3+2+3+1 {
		t.Fatalf("purge deleted %d rows, want 9", n)
	}
	for _, id := range []string{"idle-expired", "abs-expired"} {
		_, err := db.SessionByID(ctxT(t), id)
		mustIs(t, err, store.ErrNotFound, "purged session "+id)
	}
	for _, h := range [][]byte{idleTok.Hash, []byte("idle-2"), []byte("hash-abs-expired-1")} {
		_, _, err := db.RefreshToken(ctxT(t), h)
		mustIs(t, err, store.ErrNotFound, "purged token "+string(h))
	}
	// Expiry is "before the cutoff"; a revoked session is kept until it expires.
	for _, id := range []string{"live", "at-cutoff", "revoked-live"} {
		_, err := db.SessionByID(ctxT(t), id)
		mustNil(t, err, "kept session "+id)
		_, _, err = db.RefreshToken(ctxT(t), []byte("hash-"+id+"-1"))
		mustNil(t, err, "kept token of "+id)
	}
	evs, err := db.ListEvents(ctxT(t), store.EventFilter{})
	mustNil(t, err, "events")
	if got := ids(evs, func(e store.Event) string { return e.ID }); !slices.Equal(got, []string{"e4", "e3"}) {
		t.Fatalf("remaining events %v, want [e4 e3]", got)
	}
	if c, _, err := db.Peek(ctxT(t), "live", cutoff); err != nil || c != 1 {
		t.Fatalf("live throttle counter after purge: %d, %v", c, err)
	}

	n, err = db.PurgeExpired(ctxT(t), cutoff, cutoff)
	mustNil(t, err, "purge again")
	if n != 0 {
		t.Fatalf("repeated purge deleted %d rows", n)
	}
	// A zero eventsBefore deletes no events.
	n, err = db.PurgeExpired(ctxT(t), cutoff.Add(time.Microsecond), time.Time{})
	mustNil(t, err, "purge one microsecond later")
	if n != 2 {
		t.Fatalf("purge one microsecond later deleted %d rows, want 2 (at-cutoff and its token)", n)
	}
}

func newKey(id, state string, created time.Time) store.SigningKey {
	k := store.SigningKey{
		ID:            id,
		Algorithm:     "ES256",
		State:         state,
		PublicJWK:     []byte(`{"kty":"EC","crv":"P-256","kid":"` + id + `"}`),
		PrivateSealed: []byte("sealed-private-" + id),
		CreatedAt:     created,
	}
	switch state {
	case store.KeyRetired:
		k.RetiredAt = ptr(created.Add(3 * time.Hour))
		fallthrough
	case store.KeyRetiring:
		k.RetiringAt = ptr(created.Add(2 * time.Hour))
		fallthrough
	case store.KeyActive:
		k.ActivatedAt = ptr(created.Add(time.Hour))
	}
	return k
}

func normKey(k store.SigningKey) store.SigningKey {
	k.CreatedAt = norm(k.CreatedAt)
	k.ActivatedAt, k.RetiringAt, k.RetiredAt = normp(k.ActivatedAt), normp(k.RetiringAt), normp(k.RetiredAt)
	return k
}

func keysByID(t *testing.T, db *store.DB) map[string]store.SigningKey {
	t.Helper()
	ks, err := db.SigningKeys(ctxT(t))
	mustNil(t, err, "signing keys")
	m := make(map[string]store.SigningKey, len(ks))
	for _, k := range ks {
		m[k.ID] = k
	}
	return m
}

func createKey(t *testing.T, db *store.DB, id, state string, created time.Time) store.SigningKey {
	t.Helper()
	k := newKey(id, state, created)
	mustNil(t, db.CreateSigningKey(ctxT(t), &k), "create key "+id)
	return k
}

func testSigningKeys(t *testing.T, db *store.DB) {
	ks, err := db.SigningKeys(ctxT(t))
	mustNil(t, err, "no keys")
	if len(ks) != 0 {
		t.Fatalf("no keys: got %d", len(ks))
	}
	k3 := createKey(t, db, "k3", store.KeyNext, at(2*time.Hour))
	k1 := createKey(t, db, "k1", store.KeyRetired, t0)
	k2 := createKey(t, db, "k2", store.KeyActive, at(time.Hour))
	k0 := createKey(t, db, "k0", store.KeyRetiring, at(time.Hour)) // same time as k2: ties by id
	ks, err = db.SigningKeys(ctxT(t))
	mustNil(t, err, "keys")
	equal(t, ks, []store.SigningKey{normKey(k1), normKey(k0), normKey(k2), normKey(k3)}, "all keys, oldest first")

	dup := newKey("k1", store.KeyNext, t0)
	mustIs(t, db.CreateSigningKey(ctxT(t), &dup), store.ErrConflict, "duplicate id")
	second := newKey("k9", store.KeyActive, t0)
	mustIs(t, db.CreateSigningKey(ctxT(t), &second), store.ErrConflict, "a second active key")

	invalid := map[string]store.SigningKey{
		"empty id":       newKey("", store.KeyNext, t0),
		"unknown state":  newKey("kx", "compromised", t0),
		"no public half": func() store.SigningKey { k := newKey("ky", store.KeyNext, t0); k.PublicJWK = nil; return k }(),
		"no private half": func() store.SigningKey {
			k := newKey("kz", store.KeyNext, t0)
			k.PrivateSealed = nil
			return k
		}(),
	}
	for name, k := range invalid {
		err := db.CreateSigningKey(ctxT(t), &k)
		if err == nil || errors.Is(err, store.ErrConflict) {
			t.Fatalf("%s: got %v, want a validation error", name, err)
		}
	}
	if err := db.CreateSigningKey(ctxT(t), nil); err == nil {
		t.Fatal("nil key: no error")
	}
	if got := len(keysByID(t, db)); got != 4 {
		t.Fatalf("%d keys after rejected inserts, want 4", got)
	}
}

func testTransitionKeys(t *testing.T, db *store.DB) {
	k1 := createKey(t, db, "k1", store.KeyActive, t0)
	k2 := createKey(t, db, "k2", store.KeyNext, at(time.Hour))
	k3 := newKey("k3", store.KeyNext, at(5*time.Hour))

	// The promotion is listed before the demotion: the store must still keep at
	// most one key active at every step.
	now := at(5 * time.Hour)
	mustNil(t, db.TransitionKeys(ctxT(t), []store.KeyTransition{
		{ID: "k2", From: store.KeyNext, To: store.KeyActive, At: now},
		{ID: "k1", From: store.KeyActive, To: store.KeyRetiring, At: now},
	}, &k3), "rotate")
	k1.State, k1.RetiringAt = store.KeyRetiring, ptr(now)
	k2.State, k2.ActivatedAt = store.KeyActive, ptr(now)
	equal(t, keysByID(t, db), map[string]store.SigningKey{"k1": normKey(k1), "k2": normKey(k2), "k3": normKey(k3)}, "after rotation")

	later := at(9 * time.Hour)
	mustNil(t, db.TransitionKeys(ctxT(t), []store.KeyTransition{
		{ID: "k1", From: store.KeyRetiring, To: store.KeyRetired, At: later},
	}, nil), "retire")
	k1.State, k1.RetiredAt = store.KeyRetired, ptr(later)
	equal(t, keysByID(t, db)["k1"], normKey(k1), "retired key")

	// Skipping a state is allowed (a next key that is never used).
	mustNil(t, db.TransitionKeys(ctxT(t), []store.KeyTransition{
		{ID: "k3", From: store.KeyNext, To: store.KeyRetired, At: later},
	}, nil), "discard next key")
	if k := keysByID(t, db)["k3"]; k.State != store.KeyRetired || k.ActivatedAt != nil || k.RetiredAt == nil {
		t.Fatalf("discarded next key: %+v", k)
	}

	k4 := newKey("k4", store.KeyNext, later)
	mustNil(t, db.TransitionKeys(ctxT(t), nil, &k4), "insert only")
	mustNil(t, db.TransitionKeys(ctxT(t), nil, nil), "nothing to do")
	if got := len(keysByID(t, db)); got != 4 {
		t.Fatalf("%d keys, want 4", got)
	}
}

func testTransitionKeysConflicts(t *testing.T, db *store.DB) {
	createKey(t, db, "active", store.KeyActive, t0)
	createKey(t, db, "next", store.KeyNext, t0)
	createKey(t, db, "retiring", store.KeyRetiring, t0)
	now := at(time.Hour)
	cases := []struct {
		name     string
		ts       []store.KeyTransition
		newKey   *store.SigningKey
		conflict bool
	}{
		{"stale from", []store.KeyTransition{{ID: "next", From: store.KeyActive, To: store.KeyRetiring, At: now}}, nil, true},
		{"unknown key", []store.KeyTransition{{ID: "ghost", From: store.KeyNext, To: store.KeyActive, At: now}}, nil, true},
		{"second active", []store.KeyTransition{{ID: "next", From: store.KeyNext, To: store.KeyActive, At: now}}, nil, true},
		{"later transition fails", []store.KeyTransition{
			{ID: "retiring", From: store.KeyRetiring, To: store.KeyRetired, At: now},
			{ID: "ghost", From: store.KeyNext, To: store.KeyActive, At: now},
		}, nil, true},
		{"new key id taken", []store.KeyTransition{
			{ID: "retiring", From: store.KeyRetiring, To: store.KeyRetired, At: now},
		}, ptr(newKey("next", store.KeyNext, now)), true},
		{"new key fails after transitions", []store.KeyTransition{
			{ID: "active", From: store.KeyActive, To: store.KeyRetiring, At: now},
			{ID: "next", From: store.KeyNext, To: store.KeyActive, At: now},
		}, ptr(newKey("active", store.KeyNext, now)), true},
		{"backwards", []store.KeyTransition{{ID: "retiring", From: store.KeyRetiring, To: store.KeyActive, At: now}}, nil, false},
		{"same state", []store.KeyTransition{{ID: "next", From: store.KeyNext, To: store.KeyNext, At: now}}, nil, false},
		{"unknown target", []store.KeyTransition{{ID: "next", From: store.KeyNext, To: "leaked", At: now}}, nil, false},
		{"unknown source", []store.KeyTransition{{ID: "next", From: "", To: store.KeyActive, At: now}}, nil, false},
		{"invalid new key", nil, ptr(newKey("", store.KeyNext, now)), false},
	}
	before := keysByID(t, db)
	for _, tc := range cases {
		err := db.TransitionKeys(ctxT(t), tc.ts, tc.newKey)
		switch {
		case err == nil:
			t.Fatalf("%s: succeeded", tc.name)
		case tc.conflict && !errors.Is(err, store.ErrConflict):
			t.Fatalf("%s: got %v, want ErrConflict", tc.name, err)
		case !tc.conflict && errors.Is(err, store.ErrConflict):
			t.Fatalf("%s: got ErrConflict, want a validation error", tc.name)
		}
		equal(t, keysByID(t, db), before, tc.name+": nothing changed")
	}
}

// Two replicas rotating at once: one rotation happens, the other changes nothing.
func testTransitionKeysRace(t *testing.T, db *store.DB) {
	createKey(t, db, "a0", store.KeyActive, t0)
	createKey(t, db, "n0", store.KeyNext, t0)
	active, next := "a0", "n0"
	for round := 1; round <= 8; round++ {
		now := at(time.Duration(round) * time.Hour)
		errs := race(2, func(i int) error {
			k := newKey(fmt.Sprintf("r%d-g%d", round, i), store.KeyNext, now)
			return db.TransitionKeys(ctxT(t), []store.KeyTransition{
				{ID: active, From: store.KeyActive, To: store.KeyRetiring, At: now},
				{ID: next, From: store.KeyNext, To: store.KeyActive, At: now},
			}, &k)
		})
		win := winner(t, errs, fmt.Sprintf("round %d", round))
		ks := keysByID(t, db)
		var actives []string
		for id, k := range ks {
			if k.State == store.KeyActive {
				actives = append(actives, id)
			}
		}
		equal(t, actives, []string{next}, fmt.Sprintf("round %d: active keys", round))
		if ks[active].State != store.KeyRetiring {
			t.Fatalf("round %d: old active key is %s", round, ks[active].State)
		}
		loser := fmt.Sprintf("r%d-g%d", round, 1-win)
		if _, ok := ks[loser]; ok {
			t.Fatalf("round %d: the losing replica's new key was inserted", round)
		}
		active, next = next, fmt.Sprintf("r%d-g%d", round, win)
		if ks[next].State != store.KeyNext {
			t.Fatalf("round %d: winner's new key is %q", round, ks[next].State)
		}
	}
}

func eventID(e store.Event) string { return e.ID }

func testEvents(t *testing.T, db *store.DB) {
	evs, err := db.ListEvents(ctxT(t), store.EventFilter{})
	mustNil(t, err, "no events")
	if len(evs) != 0 {
		t.Fatalf("no events: got %d", len(evs))
	}
	all := []store.Event{
		{ID: "e1", Type: "login_failed", Time: at(1 * time.Minute), UserID: "u1", IP: "192.0.2.1", RequestID: "r1",
			Detail: map[string]string{"reason": "bad_password"}},
		{ID: "e2", Type: "login_succeeded", Time: at(2 * time.Minute), UserID: "u1", SessionID: "s1", IP: "192.0.2.1"},
		{ID: "e3", Type: "login_failed", Time: at(3 * time.Minute), UserID: "u2", IP: "2001:db8::1",
			Detail: map[string]string{"q": `'; DROP TABLE events; --`, "uni": "ünï\u2028code", "empty": ""}},
		{ID: "e4b", Type: "refresh_token_reused", Time: at(4 * time.Minute), UserID: "u2", SessionID: "s2"},
		{ID: "e4a", Type: "refresh_token_reused", Time: at(4 * time.Minute), UserID: "u1", SessionID: "s3"}, // tie: by id, descending
		{ID: "e5", Type: "login_failed", Time: at(5 * time.Minute), Detail: map[string]string{}},
	}
	for i := range all {
		mustNil(t, db.InsertEvent(ctxT(t), &all[i]), all[i].ID)
	}
	all[5].Detail = nil // an empty detail reads back as nil
	byID := map[string]store.Event{}
	for _, e := range all {
		e.Time = norm(e.Time)
		byID[e.ID] = e
	}
	cases := []struct {
		name string
		f    store.EventFilter
		want []string
	}{
		{"all, newest first", store.EventFilter{}, []string{"e5", "e4b", "e4a", "e3", "e2", "e1"}},
		{"by type", store.EventFilter{Type: "login_failed"}, []string{"e5", "e3", "e1"}},
		{"by user", store.EventFilter{UserID: "u1"}, []string{"e4a", "e2", "e1"}},
		{"type and user", store.EventFilter{Type: "login_failed", UserID: "u2"}, []string{"e3"}},
		{"since is inclusive", store.EventFilter{Since: at(3 * time.Minute)}, []string{"e5", "e4b", "e4a", "e3"}},
		{"before is exclusive", store.EventFilter{Before: at(3 * time.Minute)}, []string{"e2", "e1"}},
		{"window", store.EventFilter{Since: at(2 * time.Minute), Before: at(4 * time.Minute)}, []string{"e3", "e2"}},
		{"limit", store.EventFilter{Limit: 2}, []string{"e5", "e4b"}},
		{"page two", store.EventFilter{Before: at(4 * time.Minute), Limit: 2}, []string{"e3", "e2"}},
		{"unknown type", store.EventFilter{Type: "nope"}, nil},
		{"hostile type", store.EventFilter{Type: "' OR '1'='1"}, nil},
		{"empty window", store.EventFilter{Since: at(4 * time.Minute), Before: at(4 * time.Minute)}, nil},
	}
	for _, tc := range cases {
		got, err := db.ListEvents(ctxT(t), tc.f)
		mustNil(t, err, tc.name)
		if g := ids(got, eventID); !slices.Equal(g, tc.want) {
			t.Fatalf("%s: got %v, want %v", tc.name, g, tc.want)
		}
		for _, e := range got {
			equal(t, e, byID[e.ID], tc.name+": event "+e.ID)
		}
	}

	auto := store.Event{Type: "logout", Time: at(6 * time.Minute)}
	mustNil(t, db.InsertEvent(ctxT(t), &auto), "event without id")
	if auto.ID == "" {
		t.Fatal("InsertEvent did not fill in the id")
	}
	auto2 := store.Event{Type: "logout", Time: at(6 * time.Minute)}
	mustNil(t, db.InsertEvent(ctxT(t), &auto2), "second event without id")
	if auto2.ID == auto.ID {
		t.Fatal("generated event ids collide")
	}
	dup := store.Event{ID: "e1", Type: "logout", Time: t0}
	mustIs(t, db.InsertEvent(ctxT(t), &dup), store.ErrConflict, "duplicate id")
	for name, e := range map[string]*store.Event{"nil": nil, "no type": {ID: "x", Time: t0}} {
		if err := db.InsertEvent(ctxT(t), e); err == nil || errors.Is(err, store.ErrConflict) {
			t.Fatalf("%s: got %v, want a validation error", name, err)
		}
	}
}

func testEventsLimitCap(t *testing.T, db *store.DB) {
	const n = 1001
	for i := range n {
		e := store.Event{ID: fmt.Sprintf("e%04d", i), Type: "t", Time: at(time.Duration(i) * time.Second)}
		mustNil(t, db.InsertEvent(ctxT(t), &e), "insert")
	}
	got, err := db.ListEvents(ctxT(t), store.EventFilter{Limit: 1_000_000})
	mustNil(t, err, "list")
	if len(got) != 1000 || got[0].ID != "e1000" {
		t.Fatalf("huge limit: got %d events starting at %q, want the newest 1000", len(got), got[0].ID)
	}
	got, err = db.ListEvents(ctxT(t), store.EventFilter{Limit: -1})
	mustNil(t, err, "list")
	if len(got) != 100 {
		t.Fatalf("negative limit: got %d events, want 100", len(got))
	}
}

func testThrottle(t *testing.T, db *store.DB) {
	type step struct {
		op        string // hit, peek, reset
		key       string
		now       time.Time
		window    time.Duration
		wantCount int64
		wantReset time.Time
	}
	m := time.Minute
	steps := []step{
		{"peek", "acct:u1", t0, 0, 0, time.Time{}},
		{"hit", "acct:u1", t0, m, 1, at(m)},
		{"hit", "acct:u1", at(30 * time.Second), m, 2, at(m)},
		{"hit", "acct:u1", at(59 * time.Second), 10 * m, 3, at(m)}, // the window is fixed when it opens
		{"peek", "acct:u1", at(59 * time.Second), 0, 3, at(m)},
		{"hit", "ip:192.0.2.1", at(30 * time.Second), m, 1, at(90 * time.Second)}, // keys are independent
		{"peek", "acct:u1", at(m), 0, 0, time.Time{}},                             // window ended at reset time
		{"hit", "acct:u1", at(m), m, 1, at(2 * m)},                                // a new window opens at now
		{"hit", "acct:u1", at(m + time.Microsecond), m, 2, at(2 * m)},
		{"reset", "acct:u1", t0, 0, 0, time.Time{}},
		{"peek", "acct:u1", at(m), 0, 0, time.Time{}},
		{"hit", "acct:u1", at(m + 2*time.Microsecond), m, 1, at(2*m + 2*time.Microsecond)},
		{"peek", "ip:192.0.2.1", at(m), 0, 1, at(90 * time.Second)},
		{"reset", "never-seen", t0, 0, 0, time.Time{}},
		{"hit", "'; DELETE FROM throttles; --", t0, m, 1, at(m)},
		{"peek", "ip:192.0.2.1", at(m), 0, 1, at(90 * time.Second)},
	}
	for i, st := range steps {
		var (
			count int64
			reset time.Time
			err   error
		)
		switch st.op {
		case "hit":
			count, reset, err = db.Hit(ctxT(t), st.key, st.window, st.now)
		case "peek":
			count, reset, err = db.Peek(ctxT(t), st.key, st.now)
		case "reset":
			err = db.ResetThrottle(ctxT(t), st.key)
		}
		mustNil(t, err, fmt.Sprintf("step %d (%s %s)", i, st.op, st.key))
		if count != st.wantCount || !reset.Equal(st.wantReset) {
			t.Fatalf("step %d (%s %s at %v): got %d, %v; want %d, %v", i, st.op, st.key, st.now, count, reset, st.wantCount, st.wantReset)
		}
	}
	for _, w := range []time.Duration{0, -time.Second} {
		if _, _, err := db.Hit(ctxT(t), "k", w, t0); err == nil {
			t.Fatalf("window %v: no error", w)
		}
	}
}

// Fifty failed logins at once against one account: every one is counted, each
// sees a distinct count.
func testThrottleRace(t *testing.T, db *store.DB) {
	const n = 50
	counts := make([]int64, n)
	errs := race(n, func(i int) error {
		var err error
		counts[i], _, err = db.Hit(ctxT(t), "acct:victim", time.Hour, at(time.Second))
		return err
	})
	for i, err := range errs {
		mustNil(t, err, fmt.Sprintf("hit %d", i))
	}
	slices.Sort(counts)
	for i, c := range counts {
		if c != int64(i+1) {
			t.Fatalf("counts %v, want exactly 1..%d", counts, n)
		}
	}
	c, reset, err := db.Peek(ctxT(t), "acct:victim", at(time.Second))
	mustNil(t, err, "peek")
	if c != n || !reset.Equal(at(time.Hour+time.Second)) {
		t.Fatalf("peek: %d, %v; want %d, %v", c, reset, n, at(time.Hour+time.Second))
	}
}

func testForgive(t *testing.T, db *store.DB) {
	m := time.Minute
	mustNil(t, db.Forgive(ctxT(t), "never-seen", t0), "forgive a key without a counter")
	for range 2 {
		_, _, err := db.Hit(ctxT(t), "ip:192.0.2.9", m, t0)
		mustNil(t, err, "hit")
	}
	peek := func(now time.Time, want int64, what string) {
		t.Helper()
		c, _, err := db.Peek(ctxT(t), "ip:192.0.2.9", now)
		mustNil(t, err, what)
		if c != want {
			t.Fatalf("%s: count %d, want %d", what, c, want)
		}
	}
	mustNil(t, db.Forgive(ctxT(t), "ip:192.0.2.9", at(time.Second)), "forgive")
	peek(at(time.Second), 1, "after one forgiveness")
	mustNil(t, db.Forgive(ctxT(t), "ip:192.0.2.9", at(time.Second)), "forgive")
	mustNil(t, db.Forgive(ctxT(t), "ip:192.0.2.9", at(time.Second)), "forgive at zero")
	peek(at(time.Second), 0, "never below zero")
	c, reset, err := db.Hit(ctxT(t), "ip:192.0.2.9", m, at(2*time.Second))
	mustNil(t, err, "hit after forgiveness")
	if c != 1 || !reset.Equal(at(m)) {
		t.Fatalf("hit after forgiveness: %d, %v; want 1 in the same window", c, reset)
	}
	// An ended window is left alone: the next hit starts a new one.
	mustNil(t, db.Forgive(ctxT(t), "ip:192.0.2.9", at(m)), "forgive after the window")
	c, _, err = db.Hit(ctxT(t), "ip:192.0.2.9", m, at(m))
	mustNil(t, err, "hit in a new window")
	if c != 1 {
		t.Fatalf("hit in a new window: %d, want 1", c)
	}
	// Concurrent forgiveness never goes below zero.
	for range 3 {
		_, _, err := db.Hit(ctxT(t), "acct:u1", m, t0)
		mustNil(t, err, "hit")
	}
	for i, err := range race(10, func(int) error { return db.Forgive(ctxT(t), "acct:u1", t0) }) {
		mustNil(t, err, fmt.Sprintf("forgive %d", i))
	}
	c, _, err = db.Peek(ctxT(t), "acct:u1", t0)
	mustNil(t, err, "peek")
	if c != 0 {
		t.Fatalf("after racing forgiveness: %d, want 0", c)
	}
}

func testRevokedSince(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	createUser(t, db, "rs-user")
	for i, id := range []string{"rs-a", "rs-b", "rs-c"} {
		createSession(t, db, id, "rs-user", at(0))
		if i < 2 {
			_, err := db.RevokeSession(ctx, id, "logout", at(time.Duration(i+1)*time.Minute))
			mustNil(t, err, "revoke")
		}
	}
	got, err := db.RevokedSince(ctx, at(0), 0)
	mustNil(t, err, "revoked since")
	equal(t, len(got), 2, "revoked count")
	equal(t, got[0].ID, "rs-a", "oldest first")
	equal(t, got[1].RevokedAt, norm(at(2*time.Minute)), "revoked at")
	got, err = db.RevokedSince(ctx, at(90*time.Second), 0)
	mustNil(t, err, "revoked since later")
	equal(t, len(got), 1, "only the later revocation")
	equal(t, got[0].ID, "rs-b", "later id")
	got, err = db.RevokedSince(ctx, at(0), 1)
	mustNil(t, err, "limit")
	equal(t, len(got), 1, "limit 1")
}
