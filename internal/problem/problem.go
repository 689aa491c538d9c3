// Package problem writes RFC 9457 problem details: the one shape every error
// that Gatehouse itself produces takes on the wire, whichever part produced it.
//
// It must never put internal error text into a response: callers pass the
// public title and detail; the cause is logged by them under the request id.
package problem

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// TypeBase prefixes every problem type URI; the rest names the problem.
const TypeBase = "https://gatehouse.dev/problems/"

// ContentType is the media type of problem details.
const ContentType = "application/problem+json"

// Details is an RFC 9457 problem details object with Gatehouse's extensions.
type Details struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter time.Duration `json:"-"`
}

// FieldError names one bad input field.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// New returns a problem whose type is TypeBase+slug.
func New(status int, slug, title, detail string) *Details {
	return &Details{Type: TypeBase + slug, Title: title, Status: status, Detail: detail}
}

func (d *Details) Error() string { return d.Title + ": " + d.Detail }

// Write sends d with requestID. A 401 gets a Bearer challenge unless the caller
// set one (RFC 6750 §3).
func Write(w http.ResponseWriter, d *Details, requestID string) {
	cp := *d
	cp.RequestID = requestID
	if cp.RetryAfter > 0 {
		w.Header().Set("Retry-After", RetryAfter(cp.RetryAfter))
	}
	if cp.Status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	JSON(w, cp.Status, ContentType, cp)
}

// RetryAfter formats d as whole seconds, rounded up, at least 1.
func RetryAfter(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}

// JSON writes v as a JSON response with the given status and content type.
func JSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		w.Header().Set("Content-Type", ContentType)
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"type":"` + TypeBase + `internal","title":"Internal error","status":500}` + "\n"))
		return
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
