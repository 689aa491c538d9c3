package protect

import "strings"

// JSONLimits bound the shape of a JSON request body. They are checked by one
// pass over the raw bytes before any parser builds a value, so a hostile body
// (a million nested arrays, a 100 MB string, an object with a million keys)
// costs a scan, not an allocation storm. Zero fields take the defaults.
type JSONLimits struct {
	// MaxDepth bounds nesting of objects and arrays. Zero means 32.
	MaxDepth int
	// MaxArrayLen bounds the elements of one array. Zero means 10,000.
	MaxArrayLen int
	// MaxStringLen bounds one string (key or value), in encoded bytes between
	// the quotes. Zero means 1 MiB.
	MaxStringLen int
	// MaxKeys bounds the members of one object. Zero means 1,000.
	MaxKeys int
}

// Default JSON limits.
const (
	DefaultMaxDepth     = 32
	DefaultMaxArrayLen  = 10000
	DefaultMaxStringLen = 1 << 20
	DefaultMaxKeys      = 1000
)

// Limit names used in Finding.Limit.
const (
	LimitDepth     = "depth"
	LimitArrayLen  = "array_length"
	LimitStringLen = "string_length"
	LimitKeys      = "keys"
)

func (l JSONLimits) withDefaults() JSONLimits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxArrayLen <= 0 {
		l.MaxArrayLen = DefaultMaxArrayLen
	}
	if l.MaxStringLen <= 0 {
		l.MaxStringLen = DefaultMaxStringLen
	}
	if l.MaxKeys <= 0 {
		l.MaxKeys = DefaultMaxKeys
	}
	return l
}

type jsonFrame struct {
	array    bool
	count    int // commas seen: members so far are count+1 once one has started
	key      [2]int
	hasValue bool
}

// CheckJSON scans body once and returns a KindJSONLimit finding for the first
// limit it exceeds, or nil. It does not validate syntax (the parser that runs
// after it does); on malformed input it stops or skips without failing, and it
// never allocates more than its depth-bounded stack.
func (l JSONLimits) CheckJSON(body []byte) *Finding {
	l = l.withDefaults()
	stack := make([]jsonFrame, 0, min(l.MaxDepth, 64))
	wantKey := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case '{', '[':
			if len(stack) > 0 {
				stack[len(stack)-1].hasValue = true
			}
			if len(stack) >= l.MaxDepth {
				return l.finding(LimitDepth, body, stack, "nesting deeper than the limit")
			}
			stack = append(stack, jsonFrame{array: c == '['})
			wantKey = c == '{'
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			wantKey = false
		case ',':
			if len(stack) == 0 {
				continue
			}
			top := &stack[len(stack)-1]
			top.count++
			if top.array && top.count+1 > l.MaxArrayLen {
				return l.finding(LimitArrayLen, body, stack, "more array elements than the limit")
			}
			if !top.array {
				if top.count+1 > l.MaxKeys {
					// Name the object, not whichever member came last.
					top.key = [2]int{}
					return l.finding(LimitKeys, body, stack, "more object members than the limit")
				}
				wantKey = true
			}
		case '"':
			start := i + 1
			j := start
			for j < len(body) && body[j] != '"' {
				if body[j] == '\\' {
					j++
				}
				j++
			}
			if j > len(body) {
				j = len(body)
			}
			if len(stack) > 0 {
				stack[len(stack)-1].hasValue = true
			}
			if wantKey && len(stack) > 0 {
				stack[len(stack)-1].key = [2]int{start, j}
				wantKey = false
			}
			if j-start > l.MaxStringLen {
				return l.finding(LimitStringLen, body, stack, "a string longer than the limit")
			}
			i = j
		}
	}
	return nil
}

func (l JSONLimits) finding(limit string, body []byte, stack []jsonFrame, reason string) *Finding {
	return &Finding{Kind: KindJSONLimit, Limit: limit, Field: framePath(body, stack), Reason: reason}
}

// framePath renders the stack as "body.a.b[3]"; deep stacks are cut after 8
// segments, since a path of attacker-chosen keys must stay short.
func framePath(body []byte, stack []jsonFrame) string {
	const maxSegs = 8
	var b strings.Builder
	b.WriteString("body")
	for i, f := range stack {
		if i >= maxSegs {
			b.WriteString("…")
			break
		}
		if f.array {
			b.WriteString(fieldIndexSuffix(f))
		} else if f.key[1] > f.key[0] {
			b.WriteString("." + safeKey(string(body[f.key[0]:f.key[1]])))
		}
	}
	return b.String()
}

func fieldIndexSuffix(f jsonFrame) string {
	return indexField("", f.count)
}
