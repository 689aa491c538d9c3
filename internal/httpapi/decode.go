package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"unicode/utf8"
)

// maxFieldLen bounds any single string field we accept; emails and passwords are
// far shorter, and nothing longer is hashed or stored.
const maxFieldLen = 4096

// decodeJSON decodes a JSON object body strictly: the content type must be JSON,
// the body valid UTF-8, every member name exactly one of the struct's JSON names
// and given once (so a typo, an injected "roles", a differently-cased "EMAIL" or
// a second "email" never passes silently), and nothing may follow the object.
func decodeJSON(r *http.Request, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return unsupportedMedia("application/json")
	}
	b, err := readBody(r)
	if err != nil {
		return err
	}
	tb := bytes.TrimSpace(b)
	if len(tb) == 0 {
		return badRequest("the body is empty")
	}
	if string(tb) == "null" {
		return nil // no members: the caller's required-field checks name what is missing
	}
	keys, err := objectKeys(b)
	if err != nil {
		return err
	}
	known := jsonNames(v)
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if !known[k] {
			return badRequest("unknown field", FieldError{Field: truncate(k, 64), Reason: "unknown"})
		}
		if seen[k] {
			return badRequest("repeated field", FieldError{Field: k, Reason: "repeated"})
		}
		seen[k] = true
	}
	if err := json.Unmarshal(b, v); err != nil {
		return jsonError(err)
	}
	return nil
}

// readBody reads the (already size-capped) body and requires valid UTF-8:
// encoding/json would otherwise replace bad bytes with U+FFFD, and we would
// store or hash a value the client never sent.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		return nil, badRequest("the body is not valid UTF-8")
	}
	return b, nil
}

// objectKeys returns the top-level member names of a JSON object, in order,
// requiring exactly one object and nothing after it.
func objectKeys(b []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	t, err := dec.Token()
	if err != nil {
		return nil, jsonError(err)
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return nil, badRequest("the body must be a JSON object")
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, jsonError(err)
		}
		k, _ := t.(string)
		keys = append(keys, k)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, jsonError(err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest("the body must be a single JSON object")
	}
	return keys, nil
}

// jsonNames are the exact JSON member names of a struct (pointer).
func jsonNames(v any) map[string]bool {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	out := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = true
	}
	return out
}

func jsonError(err error) error {
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return badRequest("the body is empty")
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("the body is not valid JSON")
	case errors.As(err, &te):
		f := te.Field
		if f == "" {
			return badRequest("the body must be a JSON object")
		}
		return badRequest("wrong type for "+f, FieldError{Field: f, Reason: "must be " + te.Type.String()})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if len(name) > 64 || !utf8.ValidString(name) {
			name = name[:min(len(name), 64)]
		}
		return badRequest("unknown field", FieldError{Field: name, Reason: "unknown"})
	}
	return badRequest("the body is not valid JSON")
}

func unsupportedMedia(want string) error {
	return newProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type", "send "+want)
}

// params reads an OAuth request's parameters from a form or JSON body.
// RFC 6749 §3.2: unknown parameters are ignored, repeated ones are an error.
func params(r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "send application/x-www-form-urlencoded or application/json")
	}
	switch mt {
	case "application/x-www-form-urlencoded":
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		v, err := url.ParseQuery(string(b))
		if err != nil {
			return nil, oauthErr(http.StatusBadRequest, "invalid_request", "the form body is malformed")
		}
		return checkParams(v)
	case "application/json":
		b, err := readBody(r)
		if err != nil {
			var p *Problem
			if errors.As(err, &p) {
				return nil, oauthErr(http.StatusBadRequest, "invalid_request", "the body is not valid UTF-8")
			}
			return nil, err
		}
		keys, err := objectKeys(b)
		if err != nil {
			return nil, oauthErr(http.StatusBadRequest, "invalid_request", "the body must be a single JSON object")
		}
		seen := make(map[string]bool, len(keys))
		for _, k := range keys {
			if seen[k] {
				return nil, oauthErr(http.StatusBadRequest, "invalid_request", fmt.Sprintf("parameter %q is repeated", truncate(k, 64)))
			}
			seen[k] = true
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, oauthErr(http.StatusBadRequest, "invalid_request", "the body is not a JSON object")
		}
		v := url.Values{}
		for k, x := range m {
			switch x := x.(type) {
			case string:
				v.Set(k, x)
			case nil:
			default:
				return nil, oauthErr(http.StatusBadRequest, "invalid_request", fmt.Sprintf("parameter %q must be a string", truncate(k, 64)))
			}
		}
		return checkParams(v)
	}
	return nil, oauthErr(http.StatusBadRequest, "invalid_request", "send application/x-www-form-urlencoded or application/json")
}

func checkParams(v url.Values) (url.Values, error) {
	for k, vs := range v {
		if len(vs) > 1 {
			return nil, oauthErr(http.StatusBadRequest, "invalid_request", fmt.Sprintf("parameter %q is repeated", truncate(k, 64)))
		}
		if len(vs[0]) > maxFieldLen || !utf8.ValidString(vs[0]) {
			return nil, oauthErr(http.StatusBadRequest, "invalid_request", fmt.Sprintf("parameter %q is too long or not UTF-8", truncate(k, 64)))
		}
	}
	return v, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
