package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func banID(b store.Ban) string { return b.ID }

func testBans(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	got, err := db.ActiveBans(ctx, at(0), 0)
	mustNil(t, err, "no bans")
	if len(got) != 0 {
		t.Fatalf("no bans: got %d", len(got))
	}
	bans := []store.Ban{
		{ID: "b1", Kind: store.BanIP, Value: "192.0.2.7", Reason: "brute force", Source: "detector:brute_force_ip", CreatedAt: at(0), ExpiresAt: at(15 * time.Minute)},
		{ID: "b2", Kind: store.BanUser, Value: "u1", Source: "cli", CreatedAt: at(time.Minute), ExpiresAt: at(2 * time.Minute)},
		{ID: "b3", Kind: store.BanSession, Value: "s1", Reason: `'; DROP TABLE bans; --`, CreatedAt: at(2 * time.Minute), ExpiresAt: at(time.Hour)},
	}
	for i := range bans {
		mustNil(t, db.InsertBan(ctx, &bans[i]), "insert "+bans[i].ID)
	}
	dup := bans[0]
	mustIs(t, db.InsertBan(ctx, &dup), store.ErrConflict, "duplicate id")

	for _, bad := range []store.Ban{
		{Kind: "country", Value: "x", CreatedAt: at(0), ExpiresAt: at(time.Minute)},
		{Kind: store.BanIP, Value: "", CreatedAt: at(0), ExpiresAt: at(time.Minute)},
		{Kind: store.BanIP, Value: strings.Repeat("a", 257), CreatedAt: at(0), ExpiresAt: at(time.Minute)},
		{Kind: store.BanIP, Value: "192.0.2.1", CreatedAt: at(time.Minute), ExpiresAt: at(time.Minute)},
	} {
		if err := db.InsertBan(ctx, &bad); err == nil {
			t.Fatalf("bad ban %+v accepted", bad)
		}
	}
	auto := store.Ban{Kind: store.BanIP, Value: "2001:db8::1", CreatedAt: at(3 * time.Minute), ExpiresAt: at(4 * time.Minute)}
	mustNil(t, db.InsertBan(ctx, &auto), "ban without id")
	if auto.ID == "" || !auto.UpdatedAt.Equal(auto.CreatedAt) {
		t.Fatalf("InsertBan did not fill in id/updated_at: %+v", auto)
	}

	cases := []struct {
		name string
		now  time.Time
		want []string
	}{
		{"at start", at(0), []string{"b1"}},
		{"all four", at(3*time.Minute + time.Second), []string{auto.ID, "b3", "b1"}},
		{"expiry is exclusive", at(2 * time.Minute), []string{"b3", "b1"}},
		{"later", at(20 * time.Minute), []string{"b3"}},
	}
	for _, tc := range cases {
		got, err := db.ActiveBans(ctx, tc.now, 0)
		mustNil(t, err, tc.name)
		if g := ids(got, banID); !slices.Equal(g, tc.want) {
			t.Fatalf("%s: got %v, want %v", tc.name, g, tc.want)
		}
	}
	b, err := db.GetBan(ctx, "b3")
	mustNil(t, err, "get")
	want := bans[2]
	want.CreatedAt, want.ExpiresAt, want.UpdatedAt = norm(want.CreatedAt), norm(want.ExpiresAt), norm(want.CreatedAt)
	equal(t, *b, want, "get b3")
	_, err = db.GetBan(ctx, "nope")
	mustIs(t, err, store.ErrNotFound, "get unknown")

	lifted, err := db.LiftBan(ctx, "b1", at(5*time.Minute))
	mustNil(t, err, "lift")
	if lifted.LiftedAt == nil || !lifted.LiftedAt.Equal(norm(at(5*time.Minute))) || !lifted.UpdatedAt.Equal(norm(at(5*time.Minute))) || lifted.Active(at(6*time.Minute)) {
		t.Fatalf("lifted ban: %+v", lifted)
	}
	_, err = db.LiftBan(ctx, "b1", at(6*time.Minute))
	mustIs(t, err, store.ErrNotFound, "lift twice")
	_, err = db.LiftBan(ctx, "nope", at(6*time.Minute))
	mustIs(t, err, store.ErrNotFound, "lift unknown")

	changed, err := db.BansChangedSince(ctx, at(2*time.Minute), 0)
	mustNil(t, err, "changed since")
	if g := ids(changed, banID); !slices.Equal(g, []string{"b3", auto.ID, "b1"}) {
		t.Fatalf("changed since: got %v", g)
	}
	changed, err = db.BansChangedSince(ctx, at(0), 2)
	mustNil(t, err, "changed since, limited")
	if g := ids(changed, banID); !slices.Equal(g, []string{"b2", "b3"}) {
		t.Fatalf("changed since, limited: got %v", g)
	}

	n, err := db.PurgeBans(ctx, at(10*time.Minute))
	mustNil(t, err, "purge")
	if n != 3 { // b1 lifted at 5m, b2 expired at 2m, auto expired at 4m
		t.Fatalf("purged %d, want 3", n)
	}
	all, err := db.BansChangedSince(ctx, time.Time{}, 0)
	mustNil(t, err, "after purge")
	if g := ids(all, banID); !slices.Equal(g, []string{"b3"}) {
		t.Fatalf("after purge: got %v", g)
	}
}

func testQueryEvents(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	all := []store.Event{
		{ID: "e1", Type: "login_failed", Time: at(time.Minute), UserID: "u1", IP: "192.0.2.1"},
		{ID: "e2", Type: "login_failed", Time: at(2 * time.Minute), UserID: "u2", IP: "192.0.2.1", SessionID: "s9"},
		{ID: "e3", Type: "ban_created", Time: at(3 * time.Minute), IP: "192.0.2.2"},
	}
	for i := range all {
		mustNil(t, db.InsertEvent(ctx, &all[i]), all[i].ID)
	}
	cases := []struct {
		name string
		q    store.EventQuery
		want []string
	}{
		{"all", store.EventQuery{}, []string{"e3", "e2", "e1"}},
		{"by ip", store.EventQuery{IP: "192.0.2.1"}, []string{"e2", "e1"}},
		{"by session", store.EventQuery{SessionID: "s9"}, []string{"e2"}},
		{"ip and user", store.EventQuery{IP: "192.0.2.1", UserID: "u1"}, []string{"e1"}},
		{"type", store.EventQuery{Type: "ban_created"}, []string{"e3"}},
		{"page", store.EventQuery{Before: at(3 * time.Minute), Limit: 1}, []string{"e2"}},
		{"hostile", store.EventQuery{IP: "' OR 1=1 --"}, nil},
	}
	for _, tc := range cases {
		got, err := db.QueryEvents(ctx, tc.q)
		mustNil(t, err, tc.name)
		if g := ids(got, eventID); !slices.Equal(g, tc.want) {
			t.Fatalf("%s: got %v, want %v", tc.name, g, tc.want)
		}
	}
}
