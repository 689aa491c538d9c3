package openapi

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxSize is the largest document Parse accepts.
const MaxSize = 8 << 20

// ErrInvalid is a document that is not a usable OpenAPI 3.x description.
var ErrInvalid = errors.New("invalid OpenAPI document")

// Spec is the part of an OpenAPI document the scanner uses.
type Spec struct {
	Version    string      // the "openapi" field, e.g. 3.1.0
	Operations []Operation // sorted by path, then method
}

// Operation is one method on one path.
type Operation struct {
	Method      string // upper case
	Path        string // template, e.g. /v1/notes/{id}
	OperationID string
	Secured     bool    // a non-empty security requirement applies
	Params      []Param // path and query parameters
	RequestBody *Schema // JSON request body schema, nil if none
	// Responses maps a status code ("200", "2XX", "default") to the JSON schema
	// of that response; a status without a JSON schema maps to nil.
	Responses map[string]*Schema
}

// Param is a path or query parameter.
type Param struct {
	Name     string
	In       string // path, query, header or cookie
	Required bool
	Schema   *Schema
}

// Schema is a JSON Schema subset. Pointers may form cycles (recursive $refs);
// walk them with a depth bound.
type Schema struct {
	Type       string
	Properties map[string]*Schema
	Required   []string
	Items      *Schema
	// AdditionalAllowed is false only when additionalProperties is false;
	// AdditionalSchema is set when it is a schema; PropertyNames marks a
	// propertyNames constraint. Either of the last two means "open map".
	AdditionalAllowed bool
	AdditionalSchema  *Schema
	PropertyNames     bool
	AllOf             []*Schema
	AnyOf             []*Schema
	OneOf             []*Schema
	Enum              []any
	Example           any
	Format            string
	Pattern           string
}

// SuccessSchema returns the schema of the first 2xx response with one, and its status.
func (o Operation) SuccessSchema() (string, *Schema) {
	codes := make([]string, 0, len(o.Responses))
	for c := range o.Responses {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		if strings.HasPrefix(c, "2") && o.Responses[c] != nil {
			return c, o.Responses[c]
		}
	}
	return "", nil
}

// HasStatus reports whether the operation documents status code (exactly or as 2XX style).
func (o Operation) HasStatus(code string) bool {
	if _, ok := o.Responses[code]; ok {
		return true
	}
	_, ok := o.Responses[code[:1]+"XX"]
	return ok
}

// PathParams returns the names of the {params} in the path template, in order.
func (o Operation) PathParams() []string {
	var out []string
	p := o.Path
	for {
		i := strings.IndexByte(p, '{')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(p[i:], '}')
		if j < 0 {
			return out
		}
		out = append(out, p[i+1:i+j])
		p = p[i+j+1:]
	}
}

var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// Parse reads an OpenAPI 3.0/3.1 document in YAML or JSON.
func Parse(b []byte) (*Spec, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("parse openapi: %d bytes is over the %d limit: %w", len(b), MaxSize, ErrInvalid)
	}
	var raw any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("parse openapi: %v: %w", err, ErrInvalid)
	}
	root, ok := normalize(raw, 0).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("parse openapi: top level is not a mapping: %w", ErrInvalid)
	}
	ver, _ := root["openapi"].(string)
	if !strings.HasPrefix(ver, "3.") {
		return nil, fmt.Errorf("parse openapi: \"openapi\" must be 3.0.x or 3.1.x, got %q: %w", ver, ErrInvalid)
	}
	paths, ok := root["paths"].(map[string]any)
	if !ok && root["paths"] != nil {
		return nil, fmt.Errorf("parse openapi: paths is not a mapping: %w", ErrInvalid)
	}
	r := &resolver{root: root, schemas: map[string]*Schema{}}
	globalSec := secured(root["security"], false)
	s := &Spec{Version: ver}
	for p, item := range paths {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("parse openapi: path %q does not start with /: %w", p, ErrInvalid)
		}
		pi, ok := r.deref(item).(map[string]any)
		if !ok {
			continue
		}
		shared := r.params(pi["parameters"])
		for _, m := range methods {
			op, ok := r.deref(pi[m]).(map[string]any)
			if !ok {
				continue
			}
			o := Operation{Method: strings.ToUpper(m), Path: p, Responses: map[string]*Schema{}}
			o.OperationID, _ = op["operationId"].(string)
			o.Secured = globalSec
			if sec, ok := op["security"]; ok {
				o.Secured = secured(sec, false)
			}
			o.Params = mergeParams(shared, r.params(op["parameters"]))
			if rb, ok := r.deref(op["requestBody"]).(map[string]any); ok {
				o.RequestBody = r.jsonSchema(rb["content"])
			}
			if resps, ok := op["responses"].(map[string]any); ok {
				for code, rv := range resps {
					resp, _ := r.deref(rv).(map[string]any)
					var sch *Schema
					if resp != nil {
						sch = r.jsonSchema(resp["content"])
					}
					o.Responses[strings.ToUpper(code)] = sch
				}
			}
			s.Operations = append(s.Operations, o)
		}
	}
	sort.Slice(s.Operations, func(i, j int) bool {
		a, b := s.Operations[i], s.Operations[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Method < b.Method
	})
	return s, nil
}

// secured is true when sec is a list with at least one non-empty requirement
// object. An empty list (security: []) or a list holding {} means "public".
func secured(sec any, def bool) bool {
	list, ok := sec.([]any)
	if !ok {
		return def
	}
	if len(list) == 0 {
		return false
	}
	for _, req := range list {
		m, ok := req.(map[string]any)
		if !ok || len(m) == 0 {
			// An empty requirement makes authentication optional.
			return false
		}
	}
	return true
}

func mergeParams(shared, own []Param) []Param {
	out := append([]Param(nil), own...)
	for _, s := range shared {
		dup := false
		for _, o := range own {
			if o.Name == s.Name && o.In == s.In {
				dup = true
			}
		}
		if !dup {
			out = append(out, s)
		}
	}
	return out
}

// normalize turns yaml's map[any]any (from unquoted integer keys such as 200)
// into map[string]any, bounding depth against hostile nesting.
func normalize(v any, depth int) any {
	if depth > 200 {
		return nil
	}
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = normalize(x, depth+1)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[fmt.Sprint(k)] = normalize(x, depth+1)
		}
		return m
	case []any:
		for i, x := range t {
			t[i] = normalize(x, depth+1)
		}
		return t
	default:
		return v
	}
}

type resolver struct {
	root    map[string]any
	schemas map[string]*Schema // by $ref, so recursive refs share one node
	depth   int
}

// deref follows local "$ref"s (bounded); remote refs resolve to nil.
func (r *resolver) deref(v any) any {
	for i := 0; i < 32; i++ {
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return v
		}
		v = r.lookup(ref)
	}
	return nil
}

// lookup resolves "#/a/b" JSON pointers in the same document only.
func (r *resolver) lookup(ref string) any {
	if !strings.HasPrefix(ref, "#/") {
		return nil // never fetch: remote refs are ignored
	}
	var cur any = r.root
	for _, part := range strings.Split(ref[2:], "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			cur = c[part]
		default:
			return nil
		}
	}
	return cur
}

func (r *resolver) params(v any) []Param {
	list, ok := r.deref(v).([]any)
	if !ok {
		return nil
	}
	var out []Param
	for _, pv := range list {
		m, ok := r.deref(pv).(map[string]any)
		if !ok {
			continue
		}
		name, _ := m["name"].(string)
		in, _ := m["in"].(string)
		if name == "" || in == "" {
			continue
		}
		req, _ := m["required"].(bool)
		out = append(out, Param{Name: name, In: in, Required: req || in == "path", Schema: r.schema(m["schema"])})
	}
	return out
}

// jsonSchema picks the application/json (or +json) media type's schema.
func (r *resolver) jsonSchema(content any) *Schema {
	c, ok := r.deref(content).(map[string]any)
	if !ok {
		return nil
	}
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		mt := strings.ToLower(k)
		if mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "*/*" {
			m, ok := r.deref(c[k]).(map[string]any)
			if !ok {
				return nil
			}
			return r.schema(m["schema"])
		}
	}
	return nil
}

func (r *resolver) schema(v any) *Schema {
	if r.depth > 64 {
		return nil
	}
	r.depth++
	defer func() { r.depth-- }()
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	if ref, ok := m["$ref"].(string); ok {
		if s, ok := r.schemas[ref]; ok {
			return s
		}
		s := &Schema{}
		r.schemas[ref] = s // registered before filling, so cycles terminate
		if t, ok := r.deref(m).(map[string]any); ok {
			r.fill(s, t)
		}
		return s
	}
	s := &Schema{}
	r.fill(s, m)
	return s
}

func (r *resolver) fill(s *Schema, m map[string]any) {
	s.AdditionalAllowed = true
	switch t := m["type"].(type) {
	case string:
		s.Type = t
	case []any: // 3.1: type: [object, "null"]
		for _, x := range t {
			if x, ok := x.(string); ok && x != "null" {
				s.Type = x
				break
			}
		}
	}
	s.Format, _ = m["format"].(string)
	s.Pattern, _ = m["pattern"].(string)
	s.Example = m["example"]
	if ex, ok := m["examples"].([]any); ok && s.Example == nil && len(ex) > 0 {
		s.Example = ex[0]
	}
	s.Enum, _ = m["enum"].([]any)
	if props, ok := m["properties"].(map[string]any); ok {
		s.Properties = make(map[string]*Schema, len(props))
		for k, pv := range props {
			s.Properties[k] = r.schema(pv)
		}
		if s.Type == "" {
			s.Type = "object"
		}
	}
	if req, ok := m["required"].([]any); ok {
		for _, x := range req {
			if x, ok := x.(string); ok {
				s.Required = append(s.Required, x)
			}
		}
	}
	s.Items = r.schema(m["items"])
	switch ap := m["additionalProperties"].(type) {
	case bool:
		s.AdditionalAllowed = ap
	case map[string]any:
		s.AdditionalSchema = r.schema(ap)
	}
	if _, ok := m["propertyNames"]; ok {
		s.PropertyNames = true
	}
	s.AllOf = r.schemaList(m["allOf"])
	s.AnyOf = r.schemaList(m["anyOf"])
	s.OneOf = r.schemaList(m["oneOf"])
}

func (r *resolver) schemaList(v any) []*Schema {
	list, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]*Schema, 0, len(list))
	for _, x := range list {
		if s := r.schema(x); s != nil {
			out = append(out, s)
		}
	}
	return out
}
