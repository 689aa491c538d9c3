package config

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// nodeEntry is one key or sequence item of the YAML document.
type nodeEntry struct {
	path      string
	key       string // the mapping key; empty for sequence items
	keyLine   int    // the key's line; for a sequence item, the item's line
	valueLine int
	value     string // the scalar value, if the value is a scalar
	scalar    bool
	typed     bool     // the walk knew the Go type this value decodes into
	unknown   bool     // the key names no field of the struct it is in
	known     []string // for unknown keys: the keys that struct does take
}

// lineIndex maps YAML paths (in Problem.Path form) to source lines.
type lineIndex struct {
	entries []nodeEntry
	byPath  map[string]int // path → index into entries
	// byKeyLine and byValueLine map a line to the entries whose key or value is
	// on it, so that mapping decode errors to paths stays linear.
	byKeyLine, byValueLine map[int][]int
	// problems the decoder lets through silently: yaml.v3 truncates 1.5 to 1
	// when decoding into an integer.
	problems []Problem
	// blocking are problems that make decoding unsafe to attempt (see
	// maxMappingKeys); dups are the duplicate keys found, counted by dupCount.
	blocking []Problem
	dups     []Problem
}

// Bounds that keep decoding linear. yaml.v3 looks for duplicate keys by
// comparing every pair of keys in a mapping and records one error per equal
// pair, so a 1 MiB mapping of 200,000 keys (or of one key repeated) would take
// minutes or gigabytes. The walk, which is linear, refuses such files before the
// decoder sees them.
const (
	maxMappingKeys = 1000
	maxDuplicates  = 10
)

// blockingProblems returns the problems that stop decoding, if any.
func (ix *lineIndex) blockingProblems() []Problem {
	if len(ix.dups) > maxDuplicates {
		return append(ix.blocking, ix.dups...)
	}
	return ix.blocking
}

// buildIndex walks the document alongside the Go type it decodes into. It never
// follows aliases or merge keys: the walk stays linear in the size of the file
// whatever the document does (yaml.v3 guards its own decoder against alias
// bombs; this walk must not undo that).
func buildIndex(doc *yaml.Node) *lineIndex {
	ix := &lineIndex{byPath: map[string]int{}, byKeyLine: map[int][]int{}, byValueLine: map[int][]int{}}
	if doc == nil || doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return ix
	}
	ix.walk(doc.Content[0], "", reflect.TypeOf(Config{}))
	return ix
}

func (ix *lineIndex) add(e nodeEntry) {
	i := len(ix.entries)
	if _, dup := ix.byPath[e.path]; !dup {
		ix.byPath[e.path] = i
	}
	ix.byKeyLine[e.keyLine] = append(ix.byKeyLine[e.keyLine], i)
	ix.byValueLine[e.valueLine] = append(ix.byValueLine[e.valueLine], i)
	ix.entries = append(ix.entries, e)
}

func (ix *lineIndex) walk(n *yaml.Node, path string, t reflect.Type) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if t != nil && isInt(t.Kind()) && n.ShortTag() == "!!float" {
			if f, err := strconv.ParseFloat(n.Value, 64); err != nil || f != math.Trunc(f) {
				ix.problems = append(ix.problems, Problem{Path: path, Line: n.Line,
					Message: fmt.Sprintf("must be a whole number (got number %q)", clip(n.Value))})
			}
		}
	case yaml.MappingNode:
		var fields map[string]reflect.Type
		var names []string
		if t != nil && t.Kind() == reflect.Struct {
			fields, names = yamlFields(t)
		}
		if len(n.Content)/2 > maxMappingKeys {
			line := ix.line(path) // the key that holds this mapping
			if line == 0 {
				line = n.Line
			}
			ix.blocking = append(ix.blocking, Problem{Path: path, Line: line,
				Message: fmt.Sprintf("this mapping has %d keys; at most %d are allowed in one mapping", len(n.Content)/2, maxMappingKeys)})
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Value == "<<" {
				continue
			}
			if first, dup := seen[k.Value]; dup {
				ix.dups = append(ix.dups, Problem{Path: pathKey(path, k.Value), Line: k.Line,
					Message: fmt.Sprintf("duplicate key (first defined at line %d)", first)})
			} else {
				seen[k.Value] = k.Line
			}
			e := nodeEntry{
				path:      pathKey(path, k.Value),
				key:       k.Value,
				keyLine:   k.Line,
				valueLine: v.Line,
				value:     v.Value,
				scalar:    v.Kind == yaml.ScalarNode,
				typed:     t != nil,
			}
			var child reflect.Type
			switch {
			case fields != nil:
				ft, ok := fields[k.Value]
				if !ok {
					e.unknown, e.known = true, names
				}
				child = ft
			case t != nil && t.Kind() == reflect.Map:
				child = t.Elem()
			}
			e.typed = child != nil
			ix.add(e)
			ix.walk(v, e.path, child)
		}
	case yaml.SequenceNode:
		var child reflect.Type
		if t != nil && t.Kind() == reflect.Slice {
			child = t.Elem()
		}
		for i, v := range n.Content {
			e := nodeEntry{
				path:      pathIndex(path, i),
				keyLine:   v.Line,
				valueLine: v.Line,
				value:     v.Value,
				scalar:    v.Kind == yaml.ScalarNode,
				typed:     child != nil,
			}
			ix.add(e)
			ix.walk(v, e.path, child)
		}
	}
}

func isInt(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// yamlFields lists the YAML keys of a struct type and their field types.
func yamlFields(t reflect.Type) (map[string]reflect.Type, []string) {
	m := map[string]reflect.Type{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
		names = append(names, name)
	}
	return m, names
}

// line returns the line of path, or of its nearest ancestor present in the file
// (a missing required key is reported at the object that lacks it), or 0.
func (ix *lineIndex) line(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if i, ok := ix.byPath[p]; ok {
			return ix.entries[i].keyLine
		}
	}
	return 0
}

var (
	reLine       = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	reNotFound   = regexp.MustCompile(`^field (.+) not found in type \S+$`)
	reAlreadySet = regexp.MustCompile(`^field (.+) already set in type \S+$`)
	reDupKey     = regexp.MustCompile(`^mapping key "(.*)" already defined at line (\d+)$`)
	reUnmarshal  = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")
	reQuoted     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
)

// typeErrorProblems turns the messages of a *yaml.TypeError into Problems with a
// path and a readable message. skipped lists the paths of mappings that yaml.v3
// did not decode at all because they hold a duplicate key ("" for the root).
func (ix *lineIndex) typeErrorProblems(msgs []string) (ps []Problem, skipped []string) {
	if len(msgs) > maxProblems {
		// Past this many, more detail helps nobody; finish reports the count.
		msgs = msgs[:maxProblems+1]
	}
	for _, msg := range msgs {
		p, dup := ix.typeErrorProblem(msg)
		ps = append(ps, p)
		if dup {
			skipped = append(skipped, parentPath(p.Path))
		}
	}
	return ps, skipped
}

func (ix *lineIndex) typeErrorProblem(msg string) (_ Problem, duplicate bool) {
	m := reLine.FindStringSubmatch(msg)
	if m == nil {
		return Problem{Message: msg}, false
	}
	line, _ := strconv.Atoi(m[1])
	rest := m[2]
	p := Problem{Line: line, Message: rest}

	if k := reNotFound.FindStringSubmatch(rest); k != nil {
		p.Message = fmt.Sprintf("unknown key %q", k[1])
		if e := ix.keyAt(line, k[1]); e != nil {
			p.Path = e.path
			p.Message = "unknown key"
			if s := suggest(k[1], e.known); s != "" {
				p.Message += fmt.Sprintf(" (did you mean %q?)", s)
			}
		}
		return p, false
	}
	if k := reAlreadySet.FindStringSubmatch(rest); k != nil {
		p.Message = fmt.Sprintf("duplicate key %q", k[1])
		if e := ix.keyAt(line, k[1]); e != nil {
			p.Path, p.Message = e.path, "duplicate key"
		}
		return p, false
	}
	if k := reDupKey.FindStringSubmatch(rest); k != nil {
		p.Message = fmt.Sprintf("duplicate key %q (first defined at line %s)", k[1], k[2])
		if e := ix.keyAt(line, k[1]); e != nil {
			p.Path = e.path
			p.Message = "duplicate key (first defined at line " + k[2] + ")"
		}
		return p, true
	}
	if k := reUnmarshal.FindStringSubmatch(rest); k != nil {
		got := yamlKindName(k[1])
		if k[2] != "" {
			got += " " + strconv.Quote(k[2])
		}
		p.Message = "must be " + goTypeName(k[3]) + " (got " + got + ")"
		if e := ix.valueAt(line, k[2], k[1] != "seq" && k[1] != "map"); e != nil {
			p.Path = e.path
		}
		return p, false
	}
	// A message from one of our own UnmarshalYAML methods (Duration).
	hint := ""
	if q := reQuoted.FindString(rest); q != "" {
		hint, _ = strconv.Unquote(q)
	}
	if e := ix.valueAt(line, hint, !strings.HasPrefix(rest, durationShapeMsg)); e != nil {
		p.Path = e.path
	}
	return p, false
}

// keyAt finds the mapping key named key on line.
func (ix *lineIndex) keyAt(line int, key string) *nodeEntry {
	for _, i := range ix.byKeyLine[line] {
		if e := &ix.entries[i]; e.key == key {
			return e
		}
	}
	return nil
}

// valueAt finds the entry whose value starts on line. Several may (a flow
// mapping such as "{a: 1, b: x}"; a mapping or list that starts on the line of
// its first key or item), so it prefers entries whose value is (or is not) a
// scalar as asked, whose Go type the walk knew, and then: among scalars the one
// matching hint (the possibly truncated value yaml.v3 quotes in its message);
// among lists and mappings the innermost, which comes last in document order.
func (ix *lineIndex) valueAt(line int, hint string, scalar bool) *nodeEntry {
	hint = strings.TrimSuffix(hint, "...")
	var first, match *nodeEntry
	better := func(e *nodeEntry) bool {
		if match == nil || e.typed && !match.typed {
			return true
		}
		return !scalar && e.typed == match.typed
	}
	for _, i := range ix.byValueLine[line] {
		e := &ix.entries[i]
		if first == nil {
			first = e
		}
		if e.scalar != scalar {
			continue
		}
		if scalar && e.typed && hint != "" && strings.HasPrefix(e.value, hint) {
			return e
		}
		if better(e) {
			match = e
		}
	}
	if match != nil {
		return match
	}
	return first
}

func yamlKindName(tag string) string {
	switch tag {
	case "str":
		return "string"
	case "int":
		return "integer"
	case "float":
		return "number"
	case "bool":
		return "boolean"
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	case "null":
		return "null"
	default:
		return "!!" + tag
	}
}

func goTypeName(t string) string {
	switch {
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case t == "uint8":
		return "a whole number from 0 to 255"
	case t == "uint32":
		return "a whole number from 0 to 4294967295"
	case strings.HasPrefix(t, "int"):
		return "a whole number"
	case strings.HasPrefix(t, "uint"):
		return "a non-negative whole number"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "config."):
		return "a mapping"
	default:
		return t
	}
}

// suggest returns the known key closest to key when it is close enough to be a
// likely typo.
func suggest(key string, known []string) string {
	best, bestD := "", 3
	sorted := append([]string(nil), known...)
	sort.Strings(sorted)
	for _, k := range sorted {
		if d := editDistance(strings.ToLower(key), k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
