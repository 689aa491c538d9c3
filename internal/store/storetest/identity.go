package storetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func testCodes(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	c := store.Code{ID: "h1", Kind: store.CodeMFA, UserID: "u1", Data: []byte(`{"amr":["pwd"]}`), MaxAttempts: 2, CreatedAt: t0, ExpiresAt: at(5 * time.Minute)}
	mustNil(t, db.CreateCode(ctx, &c), "create")
	mustIs(t, db.CreateCode(ctx, &c), store.ErrConflict, "duplicate")
	for _, bad := range []store.Code{
		{Kind: store.CodeMFA, MaxAttempts: 1, CreatedAt: t0, ExpiresAt: at(time.Minute)},
		{ID: "x", Kind: store.CodeMFA, MaxAttempts: 0, CreatedAt: t0, ExpiresAt: at(time.Minute)},
		{ID: "x", Kind: store.CodeMFA, MaxAttempts: 1, CreatedAt: t0, ExpiresAt: t0},
	} {
		if err := db.CreateCode(ctx, &bad); err == nil {
			t.Fatalf("bad code %+v accepted", bad)
		}
	}
	got, err := db.Code(ctx, "h1")
	mustNil(t, err, "get")
	equal(t, *got, c, "round trip")

	_, err = db.AttemptCode(ctx, store.CodeEmailVerify, "h1", at(time.Minute))
	mustIs(t, err, store.ErrNotFound, "attempt as another kind")
	got, err = db.AttemptCode(ctx, store.CodeMFA, "h1", at(time.Minute))
	mustNil(t, err, "attempt 1")
	equal(t, got.Attempts, 1, "attempts after 1")
	_, err = db.AttemptCode(ctx, store.CodeMFA, "h1", at(5*time.Minute))
	mustIs(t, err, store.ErrNotFound, "attempt at expiry")
	_, err = db.AttemptCode(ctx, store.CodeMFA, "h1", at(time.Minute))
	mustNil(t, err, "attempt 2")
	_, err = db.AttemptCode(ctx, store.CodeMFA, "h1", at(time.Minute))
	mustIs(t, err, store.ErrNotFound, "attempt 3 exhausted")

	_, err = db.UseCode(ctx, store.CodeEmailVerify, "h1", at(time.Minute))
	mustIs(t, err, store.ErrNotFound, "use as another kind")
	used, err := db.UseCode(ctx, store.CodeMFA, "h1", at(time.Minute))
	mustNil(t, err, "use")
	if used.UsedAt == nil || !used.UsedAt.Equal(at(time.Minute)) || string(used.Data) != string(c.Data) {
		t.Fatalf("used code: %+v", used)
	}
	_, err = db.UseCode(ctx, store.CodeMFA, "h1", at(time.Minute))
	mustIs(t, err, store.ErrNotFound, "second use")

	// LatestCode: newest live code for a subject.
	subj := []byte{1, 2, 3}
	for i, id := range []string{"r1", "r2"} {
		mustNil(t, db.CreateCode(ctx, &store.Code{ID: id, Kind: store.CodePasswordReset, UserID: "u1", Subject: subj, MaxAttempts: 5,
			CreatedAt: at(time.Duration(i) * time.Minute), ExpiresAt: at(15 * time.Minute)}), "create "+id)
	}
	l, err := db.LatestCode(ctx, store.CodePasswordReset, subj, at(2*time.Minute))
	mustNil(t, err, "latest")
	equal(t, l.ID, "r2", "latest id")
	_, err = db.LatestCode(ctx, store.CodePasswordReset, subj, at(15*time.Minute))
	mustIs(t, err, store.ErrNotFound, "latest after expiry")
	_, err = db.LatestCode(ctx, store.CodeEmailVerify, subj, at(2*time.Minute))
	mustIs(t, err, store.ErrNotFound, "latest of another kind")
	n, err := db.DeleteCodes(ctx, "u1", store.CodePasswordReset)
	mustNil(t, err, "delete codes")
	equal(t, n, int64(2), "deleted")

	mustNil(t, db.CreateCode(ctx, &store.Code{ID: "old", Kind: store.CodeOIDCState, MaxAttempts: 1, CreatedAt: t0, ExpiresAt: at(time.Minute)}), "create old")
	n, err = db.PurgeCodes(ctx, at(time.Hour))
	mustNil(t, err, "purge")
	equal(t, n, int64(2), "purged h1 and old")
}

// testCodeRace: N parallel attempts on a code with k attempts left succeed
// exactly k times, and N parallel uses succeed once.
func testCodeRace(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	mustNil(t, db.CreateCode(ctx, &store.Code{ID: "race", Kind: store.CodeMFA, MaxAttempts: 5, CreatedAt: t0, ExpiresAt: at(time.Hour)}), "create")
	var attempts, uses atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := db.AttemptCode(ctx, store.CodeMFA, "race", at(time.Minute)); err == nil {
				attempts.Add(1)
			}
			if _, err := db.UseCode(ctx, store.CodeMFA, "race", at(time.Minute)); err == nil {
				uses.Add(1)
			}
		})
	}
	wg.Wait()
	if attempts.Load() > 5 || uses.Load() != 1 {
		t.Fatalf("attempts %d (want at most 5), uses %d (want 1)", attempts.Load(), uses.Load())
	}
}

func testRecoveryCodes(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	createUser(t, db, "u1")
	mustNil(t, db.ReplaceRecoveryCodes(ctx, "u1", [][]byte{{1}, {2}, {3}}, t0), "replace")
	n, err := db.CountRecoveryCodes(ctx, "u1")
	mustNil(t, err, "count")
	equal(t, n, 3, "count")
	ok, err := db.UseRecoveryCode(ctx, "u1", []byte{2}, at(time.Minute))
	mustNil(t, err, "use")
	equal(t, ok, true, "first use")
	ok, _ = db.UseRecoveryCode(ctx, "u1", []byte{2}, at(time.Minute))
	equal(t, ok, false, "second use")
	ok, _ = db.UseRecoveryCode(ctx, "u1", []byte{9}, at(time.Minute))
	equal(t, ok, false, "unknown code")
	n, _ = db.CountRecoveryCodes(ctx, "u1")
	equal(t, n, 2, "count after use")
	mustNil(t, db.ReplaceRecoveryCodes(ctx, "u1", [][]byte{{4}}, at(time.Hour)), "regenerate")
	ok, _ = db.UseRecoveryCode(ctx, "u1", []byte{1}, at(time.Hour))
	equal(t, ok, false, "old code after regeneration")
	mustIs(t, db.ReplaceRecoveryCodes(ctx, "ghost", [][]byte{{1}}, t0), store.ErrNotFound, "unknown user")
	mustNil(t, db.DeleteRecoveryCodes(ctx, "u1"), "delete")
	n, _ = db.CountRecoveryCodes(ctx, "u1")
	equal(t, n, 0, "count after delete")
}

func testSecretCounter(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	createUser(t, db, "u1")
	mustNil(t, db.PutUserSecret(ctx, &store.UserSecret{UserID: "u1", Kind: store.SecretTOTP, Purpose: "totp_secret", Sealed: []byte("s"), CreatedAt: t0, UpdatedAt: t0}), "put")
	ok, err := db.AdvanceSecretCounter(ctx, "u1", store.SecretTOTP, 100, at(time.Minute))
	mustNil(t, err, "advance")
	equal(t, ok, true, "advance to 100")
	ok, _ = db.AdvanceSecretCounter(ctx, "u1", store.SecretTOTP, 100, at(time.Minute))
	equal(t, ok, false, "same step again")
	ok, _ = db.AdvanceSecretCounter(ctx, "u1", store.SecretTOTP, 99, at(time.Minute))
	equal(t, ok, false, "earlier step")
	s, _ := db.UserSecret(ctx, "u1", store.SecretTOTP)
	equal(t, s.Counter, int64(100), "counter kept")
	_, err = db.AdvanceSecretCounter(ctx, "u1", "other", 1, t0)
	mustIs(t, err, store.ErrNotFound, "no such secret")
	var wins atomic.Int64
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if ok, err := db.AdvanceSecretCounter(ctx, "u1", store.SecretTOTP, 101, at(time.Minute)); err == nil && ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	equal(t, wins.Load(), int64(1), "parallel advance to the same step")
}

func testWebAuthnCredentials(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	createUser(t, db, "u1")
	createUser(t, db, "u2")
	c := store.WebAuthnCredential{ID: "cred-1", UserID: "u1", Name: "phone", Credential: []byte(`{"k":1}`), SignCount: 0, CreatedAt: t0}
	mustNil(t, db.CreateWebAuthnCredential(ctx, &c), "create")
	dup := c
	dup.UserID = "u2"
	mustIs(t, db.CreateWebAuthnCredential(ctx, &dup), store.ErrConflict, "same credential id for another user")
	mustIs(t, db.CreateWebAuthnCredential(ctx, &store.WebAuthnCredential{ID: "c2", UserID: "ghost", Credential: []byte("x"), CreatedAt: t0}), store.ErrNotFound, "unknown user")
	got, err := db.WebAuthnCredentialByID(ctx, "cred-1")
	mustNil(t, err, "get")
	equal(t, *got, c, "round trip")
	ok, err := db.UpdateWebAuthnUse(ctx, "cred-1", 0, 5, []byte(`{"k":2}`), at(time.Minute))
	mustNil(t, err, "use")
	equal(t, ok, true, "cas from 0")
	ok, _ = db.UpdateWebAuthnUse(ctx, "cred-1", 0, 6, []byte(`{"k":3}`), at(time.Minute))
	equal(t, ok, false, "stale cas")
	got, _ = db.WebAuthnCredentialByID(ctx, "cred-1")
	if got.SignCount != 5 || string(got.Credential) != `{"k":2}` || got.LastUsedAt == nil {
		t.Fatalf("after use: %+v", got)
	}
	mustNil(t, db.CreateWebAuthnCredential(ctx, &store.WebAuthnCredential{ID: "cred-2", UserID: "u1", Credential: []byte("x"), CreatedAt: at(time.Hour)}), "second")
	l, err := db.ListWebAuthnCredentials(ctx, "u1")
	mustNil(t, err, "list")
	equal(t, len(l), 2, "listed")
	equal(t, l[0].ID, "cred-1", "oldest first")
	mustIs(t, db.DeleteWebAuthnCredential(ctx, "u2", "cred-1"), store.ErrNotFound, "delete someone else's")
	mustNil(t, db.DeleteWebAuthnCredential(ctx, "u1", "cred-1"), "delete")
	_, err = db.WebAuthnCredentialByID(ctx, "cred-1")
	mustIs(t, err, store.ErrNotFound, "deleted")
}

func testIdentities(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	createUser(t, db, "u1")
	i := store.Identity{Provider: "google", Subject: "1234", UserID: "u1", CreatedAt: t0}
	mustNil(t, db.LinkIdentity(ctx, &i), "link")
	mustIs(t, db.LinkIdentity(ctx, &i), store.ErrConflict, "link twice")
	mustIs(t, db.LinkIdentity(ctx, &store.Identity{Provider: "google", Subject: "9", UserID: "ghost", CreatedAt: t0}), store.ErrNotFound, "unknown user")
	got, err := db.IdentityByProvider(ctx, "google", "1234")
	mustNil(t, err, "get")
	equal(t, *got, i, "round trip")
	_, err = db.IdentityByProvider(ctx, "apple", "1234")
	mustIs(t, err, store.ErrNotFound, "other provider")
	l, err := db.ListIdentities(ctx, "u1")
	mustNil(t, err, "list")
	equal(t, len(l), 1, "listed")
}
