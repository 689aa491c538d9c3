package store_test

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func t0() time.Time { return time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC) }

func mustCreate(t *testing.T, db *store.DB) {
	t.Helper()
	u := store.User{ID: "u1", EmailIndex: []byte("i1"), CreatedAt: t0(), UpdatedAt: t0()}
	if err := db.CreateUser(t.Context(), &u); err != nil {
		t.Fatalf("create user: %v", err)
	}
}
