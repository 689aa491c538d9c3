package openapibench

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/demo"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
)

type benchCase struct {
	name     string
	spec     []byte
	method   string
	template string
	url      string
	params   map[string]string
	header   http.Header
	body     []byte
}

func cases(tb testing.TB) []benchCase {
	shop, err := os.ReadFile("../testdata/shop.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	order, err := os.ReadFile("../testdata/order_2k.json")
	if err != nil {
		tb.Fatal(err)
	}
	note := []byte(`{"title":"Groceries for the weekend","body":"` + string(bytes.Repeat([]byte("Milk, eggs, O'Brien's bread & the good butter. "), 40)) + `"}`)
	return []benchCase{
		{name: "demo31/createNote", spec: demo.OpenAPI(), method: "POST", template: "/v1/notes", url: "https://127.0.0.1:8443/v1/notes",
			header: http.Header{"Content-Type": {"application/json"}}, body: note},
		{name: "shop30/createOrder", spec: shop, method: "POST", template: "/v2/orders", url: "https://api.shop.example/v2/orders",
			header: http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {"5f0c8a4e-2b7d-4c1e-9a3f-6d2e8b1c7a90"}}, body: order},
		{name: "shop30/listProducts", spec: shop, method: "GET", template: "/v2/products", url: "https://api.shop.example/v2/products?category=bakery&q=sourdough&limit=50&cursor=abc_DEF-123",
			header: http.Header{"Accept-Language": {"en-GB,en;q=0.9"}}},
	}
}

func (c benchCase) request() *http.Request {
	r, _ := http.NewRequest(c.method, c.url, bytes.NewReader(c.body))
	for k, v := range c.header {
		r.Header[k] = v
	}
	return r
}

// kinRoute builds the route directly: the gateway already knows the operation, so
// no router runs per request.
func kinRoute(tb testing.TB, c benchCase, with31 bool) *routers.Route {
	doc, err := openapi3.NewLoader().LoadFromData(c.spec)
	if err != nil {
		tb.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		tb.Fatal(err)
	}
	pi := doc.Paths.Value(c.template)
	spec := doc
	if !with31 {
		// Without Spec.OpenAPI "3.1", openapi3filter keeps the compiled 3.0 visitor
		// instead of rebuilding a JSON Schema 2020-12 validator on every call.
		cp := *doc
		cp.OpenAPI = "3.0.3"
		spec = &cp
	}
	return &routers.Route{Spec: spec, Path: c.template, PathItem: pi, Method: c.method, Operation: pi.GetOperation(c.method)}
}

func BenchmarkKinOpenAPI(b *testing.B) {
	for _, c := range cases(b) {
		for _, with31 := range []bool{false, true} {
			name := c.name
			if with31 {
				if c.name[:4] != "demo" {
					continue
				}
				name += "/jsonschema2020"
			}
			b.Run(name, func(b *testing.B) {
				rt := kinRoute(b, c, with31)
				opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, SkipSettingDefaults: true}
				b.ReportAllocs()
				for b.Loop() {
					r := c.request()
					in := &openapi3filter.RequestValidationInput{Request: r, PathParams: c.params, Route: rt, Options: opts}
					if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkLibOpenAPIValidator(b *testing.B) {
	for _, c := range cases(b) {
		b.Run(c.name, func(b *testing.B) {
			doc, err := libopenapi.NewDocument(c.spec)
			if err != nil {
				b.Fatal(err)
			}
			v, errs := validator.NewValidator(doc, config.WithoutSecurityValidation(), config.WithStrictRejectReadOnly())
			if len(errs) > 0 {
				b.Fatal(errs)
			}
			model, _ := doc.BuildV3Model()
			pi := model.Model.Paths.PathItems.GetOrZero(c.template)
			if ok, verrs := v.ValidateHttpRequestSyncWithPathItem(c.request(), pi, c.template); !ok {
				for _, e := range verrs {
					b.Log(e.Message, e.Reason)
				}
				b.Fatal("warm-up request rejected")
			}
			b.ReportAllocs()
			for b.Loop() {
				if ok, verrs := v.ValidateHttpRequestSyncWithPathItem(c.request(), pi, c.template); !ok {
					b.Fatal(verrs[0].Message)
				}
			}
		})
	}
}

// TestReadOnlyOnWrite records what each library does, by default, with a readOnly
// property in a request body: the decision record quotes it.
func TestReadOnlyOnWrite(t *testing.T) {
	c := cases(t)[1]
	c.body = bytes.Replace(c.body, []byte(`{"items"`), []byte(`{"id":"5f0c8a4e-2b7d-4c1e-9a3f-6d2e8b1c7a90","items"`), 1)
	rt := kinRoute(t, c, false)
	err := openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{Request: c.request(), Route: rt,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}})
	t.Logf("kin-openapi, 3.0 visitor: %v", err != nil)
	if err == nil {
		t.Error("kin-openapi accepted a readOnly property on write")
	}
	doc, _ := libopenapi.NewDocument(c.spec)
	for _, strict := range []bool{false, true} {
		opts := []config.Option{config.WithoutSecurityValidation()}
		if strict {
			opts = append(opts, config.WithStrictRejectReadOnly())
		}
		v, _ := validator.NewValidator(doc, opts...)
		model, _ := doc.BuildV3Model()
		ok, _ := v.ValidateHttpRequestSyncWithPathItem(c.request(), model.Model.Paths.PathItems.GetOrZero(c.template), c.template)
		t.Logf("libopenapi-validator strictRejectReadOnly=%v: rejected=%v", strict, !ok)
	}
}
