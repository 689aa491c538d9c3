package openapi

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

const petstore = `openapi: 3.0.3
info: {title: t, version: "1"}
security:
  - bearer: []
paths:
  /pets:
    parameters:
      - name: limit
        in: query
        schema: {type: integer}
    get:
      responses:
        200:
          description: ok
          content:
            application/json:
              schema:
                type: array
                items: {$ref: "#/components/schemas/Pet"}
    post:
      requestBody:
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Pet"}
      responses:
        "201": {$ref: "#/components/responses/Pet"}
  /pets/{petId}:
    get:
      security: []
      parameters:
        - {name: petId, in: path, schema: {type: string}}
      responses:
        "200": {$ref: "#/components/responses/Pet"}
components:
  responses:
    Pet:
      description: a pet
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Pet"}
  schemas:
    Pet:
      type: object
      additionalProperties: false
      required: [name]
      properties:
        id: {type: string}
        name: {type: string}
        parent: {$ref: "#/components/schemas/Pet"}
`

func TestParse(t *testing.T) {
	s, err := Parse([]byte(petstore))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Operations) != 3 {
		t.Fatalf("operations = %d, want 3", len(s.Operations))
	}
	get, post, one := s.Operations[0], s.Operations[1], s.Operations[2]
	if get.Method != "GET" || get.Path != "/pets" || !get.Secured || len(get.Params) != 1 || get.Params[0].Name != "limit" {
		t.Errorf("GET /pets = %+v", get)
	}
	code, sch := get.SuccessSchema()
	if code != "200" || sch == nil || sch.Type != "array" || sch.Items == nil || sch.Items.Properties["name"] == nil {
		t.Errorf("GET /pets 200 schema = %q %+v", code, sch)
	}
	if post.Method != "POST" || post.RequestBody == nil || !post.HasStatus("201") {
		t.Errorf("POST /pets = %+v", post)
	}
	if one.Secured {
		t.Error("security: [] must mark the operation public")
	}
	if got := one.PathParams(); len(got) != 1 || got[0] != "petId" {
		t.Errorf("PathParams = %v", got)
	}
	_, ps := one.SuccessSchema()
	if ps == nil || ps.AdditionalAllowed || ps.Properties["parent"] != ps {
		t.Error("the recursive $ref must resolve to the same node and additionalProperties false must be kept")
	}
	body, ok := Sample(post.RequestBody, "m").(map[string]any)
	if !ok || body["name"] != "m" || len(body) != 1 {
		t.Errorf("Sample = %#v", body)
	}
}

func TestParseBad(t *testing.T) {
	for name, doc := range map[string]string{
		"empty":         "",
		"not yaml":      "{[",
		"list":          "- a",
		"swagger 2":     "swagger: '2.0'\npaths: {}",
		"no version":    "paths: {}",
		"paths not map": "openapi: 3.1.0\npaths: [1]",
		"relative path": "openapi: 3.1.0\npaths:\n  pets: {get: {responses: {}}}",
		"oversized":     "openapi: 3.1.0\n#" + string(make([]byte, MaxSize)),
		"alias bomb":    "openapi: 3.1.0\na: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(doc)); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestParseHostileButValid(t *testing.T) {
	for name, doc := range map[string]string{
		"remote ref ignored": "openapi: 3.1.0\npaths:\n  /a:\n    get:\n      responses:\n        '200': {$ref: 'https://attacker.invalid/x.yaml'}",
		"ref loop":           "openapi: 3.1.0\npaths:\n  /a: {$ref: '#/paths/~1a'}",
		"schema self loop":   "openapi: 3.1.0\npaths:\n  /a:\n    get:\n      responses:\n        '200':\n          description: x\n          content: {application/json: {schema: {$ref: '#/components/schemas/A'}}}\ncomponents:\n  schemas:\n    A: {$ref: '#/components/schemas/A'}",
		"json":               `{"openapi":"3.0.0","paths":{"/a":{"get":{"responses":{"200":{"description":"x"}}}}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(doc)); err != nil {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// TestParseDemo reads the demo upstream's description, the spec the end-to-end
// scan will use.
func TestParseDemo(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "demo", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	var sawCreate bool
	for _, o := range s.Operations {
		if o.Method == "POST" && o.Path == "/v1/notes" && o.HasStatus("201") && o.Secured {
			sawCreate = true
		}
		if o.Path == "/v1/health" && o.Secured {
			t.Error("health is public in the demo spec")
		}
	}
	if !sawCreate {
		t.Error("POST /v1/notes with 201 not found")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(petstore))                                              // a full document with refs and recursion
	f.Add([]byte(`{"openapi":"3.1.0","paths":{}}`))                      // minimal JSON
	f.Add([]byte("openapi: 3.1.0\npaths:\n  /a: {$ref: '#/paths/~1a'}")) // ref loop
	f.Add([]byte("openapi: 3.0.0\npaths:\n  /a:\n    get:\n      responses: {200: {content: {application/json: {schema: {type: [object, 'null'], properties: {a: {items: {}}}}}}}}"))
	f.Add([]byte("- not a map"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		for _, o := range s.Operations {
			_ = o.PathParams()
			_, sch := o.SuccessSchema()
			_ = Sample(sch, "m")
			_ = Sample(o.RequestBody, "m")
		}
	})
}

// BenchmarkParseDemo parses the demo API description (done once per scan).
func BenchmarkParseDemo(b *testing.B) {
	_, file, _, _ := runtime.Caller(0)
	doc, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "demo", "openapi.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(doc); err != nil {
			b.Fatal(err)
		}
	}
}
