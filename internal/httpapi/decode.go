package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxFieldLen bounds any single string field we accept; emails and passwords are
// far shorter, and nothing longer is hashed or stored.
const maxFieldLen = 4096

// decodeJSON decodes a JSON object body strictly: the content type must be JSON,
// unknown fields are errors (so a typo or an injected "roles" never passes
// silently), and nothing may follow the object.
func decodeJSON(r *http.Request, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return unsupportedMedia("application/json")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return badRequest("the body must be a single JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("the body must be a single JSON object")
	}
	return nil
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
		var m map[string]any
		dec := json.NewDecoder(r.Body)
		if err := dec.Decode(&m); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, err
			}
			return nil, oauthErr(http.StatusBadRequest, "invalid_request", "the body is not a JSON object")
		}
		if dec.More() {
			return nil, oauthErr(http.StatusBadRequest, "invalid_request", "the body must be a single JSON object")
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
