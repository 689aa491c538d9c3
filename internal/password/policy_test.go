package password

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func TestPolicyCheck(t *testing.T) {
	list := loadShipped(t)
	def := DefaultPolicy().WithBlocklist(list)
	noList := def
	noList.Blocklist = false
	min12 := def
	min12.MinLength = 12
	minBelowFloor := def
	minBelowFloor.MinLength = 4
	maxBelowFloor := def
	maxBelowFloor.MaxLength = 10
	maxZero := def
	maxZero.MaxLength = 0

	email := []string{"alice.smith@example.com", "Gatehouse"}
	tests := []struct {
		name   string
		policy Policy
		pw     string
		ctx    []string
		want   string // reason, "" for accepted
	}{
		// Length: code points after NFKC, floor 8, ceiling from MaxLength.
		{"empty", def, "", nil, ReasonTooShort},
		{"7 ascii", def, "tq7#Lm2", nil, ReasonTooShort},
		{"8 ascii", def, "tq7#Lm2x", nil, ""},
		{"8 spaces and letters", def, "a b c d ", nil, ""},
		{"passphrase with spaces", def, "correct horse battery staple", nil, ""},
		{"64 chars", def, strings.Repeat("abcdefgh", 8), nil, ""},
		{"128 chars", def, strings.Repeat("abcdefgh", 16), nil, ""},
		{"129 chars", def, strings.Repeat("abcdefgh", 16) + "x", nil, ReasonTooLong},
		{"1 MiB", def, strings.Repeat("a", 1<<20), nil, ReasonTooLong},
		{"min 12 rejects 11", min12, "elevenchars", nil, ReasonTooShort},
		{"min 12 accepts 12", min12, "twelve chars", nil, ""},
		{"min below floor still needs 8", minBelowFloor, "tq7#Lm2", nil, ReasonTooShort},
		{"max below floor still allows 64", maxBelowFloor, strings.Repeat("abcdefgh", 8), nil, ""},
		{"max below floor rejects 65", maxBelowFloor, strings.Repeat("abcdefgh", 8) + "x", nil, ReasonTooLong},
		{"max zero means 128", maxZero, strings.Repeat("abcdefgh", 16), nil, ""},

		// Multi-byte: a character is a code point, not a byte.
		{"7 emoji (28 bytes)", def, "🐙🦑🦀🐡🐠🐟🐬", nil, ReasonTooShort},
		{"8 emoji", def, "🐙🦑🦀🐡🐠🐟🐬🐳", nil, ""},
		{"128 emoji", def, strings.Repeat("🐙", 128), nil, ""},
		{"129 emoji", def, strings.Repeat("🐙", 129), nil, ReasonTooLong},
		{"cyrillic", def, "ключ-доступа", nil, ""},
		{"japanese 9", def, "日本語のパスワード", nil, ""},
		{"ZWJ family is 7 code points", def, "👨‍👩‍👧‍👦", nil, ReasonTooShort}, // 4 people, 3 joiners
		{"ZWJ family plus one is 8", def, "👨‍👩‍👧‍👦x", nil, ""},

		// NFKC: equivalent forms count and compare alike.
		{"decomposed accents 7 after NFKC", def, strings.Repeat("e\u0301", 7), nil, ReasonTooShort},
		{"composed accents 8", def, strings.Repeat("é", 8), nil, ""},
		{"decomposed accents 8", def, strings.Repeat("e\u0301", 8), nil, ""},
		{"ligatures expand to 8", def, "ﬁﬂﬁﬂ", nil, ""},
		{"full-width password", def, "ｐａｓｓｗｏｒｄ", nil, ReasonCommon},
		{"full-width digits", def, "１２３４５６７８９", nil, ReasonCommon},

		// Blocklist: case-insensitive, whole password.
		{"password", def, "password", nil, ReasonCommon},
		{"Password", def, "Password", nil, ReasonCommon},
		{"PASSWORD", def, "PASSWORD", nil, ReasonCommon},
		{"123456789", def, "123456789", nil, ReasonCommon},
		{"qwerty123", def, "qwerty123", nil, ReasonCommon},
		{"iloveyou", def, "iloveyou", nil, ReasonCommon},
		{"blocklist off", noList, "password", nil, ""},
		{"common word inside a passphrase", def, "password is not my password", nil, ""},

		// Context words.
		{"email local part", def, "alice.smith-2024", email, ReasonContext},
		{"email local piece", def, "Smith-is-great-99", email, ReasonContext},
		{"email domain label", def, "myexamplepass1", email, ReasonContext},
		{"service name any case", def, "GATEHOUSE rocks!", email, ReasonContext},
		{"whole email", def, "alice.smith@example.com", email, ReasonContext},
		{"full-width context in password", def, "ＡＬＩＣＥ-in-wonderland", email, ReasonContext},
		{"context word NFKC form", def, "alice-in-wonderland", []string{"ａｌｉｃｅ@example.com"}, ReasonContext},
		{"top-level domain not used", def, "dot com rules!", email, ""},
		{"short context word ignored", def, "bob-the-builder-42", []string{"bob"}, ""},
		{"empty context word ignored", def, "tq7#Lm2x", []string{"", "   "}, ""},
		{"unrelated context", def, "correct horse battery staple", email, ""},
		{"invalid UTF-8 context word ignored", def, "tq7#Lm2x", []string{"\xff\xfe\xfd\xfc"}, ""},

		// Bad input.
		{"invalid UTF-8", def, "pass\xffword-long-enough", nil, ReasonInvalidUTF8},
		{"lone continuation byte", def, "\x80abcdefgh", nil, ReasonInvalidUTF8},
		{"surrogate half", def, "abcdefgh\xed\xa0\x80", nil, ReasonInvalidUTF8},
		{"invalid and too long", def, strings.Repeat("\xff", 10000), nil, ReasonInvalidUTF8},
	}
	msgs := policyMessages(t, def)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.pw, tt.ctx...)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check() = %v, want nil", err)
				}
				return
			}
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("Check() = %v, want a *PolicyError with reason %q", err, tt.want)
			}
			if pe.Reason != tt.want {
				t.Fatalf("reason = %q, want %q", pe.Reason, tt.want)
			}
			if pe.Error() != "password: policy: "+tt.want+": "+pe.Message {
				t.Errorf("Error() = %q", pe.Error())
			}
			// Messages never echo the password: each one is fixed for its
			// reason and policy, whatever the password was.
			if tt.policy == def && pe.Message != msgs[pe.Reason] {
				t.Errorf("message %q differs from the %s message %q", pe.Message, pe.Reason, msgs[pe.Reason])
			}
			if pe.Message == "" {
				t.Error("empty message")
			}
		})
	}
}

// policyMessages collects the message p gives for each reason, from inputs that
// share nothing with the table's passwords.
func policyMessages(t testing.TB, p Policy) map[string]string {
	t.Helper()
	inputs := map[string][2]string{
		ReasonTooShort:    {"x", ""},
		ReasonTooLong:     {strings.Repeat("y", 500), ""},
		ReasonCommon:      {"football", ""},
		ReasonContext:     {"zzz-zed@zzz", "zed@zzz"},
		ReasonInvalidUTF8: {"\xc0", ""},
	}
	msgs := make(map[string]string, len(inputs))
	for reason, in := range inputs {
		var ctx []string
		if in[1] != "" {
			ctx = []string{in[1]}
		}
		var pe *PolicyError
		if err := p.Check(in[0], ctx...); !errors.As(err, &pe) || pe.Reason != reason {
			t.Fatalf("Check(%q) = %v, want reason %s", in[0], err, reason)
		}
		msgs[reason] = pe.Message
	}
	return msgs
}

func TestPolicyMessagesSayWhatToDo(t *testing.T) {
	msgs := policyMessages(t, DefaultPolicy().WithBlocklist(loadShipped(t)))
	want := map[string]string{
		ReasonTooShort:    "at least 8 characters",
		ReasonTooLong:     "at most 128 characters",
		ReasonCommon:      "Choose a different one",
		ReasonContext:     "Choose a different one",
		ReasonInvalidUTF8: "Type it again",
	}
	for reason, s := range want {
		if !strings.Contains(msgs[reason], s) {
			t.Errorf("%s message %q does not say %q", reason, msgs[reason], s)
		}
	}
}

func TestDefaultPolicy(t *testing.T) {
	p := DefaultPolicy()
	if p.MinLength != 8 || p.MaxLength != 128 || !p.Blocklist {
		t.Fatalf("DefaultPolicy() = %+v, want 8, 128, true", p)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("DefaultPolicy().Validate() = %v", err)
	}
	// The lazily loaded list works and is shared by copies.
	q := p
	q.MinLength = 10
	for _, pol := range []Policy{p, q} {
		var pe *PolicyError
		if err := pol.Check("qwerty123456"); !errors.As(err, &pe) || pe.Reason != ReasonCommon {
			t.Fatalf("Check(qwerty123456) = %v, want common", err)
		}
	}
	a, err := p.list.get()
	if err != nil {
		t.Fatal(err)
	}
	b, err := q.list.get()
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("copies of DefaultPolicy loaded the blocklist twice")
	}
}

func TestLiteralPolicyStillChecksBlocklist(t *testing.T) {
	p := Policy{Blocklist: true} // no loader: loads per call, still correct
	var pe *PolicyError
	if err := p.Check("password1"); !errors.As(err, &pe) || pe.Reason != ReasonCommon {
		t.Fatalf("Check(password1) = %v, want common", err)
	}
	if err := (Policy{}).Check("password1"); err != nil {
		t.Fatalf("zero Policy (blocklist off) Check(password1) = %v, want nil", err)
	}
	if err := (Policy{}).Check("short"); !errors.As(err, &pe) || pe.Reason != ReasonTooShort {
		t.Fatalf("zero Policy Check(short) = %v, want too_short (floor of 8)", err)
	}
}

func TestWithBlocklist(t *testing.T) {
	custom, err := parseBlocklistFromText(t, "tr0ub4dor&3\n")
	if err != nil {
		t.Fatal(err)
	}
	p := DefaultPolicy().WithBlocklist(custom)
	var pe *PolicyError
	if err := p.Check("Tr0ub4dor&3"); !errors.As(err, &pe) || pe.Reason != ReasonCommon {
		t.Fatalf("Check(Tr0ub4dor&3) = %v, want common", err)
	}
	// The custom list replaces the shipped one.
	if err := p.Check("password"); err != nil {
		t.Fatalf("Check(password) with a custom list = %v, want nil", err)
	}
}

func parseBlocklistFromText(t *testing.T, text string) (*Blocklist, error) {
	t.Helper()
	return parseBlocklist(bytes.NewReader(gz(t, text)))
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       Policy
		wantErr []string
	}{
		{"default", DefaultPolicy(), nil},
		{"zero value uses defaults", Policy{}, nil},
		{"raised minimum", Policy{MinLength: 15, MaxLength: 64}, nil},
		{"ceiling", Policy{MinLength: 8, MaxLength: MaxLengthCeiling}, nil},
		{"min below floor", Policy{MinLength: 6, MaxLength: 128}, []string{"min length 6 is below the floor of 8"}},
		{"negative min", Policy{MinLength: -1}, []string{"min length -1 is below"}},
		{"max below floor", Policy{MinLength: 8, MaxLength: 32}, []string{"max length 32 is below the floor of 64"}},
		{"max above ceiling", Policy{MinLength: 8, MaxLength: 5000}, []string{"max length 5000 is above the ceiling of 4096"}},
		{"min above max", Policy{MinLength: 200, MaxLength: 128}, []string{"min length 200 is above max length 128"}},
		{"every problem", Policy{MinLength: 5000, MaxLength: 4097}, []string{"max length 4097 is above", "min length 5000 is above max length 4096"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.wantErr)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Validate() = %q, want it to contain %q", err, s)
				}
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain ascii", "plain ascii"},
		{"e\u0301", "é"},
		{"ｐａｓｓ", "pass"},
		{"ﬁ", "fi"},
		{"Ⅻ", "XII"},
		{"x\u00a0y", "x y"}, // no-break space becomes a space
	}
	for _, tt := range tests {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestContextKeys(t *testing.T) {
	tests := []struct {
		name  string
		words []string
		want  []string
	}{
		{"none", nil, nil},
		{"email", []string{"Alice.Smith@Example.com"}, []string{"alice.smith@example.com", "alice.smith", "alice", "smith", "example"}},
		{"subdomains", []string{"bob@mail.corp.example.co.uk"}, []string{"bob@mail.corp.example.co.uk", "mail", "corp", "example"}},
		{"service name with space", []string{"Acme Notes"}, []string{"acme notes", "acme", "notes"}},
		{"single word", []string{"gatehouse"}, []string{"gatehouse"}},
		{"short pieces dropped", []string{"al.bo@x.io"}, []string{"al.bo@x.io", "al.bo"}},
		{"multi-byte length in code points", []string{"日本語"}, nil},
		{"four code points", []string{"日本語だ"}, []string{"日本語だ"}},
		{"invalid UTF-8 ignored", []string{"\xff\xff\xff\xff"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := contextKeys(tt.words); !slices.Equal(got, tt.want) {
				t.Fatalf("contextKeys(%q) = %q, want %q", tt.words, got, tt.want)
			}
		})
	}
}

func FuzzPolicyCheck(f *testing.F) {
	// Seeds: accepted, each reason, and the Unicode corners from the table test.
	for _, s := range []string{
		"correct horse battery staple", "", "short", "password", "ｐａｓｓｗｏｒｄ",
		"alice-2024!", strings.Repeat("e\u0301", 8), "🐙🦑🦀🐡🐠🐟🐬🐳", "pass\xffword",
		"\u1f8f\u1f8f", strings.Repeat("\u0345", 200), strings.Repeat("x", 129),
	} {
		f.Add(s, "alice@example.com")
	}
	p := DefaultPolicy().WithBlocklist(loadShipped(f))
	msgs := policyMessages(f, p)
	f.Fuzz(func(t *testing.T, pw, ctxWord string) {
		err := p.Check(pw, ctxWord)
		if err == nil {
			return
		}
		var pe *PolicyError
		if !errors.As(err, &pe) {
			t.Fatalf("Check() = %v, want nil or *PolicyError", err)
		}
		want, known := msgs[pe.Reason]
		if !known {
			t.Fatalf("unknown reason %q", pe.Reason)
		}
		// The message is the fixed one for the reason: it cannot echo pw.
		if pe.Message != want {
			t.Fatalf("message %q, want the fixed %s message", pe.Message, pe.Reason)
		}
	})
}

// TestNFKCShrinkBound guards the shortcut in Check that rejects over-long input
// before normalising: it assumes NFKC composes at most 4 code points into one,
// i.e. no code point has a canonical decomposition longer than 4. A future
// Unicode table in x/text that breaks this would make the shortcut unsound.
func TestNFKCShrinkBound(t *testing.T) {
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		s := string(r)
		if norm.NFD.IsNormalString(s) {
			continue
		}
		if n := utf8.RuneCountInString(norm.NFD.String(s)); n > 4 {
			t.Fatalf("U+%04X decomposes into %d code points; Check's pre-normalisation bound assumes at most 4", r, n)
		}
	}
}

func TestPolicyMaxLengthCeiling(t *testing.T) {
	p := DefaultPolicy()
	p.Blocklist = false
	p.MaxLength = 10000 // Validate reports it; Check holds the ceiling anyway.
	var pe *PolicyError
	if err := p.Check(strings.Repeat("ab", MaxLengthCeiling/2)); err != nil {
		t.Fatalf("Check(%d chars) = %v, want nil", MaxLengthCeiling, err)
	}
	if err := p.Check(strings.Repeat("ab", MaxLengthCeiling/2) + "c"); !errors.As(err, &pe) || pe.Reason != ReasonTooLong {
		t.Fatalf("Check(%d chars) = %v, want too_long", MaxLengthCeiling+1, err)
	}
}
