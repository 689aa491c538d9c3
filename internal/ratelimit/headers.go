package ratelimit

import (
	"net/http"
	"strconv"
	"time"
)

// Response field names (draft-ietf-httpapi-ratelimit-headers, RFC 9110).
const (
	HeaderPolicy     = "RateLimit-Policy"
	HeaderRateLimit  = "RateLimit"
	HeaderRetryAfter = "Retry-After"
)

// Canonical map keys (http.CanonicalHeaderKey of the names above), used to
// index http.Header directly without re-canonicalising on every response.
const (
	keyPolicy     = "Ratelimit-Policy"
	keyRateLimit  = "Ratelimit"
	keyRetryAfter = "Retry-After"
)

// SetHeaders writes the RateLimit-Policy and RateLimit fields for one policy,
// replacing any already present, and Retry-After when d denies.
//
//	RateLimit-Policy: "name";q=100;w=3600
//	RateLimit: "name";r=42;t=30
//
// q is the quota (the burst for a GCRA limit), w the seconds the quota spans
// (l.Window(), rounded up), r the remaining quota and t the seconds until it is
// fully restored (rounded up). For a fixed-window quota pass
// Limit{Count: quota, Period: window}. Retry-After is whole seconds, rounded
// up, at least 1. Characters of name that a Structured Field String cannot hold
// (outside printable ASCII) are replaced with '_'.
func SetHeaders(h http.Header, name string, l Limit, d Decision) {
	delete(h, keyPolicy)
	delete(h, keyRateLimit)
	AddHeaders(h, name, l, d)
}

// AddHeaders appends one policy to the RateLimit-Policy and RateLimit lists
// (comma-joined members of one field line each), so a response can report
// several limits, e.g. a per-second rate and a daily quota. When d denies,
// Retry-After becomes the larger of its current value and d's.
func AddHeaders(h http.Header, name string, l Limit, d Decision) {
	NewPolicy(name, l).AddHeaders(h, d)
}

// Policy is one limit's header members formatted once, for a limit that is
// reported on many responses (a route's): the RateLimit-Policy member whole
// and the RateLimit member's name. Its AddHeaders is AddHeaders without
// re-formatting what does not change between responses.
type Policy struct {
	member string // "name";q=100;w=3600
	name   string // "name"
}

// NewPolicy formats the fixed parts of the headers for limit l named name.
func NewPolicy(name string, l Limit) Policy {
	var buf [160]byte
	b := appendSFString(buf[:0], name)
	p := Policy{name: string(b)}
	b = append(b, ";q="...)
	b = strconv.AppendInt(b, l.EffectiveBurst(), 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, ceilSeconds(l.Window()), 10)
	p.member = string(b)
	return p
}

// AddHeaders is the package's AddHeaders for this policy.
func (p Policy) AddHeaders(h http.Header, d Decision) {
	var buf [96]byte
	b := append(buf[:0], p.name...)
	b = append(b, ";r="...)
	b = strconv.AppendInt(b, max(d.Remaining, 0), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, ceilSeconds(d.ResetAfter), 10)
	pol, rl := h[keyPolicy], h[keyRateLimit]
	if len(pol) == 0 && len(rl) == 0 {
		// The usual case, one limit on the response: one backing array for
		// both fields.
		vals := make([]string, 2)
		vals[0], vals[1] = p.member, string(b)
		h[keyPolicy], h[keyRateLimit] = vals[0:1:1], vals[1:2:2]
	} else {
		appendMember(h, keyPolicy, p.member)
		appendMember(h, keyRateLimit, string(b))
	}
	if !d.Allowed {
		secs := max(ceilSeconds(d.RetryAfter), 1)
		if cur := h[keyRetryAfter]; len(cur) > 0 {
			if v, err := strconv.ParseInt(cur[0], 10, 64); err == nil && v > secs {
				return
			}
		}
		h[keyRetryAfter] = []string{strconv.FormatInt(secs, 10)}
	}
}

// appendMember adds member to the list in field, keeping one field line.
func appendMember(h http.Header, key, member string) {
	if cur := h[key]; len(cur) > 0 && cur[0] != "" {
		h[key] = []string{cur[0] + ", " + member}
		return
	}
	h[key] = []string{member}
}

// ceilSeconds rounds d up to whole seconds; negative durations give 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// appendSFString appends s as a Structured Field String (RFC 9651 §4.1.6):
// quoted, with '"' and '\' escaped. Bytes outside printable ASCII, which an
// sf-string cannot carry, become '_' so a policy name can never break or
// inject into the field.
func appendSFString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c > 0x7e:
			b = append(b, '_')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
