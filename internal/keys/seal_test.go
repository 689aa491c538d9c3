package keys

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func testSealer() *Sealer { return NewSealer(newKEK(testKey)) }

func otherSealer() *Sealer { return NewSealer(newKEK(bytes.Repeat([]byte{0x42}, 32))) }

func TestSealRoundTrip(t *testing.T) {
	s := testSealer()
	for _, pt := range [][]byte{nil, {}, []byte("x"), []byte("alice@example.com"), bytes.Repeat([]byte{0}, 4096)} {
		sealed, err := s.Seal("email", pt, "users", "email", "u_123")
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed) != len(pt)+SealOverhead {
			t.Fatalf("len %d, want %d", len(sealed), len(pt)+SealOverhead)
		}
		if sealed[0] != 0x01 {
			t.Fatalf("version byte %#x", sealed[0])
		}
		if id, ok := SealedKEKID(sealed); !ok || id != s.KEKID() {
			t.Fatalf("SealedKEKID = %q, %v; want %q", id, ok, s.KEKID())
		}
		got, err := s.Open("email", sealed, "users", "email", "u_123")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("round trip changed the value")
		}
		// A fresh Sealer over the same KEK (another process) opens it too.
		if _, err := testSealer().Open("email", sealed, "users", "email", "u_123"); err != nil {
			t.Fatalf("another sealer with the same kek: %v", err)
		}
	}
	a, _ := s.Seal("email", []byte("same"), "users", "email", "u_1")
	b, _ := s.Seal("email", []byte("same"), "users", "email", "u_1")
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same value are equal: nonce reuse")
	}
	if _, err := s.Seal("", []byte("x")); err == nil {
		t.Fatal("empty purpose sealed")
	}
}

func TestOpenRejects(t *testing.T) {
	s := testSealer()
	sealed, err := s.Seal("totp_secret", []byte("JBSWY3DPEHPK3PXP"), "users", "totp", "u_1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		s       *Sealer
		purpose string
		sealed  []byte
		aad     []string
	}{
		{"other row", s, "totp_secret", sealed, []string{"users", "totp", "u_2"}},
		{"other column", s, "totp_secret", sealed, []string{"users", "email", "u_1"}},
		{"other table", s, "totp_secret", sealed, []string{"sessions", "totp", "u_1"}},
		{"other purpose", s, "email", sealed, []string{"users", "totp", "u_1"}},
		{"empty purpose", s, "", sealed, []string{"users", "totp", "u_1"}},
		{"missing aad element", s, "totp_secret", sealed, []string{"users", "totp"}},
		{"extra aad element", s, "totp_secret", sealed, []string{"users", "totp", "u_1", ""}},
		{"no aad", s, "totp_secret", sealed, nil},
		{"wrong kek", otherSealer(), "totp_secret", sealed, []string{"users", "totp", "u_1"}},
		{"empty", s, "totp_secret", nil, []string{"users", "totp", "u_1"}},
		{"header only", s, "totp_secret", sealed[:sealHeader], []string{"users", "totp", "u_1"}},
		{"truncated tag", s, "totp_secret", sealed[:len(sealed)-1], []string{"users", "totp", "u_1"}},
		{"extended", s, "totp_secret", append(slicesClone(sealed), 0), []string{"users", "totp", "u_1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := tt.s.Open(tt.purpose, tt.sealed, tt.aad...)
			if !errors.Is(err, ErrOpen) || pt != nil {
				t.Fatalf("Open = %q, %v; want ErrOpen", pt, err)
			}
		})
	}
}

func TestOpenRejectsEveryTamperedByte(t *testing.T) {
	s := testSealer()
	sealed, _ := s.Seal("signing_key", []byte("private key der"), "signing_keys", "private", "kid1")
	for i := range sealed {
		for _, flip := range []byte{0x01, 0x80, 0xff} {
			c := slicesClone(sealed)
			c[i] ^= flip
			if _, err := s.Open("signing_key", c, "signing_keys", "private", "kid1"); !errors.Is(err, ErrOpen) {
				t.Fatalf("byte %d ^ %#x: err = %v, want ErrOpen", i, flip, err)
			}
		}
	}
}

// The associated data is length-prefixed: moving bytes between elements, or
// between the purpose and the first element, must change it.
func TestAssociatedDataUnambiguous(t *testing.T) {
	s := testSealer()
	tests := []struct {
		name     string
		purpose  string
		aad      []string
		purpose2 string
		aad2     []string
	}{
		{"split moved", "p", []string{"ab", "c"}, "p", []string{"a", "bc"}},
		{"purpose into aad", "pa", []string{"b"}, "p", []string{"ab"}},
		{"joined", "p", []string{"a", "b"}, "p", []string{"ab"}},
		{"empty element", "p", []string{"a"}, "p", []string{"a", ""}},
		{"empty first", "p", []string{"", "a"}, "p", []string{"a", ""}},
		{"separator lookalike", "p", []string{"a\x00\x00\x00\x01b"}, "p", []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := associatedData([]byte{1}, tt.purpose, tt.aad)
			b := associatedData([]byte{1}, tt.purpose2, tt.aad2)
			if bytes.Equal(a, b) {
				t.Fatalf("encodings collide: %x", a)
			}
			sealed, err := s.Seal(tt.purpose, []byte("v"), tt.aad...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Open(tt.purpose2, sealed, tt.aad2...); !errors.Is(err, ErrOpen) {
				t.Fatalf("opened under %q %q: %v", tt.purpose2, tt.aad2, err)
			}
		})
	}
}

func TestOpenErrorSaysNothing(t *testing.T) {
	s := testSealer()
	sealed, _ := s.Seal("email", []byte("alice@example.com"), "users", "email", "u_1")
	_, err1 := s.Open("email", sealed, "users", "email", "u_2")
	_, err2 := otherSealer().Open("email", sealed, "users", "email", "u_1")
	_, err3 := s.Open("email", sealed[:5])
	if err1.Error() != err2.Error() || err2.Error() != err3.Error() {
		t.Fatalf("errors differ by cause: %q / %q / %q", err1, err2, err3)
	}
	if strings.Contains(err1.Error(), "alice") || strings.Contains(err1.Error(), "u_2") {
		t.Fatalf("error leaks detail: %q", err1)
	}
}

func TestIndex(t *testing.T) {
	s := testSealer()
	a := s.Index("email", []byte("alice@example.com"))
	if len(a) != 32 {
		t.Fatalf("len %d", len(a))
	}
	if !bytes.Equal(a, testSealer().Index("email", []byte("alice@example.com"))) {
		t.Fatal("index is not deterministic under one KEK")
	}
	for name, other := range map[string][]byte{
		"other value":   s.Index("email", []byte("bob@example.com")),
		"other purpose": s.Index("username", []byte("alice@example.com")),
		"other kek":     otherSealer().Index("email", []byte("alice@example.com")),
	} {
		if bytes.Equal(a, other) {
			t.Fatalf("%s: index collides", name)
		}
	}
	// The index key is independent of the sealing key of the same purpose.
	if bytes.Equal(s.derive("index email"), s.derive("seal email")) {
		t.Fatal("index and seal subkeys are equal")
	}
}

func TestSealerManyPurposes(t *testing.T) {
	s := testSealer()
	// Past the cache bound subkeys are derived per call; results stay correct.
	for i := range maxCachedPurposes + 20 {
		p := "purpose-" + string(rune('a'+i%26)) + strings.Repeat("x", i)
		sealed, err := s.Seal(p, []byte("v"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Open(p, sealed); err != nil {
			t.Fatalf("purpose %d: %v", i, err)
		}
	}
}

func TestSealConcurrent(t *testing.T) {
	s := testSealer()
	done := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 200 {
				p := []string{"email", "totp", "oidc"}[(g+i)%3]
				sealed, err := s.Seal(p, []byte("v"), "t", "c", "r")
				if err == nil {
					_, err = s.Open(p, sealed, "t", "c", "r")
				}
				if err != nil {
					done <- err
					return
				}
				s.Index(p, []byte("v"))
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// Known answers under testKey. They pin the derivation (HKDF salt and info), the
// associated-data encoding and the ciphertext layout: a change to any of them
// would make every value already in a database unreadable.
const (
	katSealed = "01fc5e3766d93a7454ee04fb50181e689160302aad500c47b392845bfc4dc83768ce34f4428d8c9bb6df25e0089f" // Seal("fuzz", "plaintext", "t", "c", "r")
	katIndex  = "d5ed2d1573a4931934345037e28c66f61d2509053b741e27fd221e1e1be1ffda"                             // Index("email", "alice@example.com")
	katKEKID  = "fc5e3766d93a7454"
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestKnownAnswers(t *testing.T) {
	s := testSealer()
	if s.KEKID() != katKEKID {
		t.Fatalf("KEK id %s, want %s", s.KEKID(), katKEKID)
	}
	pt, err := s.Open("fuzz", mustHex(katSealed), "t", "c", "r")
	if err != nil || string(pt) != "plaintext" {
		t.Fatalf("known ciphertext: %q, %v", pt, err)
	}
	if got := hex.EncodeToString(s.Index("email", []byte("alice@example.com"))); got != katIndex {
		t.Fatalf("index %s, want %s", got, katIndex)
	}
}

// FuzzOpen: arbitrary bytes never panic and never open, except the known answer.
func FuzzOpen(f *testing.F) {
	s := testSealer()
	// A fixed value, not a fresh Seal: fuzz workers rerun this setup, and a fresh
	// nonce would give each a different "valid" value.
	valid := mustHex(katSealed)
	f.Add(valid, "r")                                   // the genuine value
	f.Add(valid, "r2")                                  // genuine value, other row
	f.Add(valid[:SealOverhead], "r")                    // header and tag only
	f.Add(append([]byte{0x02}, valid[1:]...), "r")      // unknown version
	f.Add([]byte{}, "")                                 // empty
	f.Add([]byte{0x01}, "r")                            // version byte only
	f.Add(bytes.Repeat([]byte{0x01}, SealOverhead), "") // minimum length, garbage
	f.Fuzz(func(t *testing.T, sealed []byte, row string) {
		pt, err := s.Open("fuzz", sealed, "t", "c", row)
		if err != nil {
			if !errors.Is(err, ErrOpen) || pt != nil {
				t.Fatalf("Open = %q, %v", pt, err)
			}
			return
		}
		if !bytes.Equal(sealed, valid) || row != "r" || string(pt) != "plaintext" {
			t.Fatalf("forged value opened: %x row %q → %q", sealed, row, pt)
		}
	})
}
