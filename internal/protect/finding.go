package protect

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/problem"
)

// Kind names what a Finding is about. The set is closed: audit events and
// dashboards match on these names.
type Kind string

// Finding kinds.
const (
	// KindSchema: a request value does not match its schema (type, format,
	// length, pattern, enum, required, …).
	KindSchema Kind = "schema"
	// KindUnknownProperty: a request body property the schema closes out
	// (additionalProperties false) — mass assignment.
	KindUnknownProperty Kind = "unknown_property"
	// KindReadOnlyProperty: a readOnly property in a request body — mass assignment.
	KindReadOnlyProperty Kind = "read_only_property"
	// KindJSONLimit: a request body over a JSON shape limit (Finding.Limit says which).
	KindJSONLimit Kind = "json_limit"
	// KindMalformed: a body that is not what its content type says (bad JSON).
	KindMalformed Kind = "malformed_body"
	// KindBodyTooLarge: a body over the route's size bound.
	KindBodyTooLarge Kind = "body_too_large"
	// KindContentType: a request content type the operation does not declare.
	KindContentType Kind = "content_type"
	// KindOperation: a method the document does not declare for this path.
	KindOperation Kind = "undocumented_operation"
	// KindWAF: the WAF's anomaly score reached the route's threshold.
	KindWAF Kind = "waf"
	// KindUndeclaredProperty: a response property the response schema does not
	// declare (excessive data exposure).
	KindUndeclaredProperty Kind = "undeclared_property"
	// KindUndeclaredResponse: a response status or content type the document
	// does not declare; its body is not passed on in filter or block mode.
	KindUndeclaredResponse Kind = "undeclared_response"
	// KindSecret: a secret in a response body (Finding.Reason names its type).
	KindSecret Kind = "secret"
	// KindUnreadable: a response body that must be judged but cannot be read
	// whole (compressed, too large, malformed).
	KindUnreadable Kind = "unreadable_response"
)

// Action is what protection did about its findings.
type Action string

// Actions.
const (
	// ActionBlocked: the request was refused or the response replaced by an error.
	ActionBlocked Action = "blocked"
	// ActionReported: the findings are for the audit log only; the message went on
	// unchanged.
	ActionReported Action = "reported"
	// ActionFiltered: undeclared response properties were removed.
	ActionFiltered Action = "filtered"
	// ActionRedacted: secrets in the response were replaced by a mask (undeclared
	// properties may also have been removed).
	ActionRedacted Action = "redacted"
)

// maxExcerpt bounds Finding.Excerpt, in runes before masking.
const maxExcerpt = 24

// Finding is one thing protection noticed. It carries what an audit event needs
// and never the offending input: Excerpt is at most a short, masked prefix.
type Finding struct {
	Kind Kind `json:"kind"`
	// Field is where: "body.items[2].quantity", "query.q", "header.Idempotency-Key",
	// "path.id", or "request" when the WAF judged the whole request.
	Field string `json:"field,omitempty"`
	// Reason is a short fixed phrase ("must be at most 200 characters", "aws_access_key").
	Reason string `json:"reason,omitempty"`
	// Limit names the JSON limit for KindJSONLimit: depth, array_length,
	// string_length or keys.
	Limit string `json:"limit,omitempty"`
	// RuleIDs are the matched WAF rules (KindWAF), lowest first.
	RuleIDs []int `json:"rule_ids,omitempty"`
	// Excerpt is a masked hint of the value: its first few characters then "…".
	Excerpt string `json:"excerpt,omitempty"`
}

// LogValue keeps findings short in logs; the excerpt is already masked.
func (f Finding) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("kind", string(f.Kind))}
	if f.Field != "" {
		attrs = append(attrs, slog.String("field", f.Field))
	}
	if f.Reason != "" {
		attrs = append(attrs, slog.String("reason", f.Reason))
	}
	if f.Limit != "" {
		attrs = append(attrs, slog.String("limit", f.Limit))
	}
	if len(f.RuleIDs) > 0 {
		attrs = append(attrs, slog.Any("rule_ids", f.RuleIDs))
	}
	return slog.GroupValue(attrs...)
}

// Violation is CheckRequest's answer when a request is not clean.
type Violation struct {
	// Status is the HTTP status to answer with when Action is ActionBlocked:
	// 400 (schema, limits, malformed), 403 (WAF), 405, 413 or 415.
	Status int
	// Action is ActionBlocked (answer with Problem) or ActionReported (a
	// report-only WAF hit: record it and proxy the request unchanged).
	Action Action
	// Findings are what was found, the deciding one first.
	Findings []Finding
	// AnomalyScore is the WAF's inbound anomaly score, when the WAF ran.
	AnomalyScore int
}

// Blocked reports whether the request must be refused.
func (v *Violation) Blocked() bool { return v != nil && v.Action == ActionBlocked }

// RuleIDs gathers the WAF rule ids of every finding.
func (v *Violation) RuleIDs() []int {
	var ids []int
	for _, f := range v.Findings {
		ids = append(ids, f.RuleIDs...)
	}
	return ids
}

// Problem is the RFC 9457 answer for a blocked request. It names the failing
// fields and fixed reasons; it never quotes the input and never lists WAF rules
// (an attacker tuning a payload learns nothing from the answer).
func (v *Violation) Problem() *problem.Details {
	switch v.Status {
	case http.StatusForbidden:
		return problem.New(http.StatusForbidden, "request-blocked", "Request blocked", "the request looks like an attack")
	case http.StatusMethodNotAllowed:
		return problem.New(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", "")
	case http.StatusRequestEntityTooLarge:
		return problem.New(http.StatusRequestEntityTooLarge, "too-large", "Request body too large", "")
	case http.StatusUnsupportedMediaType:
		return problem.New(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type", "the content type is not accepted here")
	}
	p := problem.New(http.StatusBadRequest, "invalid-request", "Invalid request", "the request does not match the API description")
	for i, f := range v.Findings {
		if i == maxProblemFields {
			break
		}
		reason := f.Reason
		switch f.Kind {
		case KindUnknownProperty:
			reason = "unknown property"
		case KindReadOnlyProperty:
			reason = "read-only property"
		case KindJSONLimit:
			reason = "exceeds the " + strings.ReplaceAll(f.Limit, "_", " ") + " limit"
		}
		p.Errors = append(p.Errors, problem.FieldError{Field: f.Field, Reason: reason})
	}
	return p
}

// maxProblemFields bounds the field errors in one problem.
const maxProblemFields = 10

// Outcome is FilterResponse's answer when it found something.
type Outcome struct {
	// Action is what happened to the response: ActionFiltered or ActionRedacted
	// (body rewritten, Content-Length updated), ActionBlocked (the gateway must
	// answer 502 instead; the body has been closed), ActionReported (unchanged).
	Action Action
	// Findings are the dropped properties and the secrets, in body order. A
	// response with many is summarised: at most maxFindings are kept and
	// Truncated says so.
	Findings  []Finding
	Truncated bool
}

// Blocked reports whether the response must be replaced by an error.
func (o *Outcome) Blocked() bool { return o != nil && o.Action == ActionBlocked }

// maxFindings bounds the findings one message carries into an audit event.
const maxFindings = 32

type findings struct {
	list      []Finding
	truncated bool
	count     int
}

func (fs *findings) add(f Finding) {
	fs.count++
	if len(fs.list) >= maxFindings {
		fs.truncated = true
		return
	}
	fs.list = append(fs.list, f)
}

// mask returns a safe excerpt of s: its first keep runes (fewer for short
// values) followed by "…", control characters replaced. keep ≤ 0 masks entirely.
func mask(s string, keep int) string {
	if keep > maxExcerpt {
		keep = maxExcerpt
	}
	// Never show more than a third of a value: a short secret stays hidden.
	if n := utf8.RuneCountInString(s) / 3; keep > n {
		keep = n
	}
	var b strings.Builder
	i := 0
	for _, r := range s {
		if i >= keep {
			break
		}
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			r = '?'
		}
		b.WriteRune(r)
		i++
	}
	b.WriteString("…")
	return b.String()
}

// fieldPath builds "body.a.b[3]" style paths.
func joinField(parent, key string) string {
	if key == "" {
		return parent
	}
	return parent + "." + safeKey(key)
}

func indexField(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// safeKey keeps a property name printable and short: it is attacker-chosen and
// ends up in problems and audit events.
func safeKey(k string) string {
	const maxKey = 64
	clean := true
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			clean = false
			break
		}
	}
	if clean && len(k) <= maxKey {
		return k
	}
	var b strings.Builder
	n := 0
	for _, r := range k {
		if n == maxKey {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' || r == utf8.RuneError {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
