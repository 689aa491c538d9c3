package protect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// ResponseMode is what to do with response properties the schema does not declare.
type ResponseMode string

// Response modes.
const (
	// ResponseOff: responses are not compared with the document.
	ResponseOff ResponseMode = ""
	// ResponseFilter drops undeclared properties and withholds the bodies of
	// undeclared statuses; the client gets the rest.
	ResponseFilter ResponseMode = "filter"
	// ResponseBlock answers 502 instead of a response with undeclared content.
	ResponseBlock ResponseMode = "block"
	// ResponseReport passes the response unchanged and reports what it found.
	ResponseReport ResponseMode = "report"
)

// SecretMode is what to do with secrets found in a response body.
type SecretMode string

// Secret modes.
const (
	// SecretsOff: response bodies are not scanned.
	SecretsOff SecretMode = ""
	// SecretsRedact replaces each secret with "[REDACTED:type]".
	SecretsRedact SecretMode = "redact"
	// SecretsBlock answers 502 instead of a response carrying a secret.
	SecretsBlock SecretMode = "block"
	// SecretsReport passes the response unchanged and reports each secret.
	SecretsReport SecretMode = "report"
)

// Options configure one route's protection. The zero value protects nothing but
// still bounds bodies: every part is opt-in.
type Options struct {
	// Methods the route serves (upper case). Nil means every method the document
	// declares for the path. With Validate, each listed method must be declared.
	Methods []string
	// Path is the route's path template, e.g. "/v1/notes/{id}"; parameter names
	// need not match the document's. Required when Spec is given.
	Path string
	// Validate checks path, query, header and cookie parameters and the body of
	// every request against the document (needs a Spec).
	Validate bool
	// JSON bounds JSON request bodies before they are parsed. Applied whenever a
	// JSON body is read (Validate or WAF); zero fields take the defaults.
	JSON JSONLimits
	// Response selects property filtering against the response schema (needs a
	// Spec). Zero means off.
	Response ResponseMode
	// Secrets selects response secret scanning. Zero means off.
	Secrets SecretMode
	// WAF, when non-nil, judges every request; share one *WAF between routes
	// with the same settings.
	WAF *WAF
	// MaxBodyBytes bounds the request body CheckRequest buffers (413 beyond).
	// Zero means 1 MiB; pass the route's body limit.
	MaxBodyBytes int64
	// MaxResponseBytes bounds the response body FilterResponse reads. A larger
	// body that must be rewritten or judged is blocked in filter, redact and
	// block modes, passed unjudged (and reported) in report modes. Zero means 8 MiB.
	MaxResponseBytes int64
}

// Route is one route's compiled protection. Safe for concurrent use.
type Route struct {
	opts    Options
	formats []openapi3.SchemaValidationOption
	spec    *Spec
	ops     map[string]*operation // by method
	limits  JSONLimits
}

type operation struct {
	route     *routers.Route
	params    openapi3.Parameters // path-item and operation parameters, merged
	body      *openapi3.RequestBody
	bodyShape map[string]*shape // by declared media type
	responses map[string]map[string]*shape
	// hasContent[status][media] is false for a declared media type without a schema.
	noContent map[string]bool // statuses declared without any content
	names     map[string]string
}

// New compiles one route's protection. spec may be nil only when neither
// Validate nor Response is set.
func New(spec *Spec, opts Options) (*Route, error) {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = 8 << 20
	}
	switch opts.Response {
	case ResponseOff, ResponseFilter, ResponseBlock, ResponseReport:
	default:
		return nil, fmt.Errorf("%w: response mode %q is not filter, block or report", ErrOptions, opts.Response)
	}
	switch opts.Secrets {
	case SecretsOff, SecretsRedact, SecretsBlock, SecretsReport:
	default:
		return nil, fmt.Errorf("%w: secrets mode %q is not redact, block or report", ErrOptions, opts.Secrets)
	}
	rt := &Route{opts: opts, spec: spec, limits: opts.JSON.withDefaults(), ops: map[string]*operation{}, formats: formatOptions()}
	if !opts.Validate && opts.Response == ResponseOff {
		return rt, nil
	}
	if spec == nil {
		return nil, fmt.Errorf("%w: validation and response filtering need an OpenAPI document", ErrOptions)
	}
	key, item, names, ok := spec.findPath(opts.Path)
	if !ok {
		return nil, fmt.Errorf("%w: no path matches %q", ErrNoOperation, opts.Path)
	}
	methods := opts.Methods
	if methods == nil {
		for m := range item.Operations() {
			methods = append(methods, m)
		}
	}
	sc := newShapeCompiler()
	for _, m := range methods {
		m = strings.ToUpper(m)
		op := item.GetOperation(m)
		if op == nil {
			return nil, fmt.Errorf("%w: %s %s (document path %s)", ErrNoOperation, m, opts.Path, key)
		}
		o := &operation{
			route:     &routers.Route{Spec: spec.flagDoc, Path: key, PathItem: item, Method: m, Operation: op},
			names:     names,
			bodyShape: map[string]*shape{},
			responses: map[string]map[string]*shape{},
			noContent: map[string]bool{},
		}
		o.params = append(o.params, op.Parameters...)
		for _, p := range item.Parameters {
			if p.Value != nil && op.Parameters.GetByInAndName(p.Value.In, p.Value.Name) == nil {
				o.params = append(o.params, p)
			}
		}
		if op.RequestBody != nil && op.RequestBody.Value != nil {
			o.body = op.RequestBody.Value
			for mt, c := range o.body.Content {
				if c != nil && c.Schema != nil {
					o.bodyShape[mt] = sc.compile(c.Schema)
				}
			}
		}
		if op.Responses != nil {
			for status, rr := range op.Responses.Map() {
				if rr == nil || rr.Value == nil {
					continue
				}
				if len(rr.Value.Content) == 0 {
					o.noContent[status] = true
					continue
				}
				byType := map[string]*shape{}
				for mt, c := range rr.Value.Content {
					var sh *shape
					if c != nil && c.Schema != nil {
						sh = sc.compile(c.Schema)
					} else {
						sh = &shape{open: true}
					}
					byType[mt] = sh
				}
				o.responses[status] = byType
			}
		}
		rt.ops[m] = o
	}
	return rt, nil
}

// ReadsResponseBody reports whether FilterResponse reads response bodies; the
// gateway must then ask the upstream for an uncompressed body (drop
// Accept-Encoding), since a compressed body cannot be judged and is blocked.
func (rt *Route) ReadsResponseBody() bool {
	return rt.opts.Response != ResponseOff || rt.opts.Secrets != SecretsOff
}

// CheckRequest judges r before it is proxied. pathParams are the route's
// parameters by the route's names. When it needs the body (validation or WAF) it
// reads it whole, up to MaxBodyBytes, and replaces r.Body with a fresh reader
// over the same bytes so the upstream still receives it.
//
// It returns nil for a clean request. A Violation with Blocked() must be
// answered with v.Problem() and v.Status; one with ActionReported (a report-only
// WAF hit) is for the audit log and the request goes on.
func (rt *Route) CheckRequest(r *http.Request, pathParams map[string]string) *Violation {
	var op *operation
	if rt.opts.Validate {
		m := r.Method
		op = rt.ops[m]
		if op == nil && m == http.MethodHead {
			op = rt.ops[http.MethodGet]
		}
		if op == nil {
			return block(http.StatusMethodNotAllowed, Finding{Kind: KindOperation, Field: "method", Reason: "method not in the API description"})
		}
	}
	var body []byte
	if (rt.opts.Validate || rt.opts.WAF != nil) && r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, rt.opts.MaxBodyBytes+1))
		r.Body.Close()
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return block(http.StatusRequestEntityTooLarge, Finding{Kind: KindBodyTooLarge, Field: "body", Reason: "body over the size limit"})
			}
			r.Body = http.NoBody
			return block(http.StatusBadRequest, Finding{Kind: KindMalformed, Field: "body", Reason: "body could not be read"})
		}
		if int64(len(b)) > rt.opts.MaxBodyBytes {
			return block(http.StatusRequestEntityTooLarge, Finding{Kind: KindBodyTooLarge, Field: "body", Reason: "body over the size limit"})
		}
		body = b
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json")
	if isJSON && len(body) > 0 {
		// Why before everything else: the validator and the WAF both parse the
		// body into trees; a hostile shape must cost a scan, not their memory.
		if f := rt.limits.CheckJSON(body); f != nil {
			return block(http.StatusBadRequest, *f)
		}
	}
	if op != nil {
		if v := op.validate(rt.formats, r, pathParams, body, mt, isJSON); v != nil {
			return v
		}
	}
	if rt.opts.WAF != nil {
		res, err := rt.opts.WAF.Check(r, body)
		if err != nil {
			// A WAF that cannot judge must not wave the request through.
			return block(http.StatusBadRequest, Finding{Kind: KindMalformed, Field: "body", Reason: "request could not be inspected"})
		}
		if res.Block {
			f := Finding{Kind: KindWAF, Field: res.Field, Reason: "anomaly score " + strconv.Itoa(res.Score), RuleIDs: res.RuleIDs}
			v := &Violation{Status: http.StatusForbidden, Action: ActionBlocked, Findings: []Finding{f}, AnomalyScore: res.Score}
			if rt.opts.WAF.opts.ReportOnly {
				v.Action = ActionReported
			}
			return v
		}
	}
	return nil
}

func block(status int, fs ...Finding) *Violation {
	return &Violation{Status: status, Action: ActionBlocked, Findings: fs}
}

// validate checks parameters and body against the operation.
func (o *operation) validate(formats []openapi3.SchemaValidationOption, r *http.Request, pathParams map[string]string, body []byte, mt string, isJSON bool) *Violation {
	docParams := make(map[string]string, len(pathParams))
	for k, v := range pathParams {
		if n, ok := o.names[k]; ok {
			k = n
		}
		docParams[k] = v
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: docParams,
		Route:      o.route,
		Options: &openapi3filter.Options{SkipSettingDefaults: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
			SchemaValidationOptions: formats},
	}
	ctx := r.Context()
	var fs findings
	for _, p := range o.params {
		if p.Value == nil {
			continue
		}
		if err := openapi3filter.ValidateParameter(ctx, in, p.Value); err != nil {
			fs.add(paramFinding(p.Value, err))
		}
	}
	if len(fs.list) > 0 {
		return block(http.StatusBadRequest, fs.list...)
	}
	if o.body == nil {
		return nil
	}
	if len(body) == 0 {
		if o.body.Required {
			return block(http.StatusBadRequest, Finding{Kind: KindSchema, Field: "body", Reason: "a body is required"})
		}
		return nil
	}
	content := o.body.Content.Get(r.Header.Get("Content-Type"))
	if content == nil || mt == "" {
		return block(http.StatusUnsupportedMediaType, Finding{Kind: KindContentType, Field: "header.Content-Type", Reason: "content type not accepted here"})
	}
	if !isJSON {
		if err := openapi3filter.ValidateRequestBody(ctx, in, o.body); err != nil {
			return block(http.StatusBadRequest, bodyFinding(err))
		}
		return nil
	}
	var value any
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&value); err != nil || dec.More() {
		return block(http.StatusBadRequest, Finding{Kind: KindMalformed, Field: "body", Reason: "not valid JSON"})
	}
	if _, err := dec.Token(); err != io.EOF {
		return block(http.StatusBadRequest, Finding{Kind: KindMalformed, Field: "body", Reason: "not valid JSON"})
	}
	// Mass assignment first, with exact field paths: readOnly anywhere and
	// unknown properties where the schema closes the object.
	if sh := o.bodyShapeFor(mt); sh != nil {
		sh.checkWrite(value, "body", &fs)
		if len(fs.list) > 0 {
			return block(http.StatusBadRequest, fs.list...)
		}
	}
	if content.Schema == nil || content.Schema.Value == nil {
		return nil
	}
	if err := content.Schema.Value.VisitJSON(value, append([]openapi3.SchemaValidationOption{openapi3.VisitAsRequest(), openapi3.MultiErrors()}, formats...)...); err != nil {
		collectSchemaErrors(err, &fs)
		if len(fs.list) == 0 {
			fs.add(Finding{Kind: KindSchema, Field: "body", Reason: "does not match the schema"})
		}
		return block(http.StatusBadRequest, fs.list...)
	}
	return nil
}

func (o *operation) bodyShapeFor(mt string) *shape {
	if sh, ok := o.bodyShape[mt]; ok {
		return sh
	}
	for k, sh := range o.bodyShape {
		if k == "application/*" || k == "*/*" || strings.HasSuffix(k, "+json") && strings.HasSuffix(mt, "+json") {
			return sh
		}
	}
	return nil
}

func paramFinding(p *openapi3.Parameter, err error) Finding {
	f := Finding{Kind: KindSchema, Field: p.In + "." + safeKey(p.Name), Reason: "invalid value"}
	var re *openapi3filter.RequestError
	if errors.As(err, &re) {
		f.Reason = shortReason(re.Reason)
	}
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		f.Reason = shortReason(se.Reason)
	}
	if f.Reason == "" {
		f.Reason = "invalid value"
	}
	return f
}

func bodyFinding(err error) Finding {
	f := Finding{Kind: KindSchema, Field: "body", Reason: "does not match the schema"}
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		f.Field = pointerField(se.JSONPointer())
		f.Reason = shortReason(se.Reason)
	}
	return f
}

// collectSchemaErrors flattens kin-openapi's (multi) errors into findings.
func collectSchemaErrors(err error, fs *findings) {
	var me openapi3.MultiError
	if errors.As(err, &me) {
		for _, e := range me {
			collectSchemaErrors(e, fs)
		}
		return
	}
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		fs.add(Finding{Kind: KindSchema, Field: pointerField(se.JSONPointer()), Reason: shortReason(se.Reason)})
	}
}

func pointerField(ptr []string) string {
	field := "body"
	for _, p := range ptr {
		if n, err := strconv.Atoi(p); err == nil && n >= 0 {
			field = indexField(field, n)
			continue
		}
		field = joinField(field, p)
	}
	return field
}

// shortReason keeps a validator's reason short and printable. kin-openapi
// promises reasons without the input value; the cap keeps a long enum or
// pattern from bloating a problem.
func shortReason(s string) string {
	const maxReason = 120
	s = safeKey(s)
	if len(s) > maxReason {
		s = s[:maxReason] + "…"
	}
	return s
}

// statusKey picks the document's response entry for a status: exact, then
// "2XX"-style range, then "default".
func (o *operation) responseShapes(status int) (map[string]*shape, bool, bool) {
	code := strconv.Itoa(status)
	for _, k := range []string{code, code[:1] + "XX", code[:1] + "xx", "default"} {
		if m, ok := o.responses[k]; ok {
			return m, true, false
		}
		if o.noContent[k] {
			return nil, true, true
		}
	}
	return nil, false, false
}

// mediaShape finds the shape for media type mt among a response's content.
func mediaShape(byType map[string]*shape, mt string) (*shape, bool) {
	if sh, ok := byType[mt]; ok {
		return sh, true
	}
	if i := strings.IndexByte(mt, '/'); i > 0 {
		if sh, ok := byType[mt[:i]+"/*"]; ok {
			return sh, true
		}
	}
	sh, ok := byType["*/*"]
	return sh, ok
}
