package password

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
	"slices"
	"strings"
)

// commonPasswordsGz is the shipped list; see blocklist/README.md for where it
// comes from and how to regenerate it.
//
//go:embed blocklist/common-passwords.txt.gz
var commonPasswordsGz []byte

// maxBlocklistBytes bounds the decompressed list (the shipped one is ~400 KiB)
// so a corrupted or replaced file cannot balloon memory at start-up.
const maxBlocklistBytes = 16 << 20

// Blocklist is a set of common passwords, stored normalised (NFKC) and lower
// case. It is immutable after loading and safe for concurrent use.
type Blocklist struct {
	// sorted holds the entries in byte order for binary search. Each entry is a
	// substring of one backing string, so the list costs that string plus the
	// slice headers.
	sorted []string
}

// LoadBlocklist decompresses the shipped common-password list (about 49,000
// entries; see blocklist/README.md). It takes a few milliseconds: build it once
// and share it (DefaultPolicy does this lazily).
func LoadBlocklist() (*Blocklist, error) {
	b, err := parseBlocklist(bytes.NewReader(commonPasswordsGz))
	if err != nil {
		return nil, fmt.Errorf("password: load blocklist: %w", err)
	}
	return b, nil
}

// parseBlocklist reads a gzip-compressed list, one password per line; blank
// lines are ignored.
func parseBlocklist(r io.Reader) (*Blocklist, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	raw, err := io.ReadAll(io.LimitReader(zr, maxBlocklistBytes+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxBlocklistBytes {
		return nil, fmt.Errorf("list is larger than %d bytes", maxBlocklistBytes)
	}
	// Normalise exactly as Check does, so an entry written in another form
	// still matches.
	text := foldKey(string(raw))
	entries := make([]string, 0, strings.Count(text, "\n")+1)
	for line := range strings.Lines(text) {
		// TrimRight returns a substring: entries share text's memory.
		line = strings.TrimRight(line, "\r\n")
		if line != "" {
			entries = append(entries, line)
		}
	}
	slices.Sort(entries)
	entries = slices.Compact(entries)
	return &Blocklist{sorted: entries}, nil
}

// Len returns the number of distinct entries.
func (b *Blocklist) Len() int { return len(b.sorted) }

// Contains reports whether password, normalised and lower-cased, is on the
// list.
func (b *Blocklist) Contains(password string) bool {
	return b.containsKey(foldKey(password))
}

// containsKey looks up an already folded key.
func (b *Blocklist) containsKey(key string) bool {
	_, found := slices.BinarySearch(b.sorted, key)
	return found
}
