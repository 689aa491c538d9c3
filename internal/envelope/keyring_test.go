package envelope_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/envelope"
	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func openDB(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(context.Background(), "sqlite://"+filepath.Join(tb.TempDir(), "g.db"), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func kekFile(tb testing.TB) *keys.KEK {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "kek")
	if err := keys.GenerateKEKFile(p); err != nil {
		tb.Fatal(err)
	}
	k, err := keys.LoadKEK("file://"+p, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func newRing(tb testing.TB, db *store.DB, kek keys.Wrapper) *envelope.Keyring {
	tb.Helper()
	k, err := envelope.New(context.Background(), db, kek, envelope.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := newRing(t, openDB(t), kekFile(t))
	pt := []byte("alice@example.com")
	sealed, err := k.Seal("email", pt, "users", "email", "u1")
	if err != nil {
		t.Fatal(err)
	}
	if v, id := envelope.Describe(sealed); v != 2 || len(id) != 16 {
		t.Fatalf("Describe = %d %q", v, id)
	}
	if bytes.Contains(sealed, pt) || len(sealed) != len(pt)+envelope.Overhead {
		t.Fatalf("sealed %x", sealed)
	}
	got, err := k.Open("email", sealed, "users", "email", "u1")
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("open = %q, %v", got, err)
	}
	other, _ := k.Seal("totp_secret", pt, "users", "email", "u1")
	hostile := []struct {
		name    string
		purpose string
		sealed  []byte
		aad     []string
	}{
		{"another row", "email", sealed, []string{"users", "email", "u2"}},
		{"another column", "email", sealed, []string{"users", "name", "u1"}},
		{"another table", "email", sealed, []string{"admins", "email", "u1"}},
		{"aad split differently", "email", sealed, []string{"users", "emailu", "1"}},
		{"no aad", "email", sealed, nil},
		{"another purpose", "totp_secret", sealed, []string{"users", "email", "u1"}},
		{"other purpose's dek under this purpose", "email", other, []string{"users", "email", "u1"}},
		{"flipped tag", "email", flip(sealed, len(sealed)-1), []string{"users", "email", "u1"}},
		{"flipped dek id", "email", flip(sealed, 3), []string{"users", "email", "u1"}},
		{"flipped version", "email", flip(sealed, 0), []string{"users", "email", "u1"}},
		{"truncated", "email", sealed[:envelope.Overhead-1], []string{"users", "email", "u1"}},
		{"empty", "email", nil, []string{"users", "email", "u1"}},
		{"unknown purpose", "nope", sealed, []string{"users", "email", "u1"}},
	}
	for _, h := range hostile {
		t.Run(h.name, func(t *testing.T) {
			if _, err := k.Open(h.purpose, h.sealed, h.aad...); !errors.Is(err, envelope.ErrOpen) {
				t.Fatalf("err = %v, want ErrOpen", err)
			}
		})
	}
	if _, err := k.Seal("nope", pt); err == nil {
		t.Fatal("sealed for an unregistered purpose")
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

func TestMaskedAndNoKeyInStore(t *testing.T) {
	db := openDB(t)
	k := newRing(t, db, kekFile(t))
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%+v %#v %x", k, k, k)} {
		if !strings.Contains(s, "REDACTED") {
			t.Fatalf("keyring prints %q", s)
		}
	}
	rows, err := db.DataKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := len(envelope.SealPurposes()) + len(envelope.IndexPurposes()); len(rows) != want {
		t.Fatalf("%d data keys, want %d", len(rows), want)
	}
}

// TestLegacy: a database sealed by keys.Sealer (format 1) keeps working — values
// open and blind indexes still match — and keeps matching after a KEK rotation.
func TestLegacy(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	kek := kekFile(t)
	legacy := keys.NewSealer(kek)
	v1, _ := legacy.Seal("email", []byte("bob@example.com"), "users", "email", "u9")
	oldIndex := legacy.Index("email", []byte("bob@example.com"))

	k := newRing(t, db, kek)
	got, err := k.Open("email", v1, "users", "email", "u9")
	if err != nil || string(got) != "bob@example.com" {
		t.Fatalf("v1 open = %q, %v", got, err)
	}
	if !bytes.Equal(k.Index("email", []byte("bob@example.com")), oldIndex) {
		t.Fatal("the email index changed with envelope encryption")
	}
	if h := k.Explain(v1); h != "" {
		t.Fatalf("explain on an openable v1 value: %q", h)
	}

	next, err := keys.OpenKEK(ctx, "base64key://"+strings.Repeat("A", 43)+"=", nil)
	if err != nil {
		t.Fatal(err)
	}
	rw, err := k.Rewrap(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.RewrapDataKeys(ctx, rw); err != nil {
		t.Fatal(err)
	}
	k2 := newRing(t, db, next)
	if !bytes.Equal(k2.Index("email", []byte("bob@example.com")), oldIndex) {
		t.Fatal("the email index changed with the KEK")
	}
	// A KMS KEK has no legacy sealer: v1 values no longer open (which is why
	// `keys rotate --kek` refuses while any remain).
	if _, err := k2.Open("email", v1, "users", "email", "u9"); !errors.Is(err, envelope.ErrOpen) {
		t.Fatalf("v1 under a KMS kek: %v", err)
	}
	// The old KEK no longer unwraps: start-up fails closed.
	if _, err := envelope.New(ctx, db, kek, envelope.Options{}); !errors.Is(err, envelope.ErrWrongKEK) || !strings.Contains(err.Error(), next.ID()) {
		t.Fatalf("old kek after rotation: %v", err)
	}
}

func TestWrongKEKFailsClosed(t *testing.T) {
	db := openDB(t)
	newRing(t, db, kekFile(t))
	_, err := envelope.New(context.Background(), db, kekFile(t), envelope.Options{})
	if !errors.Is(err, envelope.ErrWrongKEK) || !strings.Contains(err.Error(), "wrong kek") {
		t.Fatalf("err = %v", err)
	}
}

// TestTamperedDataKeyFailsClosed: a wrapped key altered in the store (with the
// right kek id) stops start-up too.
func TestTamperedDataKeyFailsClosed(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	kek := kekFile(t)
	newRing(t, db, kek)
	rows, _ := db.DataKeys(ctx)
	r := rows[0]
	if err := db.RewrapDataKeys(ctx, []store.Rewrap{{ID: r.ID, OldKEKID: r.KEKID, Wrapped: flip(r.Wrapped, 5), KEKID: r.KEKID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := envelope.New(ctx, db, kek, envelope.Options{}); !errors.Is(err, envelope.ErrWrongKEK) {
		t.Fatalf("err = %v", err)
	}
}

// TestOnlineRotation: a serving keyring opens values sealed under DEKs that a
// rotation in another process created, and moves to them on reload.
func TestOnlineRotation(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	kek := kekFile(t)
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	serving, err := envelope.New(ctx, db, kek, envelope.Options{Now: clock, ReloadInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := serving.Seal("totp_secret", []byte("s1"), "t", "c", "1")

	rotator := newRing(t, db, kek)
	retire, add, err := rotator.NextKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.AddDataKeys(ctx, retire, add, now); err != nil {
		t.Fatal(err)
	}
	if err := rotator.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	after, _ := rotator.Seal("totp_secret", []byte("s2"), "t", "c", "2")
	_, id1 := envelope.Describe(before)
	_, id2 := envelope.Describe(after)
	if id1 == id2 {
		t.Fatal("rotation did not change the DEK")
	}
	now = now.Add(2 * time.Second) // past the miss-reload bound
	if got, err := serving.Open("totp_secret", after, "t", "c", "2"); err != nil || string(got) != "s2" {
		t.Fatalf("serving keyring: %q %v", got, err)
	}
	if got, err := rotator.Open("totp_secret", before, "t", "c", "1"); err != nil || string(got) != "s1" {
		t.Fatalf("retired DEK: %q %v", got, err)
	}
	if serving.State(id1) != store.DataKeyRetired || serving.State(id2) != store.DataKeyActive {
		t.Fatal("states not reloaded")
	}
}

func TestResealResumeAndCheck(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	kek := kekFile(t)
	legacy := keys.NewSealer(kek)
	k := newRing(t, db, kek)
	sdb := db.WithFieldSealer(k)
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 25 {
		id := fmt.Sprintf("u%02d", i)
		var sealed []byte
		if i%2 == 0 {
			sealed, _ = legacy.Seal("email", []byte(id+"@example.com"), "users", "email", id)
		} else {
			sealed, _ = k.Seal("email", []byte(id+"@example.com"), "users", "email", id)
		}
		if err := sdb.CreateUser(ctx, &store.User{ID: id, EmailIndex: k.Index("email", []byte(id)), EmailSealed: sealed, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		if err := sdb.InsertEvent(ctx, &store.Event{Type: "login_succeeded", Time: now, IP: "198.51.100.7", UserID: id}); err != nil {
			t.Fatal(err)
		}
	}
	// A legacy plaintext event written by a store without a sealer.
	if err := db.InsertEvent(ctx, &store.Event{ID: "legacy", Type: "x", Time: now, IP: "203.0.113.9"}); err != nil {
		t.Fatal(err)
	}
	rep, err := k.Check(ctx, db)
	if err != nil || rep.Failed != 0 {
		t.Fatalf("check: %+v %v", rep, err)
	}
	counts := map[string]envelope.PurposeCount{}
	for _, c := range rep.Purposes {
		counts[c.Purpose] = c
	}
	if c := counts["email"]; c.Opened != 25 || c.Version1 != 13 {
		t.Fatalf("email counts %+v", c)
	}
	if c := counts["event_ip"]; c.Opened != 25 || c.Plaintext != 1 {
		t.Fatalf("event_ip counts %+v", c)
	}

	// Interrupt the first run after two batches.
	cctx, cancel := context.WithCancel(ctx)
	batches := 0
	_, err = k.Reseal(cctx, db, envelope.ResealOptions{BatchSize: 4, AfterBatch: func(string, store.ResealProgress) {
		if batches++; batches == 2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	run, err := db.OpenResealRun(ctx)
	if err != nil {
		t.Fatalf("no open run after the interruption: %v", err)
	}
	res, err := k.Reseal(ctx, db, envelope.ResealOptions{BatchSize: 4})
	if err != nil || !res.Resumed || res.RunID != run.ID {
		t.Fatalf("resume: %+v %v", res, err)
	}
	if res.Fields["users.email"] != 25 || res.Fields["events.ip"] != 26 {
		t.Fatalf("resealed %v", res.Fields)
	}
	rep, err = k.Check(ctx, db)
	if err != nil || rep.Failed != 0 {
		t.Fatalf("check after: %+v %v", rep, err)
	}
	for _, c := range rep.Purposes {
		if c.Version1 != 0 || c.Retired != 0 || c.Plaintext != 0 {
			t.Fatalf("after a full run nothing stays on old keys or in plaintext: %+v", c)
		}
	}
	// The legacy plaintext event is now sealed and found by its blind index.
	evs, err := sdb.QueryEvents(ctx, store.EventQuery{IP: "203.0.113.9"})
	if err != nil || len(evs) != 1 || evs[0].ID != "legacy" || evs[0].IP != "203.0.113.9" {
		t.Fatalf("legacy event by ip: %+v %v", evs, err)
	}
	if _, err := db.OpenResealRun(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("run still open: %v", err)
	}
	// A copied ciphertext fails the check and names the row.
	vs, _, err := db.ScanSealed(ctx, "users.email", "", 2)
	if err != nil || len(vs) != 2 {
		t.Fatalf("scan: %v %v", vs, err)
	}
	if err := db.CreateUser(ctx, &store.User{ID: "u99", EmailSealed: vs[0].Sealed, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	rep, err = k.Check(ctx, db)
	if err != nil || rep.Failed != 1 || len(rep.Failures) != 1 || rep.Failures[0].RowID != "u99" || rep.Failures[0].Field != "users.email" {
		t.Fatalf("copied ciphertext: %+v %v", rep, err)
	}
}

func FuzzOpen(f *testing.F) {
	db := openDB(f)
	k := newRing(f, db, kekFile(f))
	good, _ := k.Seal("email", []byte("x@example.com"), "users", "email", "u1")
	f.Add(good)                                          // a real value: opens only with its aad
	f.Add(flip(good, 0))                                 // version 1 header on a v2 body
	f.Add([]byte{0x02})                                  // header only
	f.Add(append([]byte{0x01}, good[1:]...))             // claims the legacy format
	f.Add(bytes.Repeat([]byte{0x02}, envelope.Overhead)) // unknown DEK id
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := k.Open("email", b, "users", "email", "u2")
		if err == nil {
			t.Fatalf("opened %x as %q under another row", b, pt)
		}
		envelope.Describe(b)
		k.Explain(b)
	})
}

func BenchmarkSeal(b *testing.B) {
	k := newRing(b, openDB(b), kekFile(b))
	pt := []byte("alice@example.com")
	b.ReportAllocs()
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if _, err := k.Seal("email", pt, "users", "email", "0123456789abcdef"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	k := newRing(b, openDB(b), kekFile(b))
	sealed, _ := k.Seal("email", []byte("alice@example.com"), "users", "email", "0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Open("email", sealed, "users", "email", "0123456789abcdef"); err != nil {
			b.Fatal(err)
		}
	}
}
