package protect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/problem"
)

// FilterResponse judges resp before any byte of it reaches the client; call it
// from httputil.ReverseProxy.ModifyResponse. It may replace resp.Body (and then
// sets Content-Length and drops ETag and digests that no longer match).
//
// It returns nil, nil when there is nothing to say. An Outcome with Blocked()
// means the gateway must answer 502 instead (return an error from
// ModifyResponse); its findings go to the audit log either way. The error is
// only for a body that failed to read.
func (rt *Route) FilterResponse(resp *http.Response) (*Outcome, error) {
	if !rt.ReadsResponseBody() || resp.Body == nil || resp.Body == http.NoBody {
		return nil, nil
	}
	var op *operation
	if rt.opts.Response != ResponseOff && resp.Request != nil {
		op = rt.ops[resp.Request.Method]
		if op == nil && resp.Request.Method == http.MethodHead {
			return nil, nil
		}
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	scan := rt.opts.Secrets != SecretsOff && textual(mt)
	if op == nil && !scan {
		return nil, nil
	}
	var fs findings
	blocking := rt.opts.Response == ResponseFilter || rt.opts.Response == ResponseBlock ||
		rt.opts.Secrets == SecretsRedact || rt.opts.Secrets == SecretsBlock

	if enc := resp.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		fs.add(Finding{Kind: KindUnreadable, Field: "body", Reason: "compressed body"})
		return rt.unreadable(resp, &fs, blocking), nil
	}
	orig := resp.Body
	b, err := io.ReadAll(io.LimitReader(orig, rt.opts.MaxResponseBytes+1))
	if err != nil {
		orig.Close()
		resp.Body = http.NoBody
		return nil, fmt.Errorf("protect: read response: %w", err)
	}
	if int64(len(b)) > rt.opts.MaxResponseBytes {
		fs.add(Finding{Kind: KindUnreadable, Field: "body", Reason: "body over the size limit"})
		if blocking {
			orig.Close()
			resp.Body = http.NoBody
			return &Outcome{Action: ActionBlocked, Findings: fs.list}, nil
		}
		// Report mode: hand on what was read and the unread rest, unchanged.
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(b), orig), orig}
		return &Outcome{Action: ActionReported, Findings: fs.list}, nil
	}
	orig.Close()
	out := b
	action := Action("")
	raise := func(a Action) {
		if rank(a) > rank(action) {
			action = a
		}
	}

	if op != nil && len(b) > 0 {
		byType, declared, noContent := op.responseShapes(resp.StatusCode)
		sh, known := mediaShape(byType, mt)
		switch {
		case !declared || noContent || !known:
			fs.add(Finding{Kind: KindUndeclaredResponse, Field: "status." + strconv.Itoa(resp.StatusCode), Reason: "status or content type not in the response description"})
			switch rt.opts.Response {
			case ResponseFilter:
				out = withheld(resp)
				raise(ActionFiltered)
			case ResponseBlock:
				raise(ActionBlocked)
			default:
				raise(ActionReported)
			}
		case isJSONType(mt) && sh != nil && !sh.open:
			var value any
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			if err := dec.Decode(&value); err != nil {
				fs.add(Finding{Kind: KindUnreadable, Field: "body", Reason: "not valid JSON"})
				if rt.opts.Response == ResponseReport {
					raise(ActionReported)
				} else {
					raise(ActionBlocked)
				}
				break
			}
			before := fs.count
			sh.filter(value, "body", &fs)
			if fs.count > before {
				switch rt.opts.Response {
				case ResponseFilter:
					enc, err := encodeJSON(value)
					if err != nil {
						raise(ActionBlocked)
						break
					}
					out = enc
					raise(ActionFiltered)
				case ResponseBlock:
					raise(ActionBlocked)
				default:
					raise(ActionReported)
				}
			}
		}
	}

	if scan && action != ActionBlocked {
		mtNow, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		var hits []secretHit
		scanSecrets(out, isJSONType(mtNow), func(h secretHit) {
			hits = append(hits, h)
			fs.add(Finding{Kind: KindSecret, Field: "body", Reason: h.typ, Excerpt: mask(string(out[h.start:h.end]), 4)})
		})
		if len(hits) > 0 {
			switch rt.opts.Secrets {
			case SecretsRedact:
				out = redactSecrets(out, hits)
				raise(ActionRedacted)
			case SecretsBlock:
				raise(ActionBlocked)
			default:
				raise(ActionReported)
			}
		}
	}

	if action == "" {
		setBody(resp, b, false)
		return nil, nil
	}
	if action == ActionBlocked {
		resp.Body = http.NoBody
		return &Outcome{Action: ActionBlocked, Findings: fs.list, Truncated: fs.truncated}, nil
	}
	setBody(resp, out, !bytes.Equal(out, b))
	return &Outcome{Action: action, Findings: fs.list, Truncated: fs.truncated}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

func rank(a Action) int {
	switch a {
	case ActionReported:
		return 1
	case ActionFiltered:
		return 2
	case ActionRedacted:
		return 3
	case ActionBlocked:
		return 4
	}
	return 0
}

func (rt *Route) unreadable(resp *http.Response, fs *findings, blocking bool) *Outcome {
	if blocking {
		resp.Body.Close()
		resp.Body = http.NoBody
		return &Outcome{Action: ActionBlocked, Findings: fs.list}
	}
	return &Outcome{Action: ActionReported, Findings: fs.list}
}

// setBody installs b as the response body. A changed body invalidates the
// upstream's validators and digests of the old one.
func setBody(resp *http.Response, b []byte, changed bool) {
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	resp.TransferEncoding = nil
	if changed {
		resp.Header.Del("ETag")
		resp.Header.Del("Content-MD5")
		resp.Header.Del("Digest")
		resp.Header.Del("Content-Digest")
		resp.Header.Del("Repr-Digest")
	}
}

// withheld is the body sent instead of an undeclared response in filter mode:
// the status survives, the upstream's words (stack traces, SQL errors) do not.
func withheld(resp *http.Response) []byte {
	d := problem.New(resp.StatusCode, "response-withheld", "Response withheld", "the service's answer is not part of its API description")
	b, _ := json.Marshal(d)
	resp.Header.Set("Content-Type", problem.ContentType)
	return append(b, '\n')
}

func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func isJSONType(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// textual reports whether a media type carries text worth scanning for secrets.
func textual(mt string) bool {
	switch {
	case mt == "":
		// No declared type: sniffed types are a guess; scan to be safe.
		return true
	case strings.HasPrefix(mt, "text/"), isJSONType(mt), strings.HasSuffix(mt, "+xml"):
		return true
	}
	switch mt {
	case "application/xml", "application/javascript", "application/x-www-form-urlencoded", "application/x-ndjson", "application/yaml", "application/x-yaml":
		return true
	}
	return false
}
