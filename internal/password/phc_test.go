package password

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Vectors written by the Argon2 reference implementation's CLI (Debian package
// argon2 0~20171227), e.g.
//
//	echo -n "correct horse battery staple" | argon2 gatehouse-salt16 -id -t 2 -k 19456 -p 1 -l 32 -e
var referenceVectors = []struct {
	name     string
	password string
	encoded  string
	params   Params
	salt     string
	keyLen   int
}{
	{
		name:     "owasp floor",
		password: "correct horse battery staple",
		encoded:  "$argon2id$v=19$m=19456,t=2,p=1$Z2F0ZWhvdXNlLXNhbHQxNg$bsXFENIwjcWvJE0fNSKGJUdiUsIMdeBM0ApgamQdnew",
		params:   Params{19456, 2, 1},
		salt:     "gatehouse-salt16",
		keyLen:   32,
	},
	{
		name:     "non-ascii password",
		password: "pässwörd 🔑",
		encoded:  "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$VYq8djPdSeAEzXaaS68utMCh0gjsI9VgfWrnAyaab94",
		params:   Params{19456, 2, 1},
		salt:     "0123456789abcdef",
		keyLen:   32,
	},
	{
		name:     "higher cost, four lanes",
		password: "password",
		encoded:  "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$gduXp+Z6iReEolmbyHn5V8s1EtJzmEvZfYoY/Fn/AeI",
		params:   Params{65536, 3, 4},
		salt:     "somesaltsomesalt",
		keyLen:   32,
	},
	{
		name:     "below floor, short salt and key",
		password: "password",
		encoded:  "$argon2id$v=19$m=4096,t=1,p=2$c2FsdHNhbHQ$+DpuI1dFo9W8jiVMYdKnTg",
		params:   Params{4096, 1, 2},
		salt:     "saltsalt",
		keyLen:   16,
	},
}

func TestParsePHCReferenceVectors(t *testing.T) {
	for _, v := range referenceVectors {
		t.Run(v.name, func(t *testing.T) {
			p, salt, key, err := ParsePHC(v.encoded)
			if err != nil {
				t.Fatalf("ParsePHC() error = %v", err)
			}
			if p != v.params {
				t.Errorf("params = %+v, want %+v", p, v.params)
			}
			if string(salt) != v.salt {
				t.Errorf("salt = %q, want %q", salt, v.salt)
			}
			if len(key) != v.keyLen {
				t.Errorf("key length = %d, want %d", len(key), v.keyLen)
			}
			if got := encodePHC(p, salt, key); got != v.encoded {
				t.Errorf("encodePHC() = %q, want the reference string %q", got, v.encoded)
			}
		})
	}
}

func TestParsePHCRejects(t *testing.T) {
	const (
		salt = "Z2F0ZWhvdXNlLXNhbHQxNg"                      // 16 bytes
		key  = "bsXFENIwjcWvJE0fNSKGJUdiUsIMdeBM0ApgamQdnew" // 32 bytes
	)
	valid := "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key
	if _, _, _, err := ParsePHC(valid); err != nil {
		t.Fatalf("baseline %q does not parse: %v", valid, err)
	}
	tests := []struct {
		name, in string
	}{
		{"empty", ""},
		{"dollar only", "$"},
		{"bcrypt", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"},
		{"argon2i", "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"argon2d", "$argon2d$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"argon2id upper case", "$ARGON2ID$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"version 16", "$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key},
		{"version missing", "$argon2id$m=19456,t=2,p=1$" + salt + "$" + key},
		{"no leading dollar", "argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"key missing", "$argon2id$v=19$m=19456,t=2,p=1$" + salt},
		{"key empty", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$"},
		{"salt empty", "$argon2id$v=19$m=19456,t=2,p=1$$" + key},
		{"params missing", "$argon2id$v=19$" + salt + "$" + key},
		{"extra part", valid + "$" + key},
		{"trailing dollar", valid + "$"},
		{"params reordered", "$argon2id$v=19$t=2,m=19456,p=1$" + salt + "$" + key},
		{"param missing", "$argon2id$v=19$m=19456,t=2$" + salt + "$" + key},
		{"extra param keyid", "$argon2id$v=19$m=19456,t=2,p=1,keyid=abc$" + salt + "$" + key},
		{"space in params", "$argon2id$v=19$m=19456, t=2,p=1$" + salt + "$" + key},
		{"leading zero", "$argon2id$v=19$m=019456,t=2,p=1$" + salt + "$" + key},
		{"plus sign", "$argon2id$v=19$m=+19456,t=2,p=1$" + salt + "$" + key},
		{"negative", "$argon2id$v=19$m=19456,t=-2,p=1$" + salt + "$" + key},
		{"hex", "$argon2id$v=19$m=0x4c00,t=2,p=1$" + salt + "$" + key},
		{"empty value", "$argon2id$v=19$m=,t=2,p=1$" + salt + "$" + key},
		{"huge m overflows uint32", "$argon2id$v=19$m=99999999999,t=2,p=1$" + salt + "$" + key},
		{"m max uint32", "$argon2id$v=19$m=4294967295,t=2,p=1$" + salt + "$" + key},
		{"m just above 1 GiB", "$argon2id$v=19$m=1048577,t=2,p=1$" + salt + "$" + key},
		{"m below 8 per lane", "$argon2id$v=19$m=31,t=1,p=4$" + salt + "$" + key},
		{"m zero", "$argon2id$v=19$m=0,t=2,p=1$" + salt + "$" + key},
		{"t zero", "$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key},
		{"t huge", "$argon2id$v=19$m=19456,t=4294967295,p=1$" + salt + "$" + key},
		{"t 65", "$argon2id$v=19$m=19456,t=65,p=1$" + salt + "$" + key},
		{"p zero", "$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + key},
		{"p 65", "$argon2id$v=19$m=19456,t=2,p=65$" + salt + "$" + key},
		{"p 256 (wraps uint8)", "$argon2id$v=19$m=19456,t=2,p=256$" + salt + "$" + key},
		{"salt padded", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "==$" + key},
		{"salt url alphabet", "$argon2id$v=19$m=19456,t=2,p=1$Z2F0ZWhvdXNlLXNhbHQxN-_$" + key},
		{"salt with newline", "$argon2id$v=19$m=19456,t=2,p=1$Z2F0ZWhvdXNl\nLXNhbHQxNg$" + key},
		{"salt with CR", "$argon2id$v=19$m=19456,t=2,p=1$Z2F0ZWhvdXNl\rLXNhbHQxNg$" + key},
		{"salt bad character", "$argon2id$v=19$m=19456,t=2,p=1$Z2F0ZWhvdXNl*XNhbHQxNg$" + key},
		{"salt impossible length", "$argon2id$v=19$m=19456,t=2,p=1$Z2F0Z$" + key},
		{"salt non-zero trailing bits", "$argon2id$v=19$m=19456,t=2,p=1$Z2F0ZWhvdXNlLXNhbHQxNh$" + key},
		{"salt 7 bytes", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbA$" + key},
		{"salt 65 bytes", "$argon2id$v=19$m=19456,t=2,p=1$" + strings.Repeat("A", 87) + "$" + key},
		{"key 15 bytes", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("A", 20)},
		{"key 65 bytes", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("A", 87)},
		{"key huge", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("A", 4000)},
		{"NUL inside", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "\x00$" + key},
		{"trailing newline", valid + "\n"},
		{"leading space", " " + valid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, s, k, err := ParsePHC(tt.in)
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("ParsePHC() error = %v, want ErrMalformedHash", err)
			}
			if p != (Params{}) || s != nil || k != nil {
				t.Errorf("ParsePHC() returned values with an error: %+v %x %x", p, s, k)
			}
			// Errors must not carry the stored hash (it is a secret-derived value).
			if strings.Contains(err.Error(), salt) || strings.Contains(err.Error(), key) {
				t.Errorf("error %q repeats the input", err)
			}
		})
	}
}

func TestEncodeParseRoundTrip(t *testing.T) {
	salt := bytes.Repeat([]byte{0xfb}, SaltLen) // encodes with '+' and '/'
	key := bytes.Repeat([]byte{0xff}, KeyLen)
	p := Params{MemoryKiB: MaxMemoryKiB, Iterations: MaxIterations, Parallelism: MaxParallelism}
	s := encodePHC(p, salt, key)
	gotP, gotSalt, gotKey, err := ParsePHC(s)
	if err != nil {
		t.Fatalf("ParsePHC(%q) error = %v", s, err)
	}
	if gotP != p || !bytes.Equal(gotSalt, salt) || !bytes.Equal(gotKey, key) {
		t.Fatalf("round trip changed values: %+v %x %x", gotP, gotSalt, gotKey)
	}
	// The longest string within bounds still fits under maxPHCLen.
	longest := encodePHC(p, make([]byte, maxParsedSaltLen), make([]byte, maxParsedKeyLen))
	if len(longest) > maxPHCLen {
		t.Fatalf("longest valid PHC string is %d bytes, above maxPHCLen %d", len(longest), maxPHCLen)
	}
	if _, _, _, err := ParsePHC(longest); err != nil {
		t.Fatalf("longest valid PHC string rejected: %v", err)
	}
}

func FuzzParsePHC(f *testing.F) {
	// A valid hash as the reference CLI writes it.
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$Z2F0ZWhvdXNlLXNhbHQxNg$bsXFENIwjcWvJE0fNSKGJUdiUsIMdeBM0ApgamQdnew")
	// Valid, below the floor, short salt and key (must parse; Verify rehashes).
	f.Add("$argon2id$v=19$m=4096,t=1,p=2$c2FsdHNhbHQ$+DpuI1dFo9W8jiVMYdKnTg")
	// Wrong variant: argon2i from the same CLI.
	f.Add("$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8pDKuQWnVyn1WubqZygCiwFvgGZldOecJANYh9ZnKbA")
	// Wrong version (argon2 1.0 = v=16).
	f.Add("$argon2id$v=16$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$E1C1eTwcpnnkZsf6N06hCehEk0IbxvVj0JCTVmy7eK8")
	// Missing parts.
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$Z2F0ZWhvdXNlLXNhbHQxNg")
	f.Add("$argon2id$v=19$")
	// Huge m: would allocate 4 TiB if trusted.
	f.Add("$argon2id$v=19$m=4294967295,t=2,p=1$Z2F0ZWhvdXNlLXNhbHQxNg$bsXFENIwjcWvJE0fNSKGJUdiUsIMdeBM0ApgamQdnew")
	// Bad base64: padding, URL alphabet, embedded newline.
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$Z2F0ZWhvdXNlLXNhbHQxNg==$bsXFENIwjcWvJE0fNSKGJUdiUsIMdeBM0ApgamQdnew")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$Z2F0ZWhvdXNlLXNhbHQxN-_$bsXFENIwjcWvJE0fNSKGJUdiUsIMdeBM0ApgamQdnew")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$Z2F0ZWhv\nXNlLXNhbHQxNg$bsXFENIwjcWvJE0fNSKGJUdiUsIMdeBM0ApgamQdnew")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := ParsePHC(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("error %v does not wrap ErrMalformedHash", err)
			}
			return
		}
		// Everything accepted is bounded: Verify may safely allocate it.
		if p.MemoryKiB > MaxMemoryKiB || p.MemoryKiB < 8*uint32(p.Parallelism) ||
			p.Iterations < 1 || p.Iterations > MaxIterations ||
			p.Parallelism < 1 || p.Parallelism > MaxParallelism {
			t.Fatalf("accepted out-of-bounds params %+v", p)
		}
		if len(salt) < minParsedSaltLen || len(salt) > maxParsedSaltLen ||
			len(key) < minParsedKeyLen || len(key) > maxParsedKeyLen {
			t.Fatalf("accepted salt %d / key %d bytes", len(salt), len(key))
		}
		// Strict means canonical: one hash has exactly one accepted spelling.
		if got := encodePHC(p, salt, key); got != s {
			t.Fatalf("accepted non-canonical %q (canonical %q)", s, got)
		}
	})
}
