package config

import (
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// File is the file name given to Load or Parse; empty for problems returned
	// by Validate on a Config built in code.
	File string
	// Path is the YAML path of the offending value, e.g. "tokens.access_ttl",
	// "routes[2].path" or "upstreams.api.url"; empty for whole-file problems
	// (syntax errors, size). Map keys that are not plain words are quoted:
	// plans["a b"].
	Path string
	// Line is the 1-based line in File, or 0 when unknown (the value came from the
	// environment, from a default, or the config was built in code).
	Line int
	// Message says what is wrong and, where it helps, what is expected.
	Message string
}

// String formats the problem as "file:line: path: message", leaving out the parts
// that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.File != "" && p.Line > 0:
		b.WriteString(p.File + ":" + strconv.Itoa(p.Line) + ": ")
	case p.File != "":
		b.WriteString(p.File + ": ")
	case p.Line > 0:
		b.WriteString("line " + strconv.Itoa(p.Line) + ": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem found in one configuration. It is the error Load and
// Parse return for anything wrong with the content of a file; its message has one
// problem per line, e.g.
//
//	gatehouse.yaml:12: tokens.access_ttl: must be at most 1h (got 2h)
//
// Callers get at the list with errors.As using either a Problems or a *Problems
// target.
type Problems []Problem

// Error returns one problem per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// As lets errors.As fill a *Problems target as well as a Problems one.
func (ps Problems) As(target any) bool {
	if t, ok := target.(**Problems); ok {
		c := ps
		*t = &c
		return true
	}
	return false
}

// Check is an extra validation step run after Validate, for rules that belong to
// another package (the gateway compiles CEL rules this way). It must be pure like
// Validate; the problems it returns get YAML lines like Validate's own when run
// through LoadWith or ParseWith.
type Check func(*Config) []Problem

// pathKey appends a map key to a YAML path: ".key" for plain words, otherwise a
// quoted index (`["a.b"]`) so that paths stay unambiguous.
func pathKey(parent, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			plain = false
			break
		}
	}
	if !plain {
		return parent + "[" + strconv.Quote(key) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// pathIndex appends a sequence index to a YAML path: "routes[2]".
func pathIndex(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// parentPath returns the path one level up ("routes[2].path" → "routes[2]" →
// "routes" → ""), understanding quoted keys.
func parentPath(p string) string {
	if p == "" {
		return ""
	}
	if strings.HasSuffix(p, "]") {
		// Find the '[' that opens the last index; quoted keys may contain '[' so
		// scan for the matching open bracket outside quotes.
		if i := lastIndexOpen(p); i >= 0 {
			return p[:i]
		}
		return ""
	}
	if i := strings.LastIndexAny(p, ".]"); i >= 0 {
		if p[i] == ']' {
			return p[:i+1]
		}
		return p[:i]
	}
	return ""
}

// lastIndexOpen finds the '[' that opens the trailing [...] of p.
func lastIndexOpen(p string) int {
	inQuote := false
	open := -1
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '[':
			open = i
		}
	}
	return open
}
