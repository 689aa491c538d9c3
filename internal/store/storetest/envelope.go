package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// fakeSealer is a transparent stand-in for the envelope keyring: its "sealed"
// form names the purpose and binding, so tests can see both and a value opened
// under another binding fails, as it must with the real one.
type fakeSealer struct{}

var errFakeOpen = errors.New("fake: does not open")

func fakeBinding(purpose string, aad []string) string {
	return "SEALED[" + purpose + "|" + strings.Join(aad, "|") + "]"
}

func (fakeSealer) Seal(purpose string, pt []byte, aad ...string) ([]byte, error) {
	// Reversed so the plaintext never appears as such in the row.
	r := bytes.Clone(pt)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return append([]byte(fakeBinding(purpose, aad)), r...), nil
}

func (fakeSealer) Open(purpose string, sealed []byte, aad ...string) ([]byte, error) {
	rest, ok := bytes.CutPrefix(sealed, []byte(fakeBinding(purpose, aad)))
	if !ok {
		return nil, errFakeOpen
	}
	r := bytes.Clone(rest)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return r, nil
}

func (fakeSealer) Index(purpose string, v []byte) []byte {
	h := sha256.Sum256(append([]byte(purpose+"\x00"), v...))
	return h[:]
}

func dataKey(id, kind, purpose, state string) store.DataKey {
	return store.DataKey{ID: id, Kind: kind, Purpose: purpose, State: state, Wrapped: []byte("wrapped-" + id), KEKID: "kek1", CreatedAt: t0}
}

func dataKeyStates(t *testing.T, db *store.DB) map[string]string {
	t.Helper()
	ks, err := db.DataKeys(ctxT(t))
	mustNil(t, err, "data keys")
	m := map[string]string{}
	for _, k := range ks {
		m[k.ID] = k.State + "/" + k.KEKID
	}
	return m
}

func testDataKeys(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	a := dataKey("a1", store.DataKeySeal, "email", store.DataKeyActive)
	ix := dataKey("i1", store.DataKeyIndex, "email", store.DataKeyActive)
	mustNil(t, db.AddDataKeys(ctx, nil, []store.DataKey{a, ix}, t0), "add")
	ks, err := db.DataKeys(ctx)
	mustNil(t, err, "list")
	equal(t, len(ks), 2, "count")
	equal(t, ks[0].Wrapped, a.Wrapped, "wrapped round trip")
	equal(t, ks[0].CreatedAt, t0, "created")

	// A second active seal key for the purpose conflicts; nothing is written.
	mustIs(t, db.AddDataKeys(ctx, nil, []store.DataKey{dataKey("a2", store.DataKeySeal, "email", store.DataKeyActive)}, t0), store.ErrConflict, "two active")
	// Retire and add together.
	mustNil(t, db.AddDataKeys(ctx, []string{"a1"}, []store.DataKey{dataKey("a2", store.DataKeySeal, "email", store.DataKeyActive)}, at(time.Hour)), "rotate")
	equal(t, dataKeyStates(t, db), map[string]string{"a1": "retired/kek1", "a2": "active/kek1", "i1": "active/kek1"}, "after rotate")
	ks, _ = db.DataKeys(ctx)
	for _, k := range ks {
		if k.ID == "a1" && (k.RetiredAt == nil || !k.RetiredAt.Equal(at(time.Hour))) {
			t.Fatalf("retired_at %v", k.RetiredAt)
		}
	}
	// Retiring a key that is not active (a lost race) changes nothing.
	before := dataKeyStates(t, db)
	mustIs(t, db.AddDataKeys(ctx, []string{"a1"}, []store.DataKey{dataKey("a3", store.DataKeySeal, "email", store.DataKeyRetired)}, t0), store.ErrConflict, "retire retired")
	equal(t, dataKeyStates(t, db), before, "unchanged after conflict")

	for _, bad := range []store.DataKey{
		{ID: "x", Kind: "seal", Purpose: "p", State: "active", KEKID: "k"},                        // no material
		{ID: "x", Kind: "nope", Purpose: "p", State: "active", KEKID: "k", Wrapped: []byte{1}},    // kind
		{ID: "x", Kind: "seal", Purpose: "p", State: "destroyed", KEKID: "k", Wrapped: []byte{1}}, // state
		{ID: "", Kind: "seal", Purpose: "p", State: "active", KEKID: "k", Wrapped: []byte{1}},     // id
		{ID: "x", Kind: "seal", Purpose: "p", State: "active", KEKID: "", Wrapped: []byte{1}},     // kek
	} {
		if err := db.AddDataKeys(ctx, nil, []store.DataKey{bad}, t0); err == nil || errors.Is(err, store.ErrConflict) {
			t.Errorf("invalid key %+v: %v", bad, err)
		}
	}

	// Rewrap is all or nothing, conditional on the old kek.
	mustIs(t, db.RewrapDataKeys(ctx, []store.Rewrap{
		{ID: "a1", OldKEKID: "kek1", Wrapped: []byte("w2"), KEKID: "kek2"},
		{ID: "a2", OldKEKID: "kekX", Wrapped: []byte("w2"), KEKID: "kek2"},
	}), store.ErrConflict, "rewrap stale")
	equal(t, dataKeyStates(t, db), before, "unchanged after failed rewrap")
	var all []store.Rewrap
	for id := range before {
		all = append(all, store.Rewrap{ID: id, OldKEKID: "kek1", Wrapped: []byte("w-" + id), KEKID: "kek2"})
	}
	mustNil(t, db.RewrapDataKeys(ctx, all), "rewrap")
	ks, _ = db.DataKeys(ctx)
	for _, k := range ks {
		if k.KEKID != "kek2" || string(k.Wrapped) != "w-"+k.ID {
			t.Fatalf("rewrapped %+v", k)
		}
	}
	mustIs(t, db.RewrapDataKeys(ctx, []store.Rewrap{{ID: "missing", OldKEKID: "kek2", Wrapped: []byte("w"), KEKID: "k3"}}), store.ErrConflict, "rewrap missing")
}

func testFieldSealing(t *testing.T, plain *store.DB) {
	ctx := ctxT(t)
	db := plain.WithFieldSealer(fakeSealer{})
	createUser(t, db, "u1")
	s, _ := createSession(t, db, "s1", "u1", t0)
	got, err := db.SessionByID(ctx, "s1")
	mustNil(t, err, "session by id")
	equal(t, normSession(*got), normSession(s), "sealed session round trip")
	_, gs, err := db.RefreshToken(ctx, []byte("hash-s1-1"))
	mustNil(t, err, "refresh token")
	equal(t, gs.IP+gs.UserAgent, s.IP+s.UserAgent, "session via refresh token")
	ls, err := db.ListSessions(ctx, "u1", t0)
	mustNil(t, err, "list sessions")
	equal(t, len(ls) == 1 && ls[0].IP == s.IP, true, "list sessions opens")

	vs, _, err := db.ScanSealed(ctx, "sessions.ip", "", 0)
	mustNil(t, err, "scan")
	if len(vs) != 1 || vs[0].Plain != "" || !bytes.HasPrefix(vs[0].Sealed, []byte(fakeBinding(store.PurposeSessionIP, []string{"sessions", "ip", "s1"}))) {
		t.Fatalf("stored session ip %+v", vs)
	}
	// A store without the sealer refuses to return a sealed field as empty.
	if _, err := plain.SessionByID(ctx, "s1"); err == nil {
		t.Fatal("a DB without a sealer read a sealed session")
	}

	// Events: sealed IP, found by blind index; a plaintext row from before
	// sealing is still found by IP.
	mustNil(t, db.InsertEvent(ctx, &store.Event{ID: "e1", Type: "t", Time: t0, IP: "198.51.100.1"}), "insert sealed")
	mustNil(t, plain.InsertEvent(ctx, &store.Event{ID: "e2", Type: "t", Time: at(time.Second), IP: "198.51.100.1"}), "insert plain")
	mustNil(t, db.InsertEvent(ctx, &store.Event{ID: "e3", Type: "t", Time: at(2 * time.Second), IP: "198.51.100.2"}), "insert other")
	evs, err := db.QueryEvents(ctx, store.EventQuery{IP: "198.51.100.1"})
	mustNil(t, err, "query by ip")
	equal(t, ids(evs, eventID), []string{"e2", "e1"}, "events by ip")
	equal(t, evs[1].IP, "198.51.100.1", "sealed ip opened")
	all, err := db.ListEvents(ctx, store.EventFilter{})
	mustNil(t, err, "list events")
	equal(t, len(all), 3, "all events")
	ev, _, err := db.ScanSealed(ctx, "events.ip", "", 0)
	mustNil(t, err, "scan events")
	for _, v := range ev {
		if (v.RowID == "e2") != (len(v.Sealed) == 0) {
			t.Fatalf("event %s sealed=%x plain=%q", v.RowID, v.Sealed, v.Plain)
		}
	}
	if _, _, err := db.ScanSealed(ctx, "users.nope", "", 0); err == nil {
		t.Fatal("unknown field scanned")
	}

	// Throttle counters are kept under a blind index of their key (keys carry
	// IPs): counting is unchanged, and the plaintext key is not in the table.
	key := "login:ip:198.51.100.1"
	for want := int64(1); want <= 2; want++ {
		n, _, err := db.Hit(ctx, key, time.Minute, t0)
		mustNil(t, err, "hit")
		equal(t, n, want, "hit count")
	}
	mustNil(t, db.Forgive(ctx, key, t0), "forgive")
	n, _, err := db.Peek(ctx, key, t0)
	mustNil(t, err, "peek")
	equal(t, n, int64(1), "after forgive")
	n, _, _ = plain.Peek(ctx, key, t0)
	equal(t, n, int64(0), "no counter under the plaintext key")
	mustNil(t, db.ResetThrottle(ctx, key), "reset")
	n, _, _ = db.Peek(ctx, key, t0)
	equal(t, n, int64(0), "after reset")
}

func testUserSecrets(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	createUser(t, db, "u1")
	s := store.UserSecret{UserID: "u1", Kind: store.SecretTOTP, Purpose: "totp_secret", Sealed: []byte("s1"), CreatedAt: t0, UpdatedAt: t0}
	mustNil(t, db.PutUserSecret(ctx, &s), "put")
	got, err := db.UserSecret(ctx, "u1", store.SecretTOTP)
	mustNil(t, err, "get")
	equal(t, *got, s, "round trip")
	s2 := s
	s2.Sealed, s2.CreatedAt, s2.UpdatedAt = []byte("s2"), at(time.Hour), at(time.Hour)
	mustNil(t, db.PutUserSecret(ctx, &s2), "replace")
	got, _ = db.UserSecret(ctx, "u1", store.SecretTOTP)
	equal(t, string(got.Sealed)+got.CreatedAt.String()+got.UpdatedAt.String(), "s2"+t0.String()+at(time.Hour).String(), "replaced, created kept")
	_, err = db.UserSecret(ctx, "u1", store.SecretOIDCPrefix+"google")
	mustIs(t, err, store.ErrNotFound, "other kind")
	mustIs(t, db.PutUserSecret(ctx, &store.UserSecret{UserID: "ghost", Kind: "totp", Purpose: "p", Sealed: []byte("x"), CreatedAt: t0, UpdatedAt: t0}), store.ErrNotFound, "unknown user")
	if err := db.PutUserSecret(ctx, &store.UserSecret{UserID: "u1", Kind: "totp", Purpose: "p"}); err == nil {
		t.Fatal("empty secret stored")
	}
	vs, _, err := db.ScanSealed(ctx, "user_secrets.sealed", "", 0)
	mustNil(t, err, "scan")
	equal(t, len(vs) == 1 && vs[0].Purpose == "totp_secret" && vs[0].RowID == store.UserSecretID("u1", "totp"), true, "scan names purpose and row")
	mustNil(t, db.DeleteUserSecret(ctx, "u1", store.SecretTOTP), "delete")
	mustIs(t, db.DeleteUserSecret(ctx, "u1", store.SecretTOTP), store.ErrNotFound, "delete again")
}

func testTransitKeys(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	mustNil(t, db.CreateTransitKey(ctx, "orders", []byte("v1"), t0), "create")
	mustIs(t, db.CreateTransitKey(ctx, "orders", []byte("v1"), t0), store.ErrConflict, "create twice")
	mustIs(t, db.AddTransitKeyVersion(ctx, "orders", 3, []byte("v3"), t0), store.ErrConflict, "skip a version")
	mustNil(t, db.AddTransitKeyVersion(ctx, "orders", 2, []byte("v2"), at(time.Minute)), "v2")
	mustIs(t, db.AddTransitKeyVersion(ctx, "orders", 2, []byte("v2b"), t0), store.ErrConflict, "v2 twice (lost race)")
	mustIs(t, db.AddTransitKeyVersion(ctx, "ghost", 2, []byte("v2"), t0), store.ErrNotFound, "unknown key")
	mustIs(t, db.SetTransitMinDecryptionVersion(ctx, "orders", 3, t0), store.ErrConflict, "min above latest")
	mustNil(t, db.SetTransitMinDecryptionVersion(ctx, "orders", 2, at(time.Hour)), "min 2")
	mustIs(t, db.SetTransitMinDecryptionVersion(ctx, "ghost", 1, t0), store.ErrNotFound, "min unknown")
	k, err := db.TransitKey(ctx, "orders")
	mustNil(t, err, "get")
	equal(t, [3]int{k.LatestVersion, k.MinDecryptionVersion, len(k.Versions)}, [3]int{2, 2, 2}, "versions")
	equal(t, string(k.Versions[0].Sealed)+string(k.Versions[1].Sealed), "v1v2", "sealed versions in order")
	equal(t, k.UpdatedAt, at(time.Hour), "updated")
	_, err = db.TransitKey(ctx, "ghost")
	mustIs(t, err, store.ErrNotFound, "get unknown")
	vs, _, err := db.ScanSealed(ctx, "transit_key_versions.key", "", 0)
	mustNil(t, err, "scan")
	equal(t, ids(vs, func(v store.SealedValue) string { return v.RowID }), []string{"orders/1", "orders/2"}, "scan rows")
}

func testReseal(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	_, err := db.OpenResealRun(ctx)
	mustIs(t, err, store.ErrNotFound, "no run yet")
	for i := range 5 {
		createUser(t, db, fmt.Sprintf("u%d", i))
	}
	// Refresh successors: a binary primary key, paged by its bytes.
	for i := range 3 {
		s, tok := newSession(fmt.Sprintf("s%d", i), "u0", t0)
		tok.SuccessorSealed = []byte(fmt.Sprintf("succ%d", i))
		mustNil(t, db.CreateSession(ctx, &s, &tok), "session")
	}
	run, err := db.StartReseal(ctx, t0, nil, []store.DataKey{dataKey("d1", store.DataKeySeal, "email", store.DataKeyActive)})
	mustNil(t, err, "start")
	_, err = db.StartReseal(ctx, t0, nil, nil)
	mustIs(t, err, store.ErrConflict, "second open run")
	open, err := db.OpenResealRun(ctx)
	mustNil(t, err, "open run")
	equal(t, open.ID, run.ID, "open run id")

	// A failing callback aborts the batch with nothing written.
	boom := errors.New("boom")
	_, err = db.ResealBatch(ctx, run.ID, "users.email", 2, func(store.SealedValue) (store.Resealed, error) { return store.Resealed{}, boom })
	mustIs(t, err, boom, "callback error")
	u, _ := db.UserByID(ctx, "u0")
	equal(t, string(u.EmailSealed), "sealed-u0", "nothing written")

	var seen []string
	reseal := func(v store.SealedValue) (store.Resealed, error) {
		seen = append(seen, v.RowID)
		return store.Resealed{Sealed: append([]byte("new-"), v.Sealed...)}, nil
	}
	var p store.ResealProgress
	for batches := 0; !p.Done; batches++ {
		if batches > 5 {
			t.Fatal("reseal does not finish")
		}
		p, err = db.ResealBatch(ctx, run.ID, "users.email", 2, reseal)
		mustNil(t, err, "batch")
	}
	equal(t, seen, []string{"u0", "u1", "u2", "u3", "u4"}, "every row once, in order")
	equal(t, p.Resealed, int64(5), "count")
	u, _ = db.UserByID(ctx, "u3")
	equal(t, string(u.EmailSealed), "new-sealed-u3", "rewritten")
	// Done stays done: a resumed run does not re-seal the field again.
	p, err = db.ResealBatch(ctx, run.ID, "users.email", 2, reseal)
	mustNil(t, err, "after done")
	equal(t, p, store.ResealProgress{Resealed: 5, Done: true}, "done")
	equal(t, len(seen), 5, "no more calls")

	seen = nil
	for p = (store.ResealProgress{}); !p.Done; {
		p, err = db.ResealBatch(ctx, run.ID, "refresh_tokens.successor", 1, reseal)
		mustNil(t, err, "successor batch")
	}
	equal(t, len(seen), 3, "successors")
	rt := token(t, db, []byte("hash-s1-1"))
	equal(t, string(rt.SuccessorSealed), "new-succ1", "successor rewritten")

	mustNil(t, db.FinishReseal(ctx, run.ID, at(time.Hour)), "finish")
	mustIs(t, db.FinishReseal(ctx, run.ID, at(time.Hour)), store.ErrNotFound, "finish twice")
	_, err = db.OpenResealRun(ctx)
	mustIs(t, err, store.ErrNotFound, "no open run")
	run2, err := db.StartReseal(ctx, at(2*time.Hour), []string{"d1"}, []store.DataKey{dataKey("d2", store.DataKeySeal, "email", store.DataKeyActive)})
	mustNil(t, err, "second run")
	if run2.ID == run.ID {
		t.Fatal("run id reused")
	}
	equal(t, dataKeyStates(t, db), map[string]string{"d1": "retired/kek1", "d2": "active/kek1"}, "keys rotated with the run")
	if _, err := db.ResealBatch(ctx, run2.ID, "no.such", 2, reseal); err == nil {
		t.Fatal("unknown field")
	}
}
