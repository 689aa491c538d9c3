package password

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Length bounds, in Unicode code points after NFKC (NIST SP 800-63B counts each
// code point as one character).
const (
	// MinLengthFloor is the least MinLength a Policy enforces: NIST SP 800-63B
	// says verifiers SHALL require at least 8 characters.
	MinLengthFloor = 8
	// MaxLengthFloor is the least MaxLength a Policy enforces: NIST SP 800-63B
	// says verifiers SHOULD permit at least 64 characters.
	MaxLengthFloor = 64
	// MaxLengthCeiling bounds MaxLength. Why: a password is normalised and
	// hashed, so its size is a cost an attacker chooses; 4096 characters is far
	// beyond any passphrase a person or manager produces (and matches the
	// config's upper bound for identity.password.max_length).
	MaxLengthCeiling = 4096
	// minContextWordLen is the shortest context word that is checked; shorter
	// ones ("al", "bob") would reject too many good passwords by accident.
	minContextWordLen = 4

	defaultMinLength = 8
	defaultMaxLength = 128
)

// Reasons a PolicyError gives. They are stable: the HTTP layer and the apps
// switch on them.
const (
	ReasonTooShort    = "too_short"
	ReasonTooLong     = "too_long"
	ReasonCommon      = "common"
	ReasonContext     = "context"
	ReasonInvalidUTF8 = "invalid_utf8"
)

// PolicyError says why a new password was refused. Message is for the user: it
// says what to do and never contains the password or any part of it.
type PolicyError struct {
	// Reason is one of the Reason* constants.
	Reason string
	// Message is a user-facing sentence in English.
	Message string
}

// Error returns the reason and the message; like Message, it never contains the
// password.
func (e *PolicyError) Error() string { return "password: policy: " + e.Reason + ": " + e.Message }

// Policy decides which new passwords are acceptable, after NIST SP 800-63B
// §3.1.1.2: a minimum and a maximum length, no composition rules, any Unicode
// (including spaces and emoji), and no password from the common-password
// blocklist or built from context words such as the user's email.
//
// Start from DefaultPolicy and change the fields: it carries a loader that
// decompresses the blocklist once, on first use, and copies of the Policy share
// it. A Policy written as a literal has no loader and, when Blocklist is true,
// decompresses the list on every Check (correct, but milliseconds per call).
// Policies stay comparable with ==.
type Policy struct {
	// MinLength is the least number of characters. Zero, or anything below 8,
	// means 8 (the NIST floor).
	MinLength int
	// MaxLength is the greatest number of characters. Zero means 128; below 64
	// means 64 (NIST asks to permit at least 64); above 4096 means 4096.
	MaxLength int
	// Blocklist rejects passwords on the shipped common-password list
	// (case-insensitive).
	Blocklist bool

	list *lazyBlocklist
}

// lazyBlocklist loads a Blocklist once, on first use.
type lazyBlocklist struct {
	get func() (*Blocklist, error)
}

// DefaultPolicy returns the NIST SP 800-63B defaults: 8 to 128 characters,
// blocklist on. The blocklist is loaded on the first Check that needs it.
func DefaultPolicy() Policy {
	return Policy{
		MinLength: defaultMinLength,
		MaxLength: defaultMaxLength,
		Blocklist: true,
		list:      &lazyBlocklist{get: sync.OnceValues(LoadBlocklist)},
	}
}

// WithBlocklist returns a copy of p that checks against b (already loaded, for
// example shared between several policies). It does not change p.Blocklist.
func (p Policy) WithBlocklist(b *Blocklist) Policy {
	p.list = &lazyBlocklist{get: func() (*Blocklist, error) { return b, nil }}
	return p
}

// Validate reports every configured length that Check would not honour as
// written, joined into one error.
func (p Policy) Validate() error {
	var errs []error
	if p.MinLength != 0 && p.MinLength < MinLengthFloor {
		errs = append(errs, fmt.Errorf("min length %d is below the floor of %d", p.MinLength, MinLengthFloor))
	}
	if p.MaxLength != 0 && p.MaxLength < MaxLengthFloor {
		errs = append(errs, fmt.Errorf("max length %d is below the floor of %d", p.MaxLength, MaxLengthFloor))
	}
	if p.MaxLength > MaxLengthCeiling {
		errs = append(errs, fmt.Errorf("max length %d is above the ceiling of %d", p.MaxLength, MaxLengthCeiling))
	}
	if minLen, maxLen := p.lengths(); minLen > maxLen {
		errs = append(errs, fmt.Errorf("min length %d is above max length %d", minLen, maxLen))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("password: policy: %w", errors.Join(errs...))
}

// lengths returns the bounds Check enforces.
func (p Policy) lengths() (minLen, maxLen int) {
	minLen = max(p.MinLength, MinLengthFloor)
	maxLen = p.MaxLength
	if maxLen == 0 {
		maxLen = defaultMaxLength
	}
	maxLen = min(max(maxLen, MaxLengthFloor), MaxLengthCeiling)
	return minLen, maxLen
}

// Normalize returns the NFKC form of pw. Hash and Verify take the password as
// given, so callers normalise first: then "ｐａｓｓ" typed on a full-width
// keyboard and "pass" hash alike, as do composed and decomposed accents.
func Normalize(pw string) string {
	return norm.NFKC.String(pw)
}

// foldKey is the form used for case-insensitive comparisons: NFKC, then lower
// case.
func foldKey(s string) string {
	return strings.ToLower(norm.NFKC.String(s))
}

// Check returns nil when password is acceptable as a new password, or a
// *PolicyError saying why not. contextWords are words the password must not
// contain, such as the user's email address or name and the service's name;
// see contextKeys for how they are split. Only a failure to load the shipped
// blocklist returns another kind of error.
func (p Policy) Check(password string, contextWords ...string) error {
	if !utf8.ValidString(password) {
		return &PolicyError{Reason: ReasonInvalidUTF8,
			Message: "The password contains characters that could not be read. Type it again, or paste it from your password manager."}
	}
	minLen, maxLen := p.lengths()
	tooLong := &PolicyError{Reason: ReasonTooLong,
		Message: fmt.Sprintf("Use at most %d characters.", maxLen)}
	// Why before normalising: NFKC costs time in proportion to the input, and
	// the input is attacker-sized. A code point is at most 4 bytes and NFKC
	// composes at most 4 code points into one, so more than 16 bytes per
	// allowed character can never fit; 32 leaves a margin.
	if len(password) > 32*maxLen {
		return tooLong
	}

	normalized := Normalize(password)
	n := utf8.RuneCountInString(normalized)
	if n < minLen {
		return &PolicyError{Reason: ReasonTooShort,
			Message: fmt.Sprintf("Use at least %d characters. A few unrelated words make a long password that is easy to remember.", minLen)}
	}
	if n > maxLen {
		return tooLong
	}

	key := strings.ToLower(normalized)
	if p.Blocklist {
		list, err := p.blocklist()
		if err != nil {
			return err // "password: load blocklist: ..."
		}
		if list.containsKey(key) {
			return &PolicyError{Reason: ReasonCommon,
				Message: "This password is on a list of common passwords that attackers try first. Choose a different one; a few unrelated words work well."}
		}
	}
	for _, w := range contextKeys(contextWords) {
		if strings.Contains(key, w) {
			return &PolicyError{Reason: ReasonContext,
				Message: "Don't build your password from your email address, your name or the name of this service. Choose a different one."}
		}
	}
	return nil
}

// blocklist returns p's list, loading it without caching when p was written
// as a literal.
func (p Policy) blocklist() (*Blocklist, error) {
	if p.list != nil {
		return p.list.get()
	}
	return LoadBlocklist()
}

// contextKeys folds each context word (NFKC, lower case) and splits it into the
// keys a password must not contain, each at least 4 characters long:
//   - the whole word ("alice.smith@example.com", "acme notes");
//   - for an email address, the local part and its pieces split at anything
//     that is not a letter or digit ("alice.smith", "alice", "smith"), and the
//     domain's labels except the last ("example" but not "com");
//   - for any other word, its pieces split the same way ("acme", "notes").
//
// Invalid UTF-8 in a context word is ignored (it cannot occur in a valid
// password anyway).
func contextKeys(words []string) []string {
	var keys []string
	add := func(s string) {
		if utf8.RuneCountInString(s) >= minContextWordLen {
			keys = append(keys, s)
		}
	}
	addPieces := func(s string) {
		for _, piece := range strings.FieldsFunc(s, notLetterOrDigit) {
			if piece != s {
				add(piece)
			}
		}
	}
	for _, w := range words {
		if !utf8.ValidString(w) {
			continue
		}
		w = strings.TrimSpace(foldKey(w))
		add(w)
		local, domain, isEmail := cutLast(w, "@")
		if !isEmail {
			addPieces(w)
			continue
		}
		add(local)
		addPieces(local)
		labels := strings.Split(domain, ".")
		if len(labels) > 1 {
			labels = labels[:len(labels)-1]
		}
		for _, l := range labels {
			add(l)
		}
	}
	return keys
}

func notLetterOrDigit(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }

// cutLast is strings.Cut at the last occurrence of sep.
func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
