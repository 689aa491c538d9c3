package ratelimit

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Response field names (draft-ietf-httpapi-ratelimit-headers, RFC 9110).
const (
	HeaderPolicy     = "RateLimit-Policy"
	HeaderRateLimit  = "RateLimit"
	HeaderRetryAfter = "Retry-After"
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
	h.Del(HeaderPolicy)
	h.Del(HeaderRateLimit)
	AddHeaders(h, name, l, d)
}

// AddHeaders appends one policy to the RateLimit-Policy and RateLimit lists
// (comma-joined members of one field line each), so a response can report
// several limits, e.g. a per-second rate and a daily quota. When d denies,
// Retry-After becomes the larger of its current value and d's.
func AddHeaders(h http.Header, name string, l Limit, d Decision) {
	sfName := sfString(name)

	var p strings.Builder
	p.WriteString(sfName)
	p.WriteString(";q=")
	p.WriteString(strconv.FormatInt(l.EffectiveBurst(), 10))
	p.WriteString(";w=")
	p.WriteString(strconv.FormatInt(ceilSeconds(l.Window()), 10))
	appendMember(h, HeaderPolicy, p.String())

	var r strings.Builder
	r.WriteString(sfName)
	r.WriteString(";r=")
	r.WriteString(strconv.FormatInt(max(d.Remaining, 0), 10))
	r.WriteString(";t=")
	r.WriteString(strconv.FormatInt(ceilSeconds(d.ResetAfter), 10))
	appendMember(h, HeaderRateLimit, r.String())

	if !d.Allowed {
		secs := max(ceilSeconds(d.RetryAfter), 1)
		if cur, err := strconv.ParseInt(h.Get(HeaderRetryAfter), 10, 64); err == nil && cur > secs {
			secs = cur
		}
		h.Set(HeaderRetryAfter, strconv.FormatInt(secs, 10))
	}
}

func appendMember(h http.Header, field, member string) {
	if cur := h.Get(field); cur != "" {
		h.Set(field, cur+", "+member)
		return
	}
	h.Set(field, member)
}

// ceilSeconds rounds d up to whole seconds; negative durations give 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// sfString serialises s as a Structured Field String (RFC 9651 §4.1.6):
// quoted, with '"' and '\' escaped. Bytes outside printable ASCII, which an
// sf-string cannot carry, become '_' so a policy name can never break or
// inject into the field.
func sfString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			b.WriteByte('_')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
