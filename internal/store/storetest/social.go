package storetest

import (
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// testCreateUserWithIdentity: the account and its provider link are written
// together or not at all.
func testCreateUserWithIdentity(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	u := newUser("s1")
	u.PasswordHash = ""
	i := store.Identity{Provider: "google", Subject: "sub-1", CreatedAt: t0}
	mustNil(t, db.CreateUserWithIdentity(ctx, &u, &i), "create")
	equal(t, i.UserID, "s1", "link user id")
	got, err := db.IdentityByProvider(ctx, "google", "sub-1")
	mustNil(t, err, "link")
	equal(t, *got, i, "link round trip")
	gu, err := db.UserByID(ctx, "s1")
	mustNil(t, err, "user")
	equal(t, gu.PasswordHash, "", "no password")

	// The provider account is linked already: no second user appears.
	u2 := newUser("s2")
	u2.EmailIndex = []byte("another-index")
	mustIs(t, db.CreateUserWithIdentity(ctx, &u2, &store.Identity{Provider: "google", Subject: "sub-1", CreatedAt: t0}), store.ErrConflict, "linked twice")
	_, err = db.UserByID(ctx, "s2")
	mustIs(t, err, store.ErrNotFound, "user of a failed link")

	// The email is taken: no link appears.
	u3 := newUser("s3")
	u3.EmailIndex = u.EmailIndex
	mustIs(t, db.CreateUserWithIdentity(ctx, &u3, &store.Identity{Provider: "google", Subject: "sub-3", CreatedAt: t0}), store.ErrConflict, "email taken")
	_, err = db.IdentityByProvider(ctx, "google", "sub-3")
	mustIs(t, err, store.ErrNotFound, "link of a failed user")

	for _, bad := range []store.Identity{{Subject: "x"}, {Provider: "p"}} {
		u4 := newUser("s4")
		if err := db.CreateUserWithIdentity(ctx, &u4, &bad); err == nil {
			t.Fatalf("bad identity %+v accepted", bad)
		}
	}
}
