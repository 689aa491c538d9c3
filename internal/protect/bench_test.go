package protect

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// note2K is a create-note body of about 2 KB.
func note2K() []byte {
	return []byte(`{"title":"Groceries for the weekend","body":"` + strings.Repeat("Milk, eggs, O'Brien's bread & the good butter. ", 40) + `"}`)
}

func shopRoute(tb testing.TB, path string, methods []string, opts Options) *Route {
	tb.Helper()
	b, err := os.ReadFile("testdata/shop.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	spec, err := ParseSpec(b)
	if err != nil {
		tb.Fatal(err)
	}
	opts.Path, opts.Methods = path, methods
	rt, err := New(spec, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return rt
}

func orderRequest(tb testing.TB, body []byte) *http.Request {
	r := httptest.NewRequest("POST", "/v2/orders", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Idempotency-Key", "5f0c8a4e-2b7d-4c1e-9a3f-6d2e8b1c7a90")
	return r
}

// benchP50 runs f b.N times and reports the median and 99th percentile along
// with the mean: the target for schema validation is a p50.
func benchP50(b *testing.B, f func()) {
	b.ReportAllocs()
	samples := make([]time.Duration, 0, 1<<16)
	for b.Loop() {
		t0 := time.Now()
		f()
		if len(samples) < cap(samples) {
			samples = append(samples, time.Since(t0))
		}
	}
	slices.Sort(samples)
	if n := len(samples); n > 0 {
		b.ReportMetric(float64(samples[n/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(samples[n*99/100].Nanoseconds()), "p99-ns")
	}
}

func BenchmarkCheckRequest(b *testing.B) {
	order, err := os.ReadFile("testdata/order_2k.json")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("demo31/createNote-2KB", func(b *testing.B) {
		rt := demoRoute(b, "/v1/notes", []string{"POST"}, Options{Validate: true})
		body := note2K()
		benchP50(b, func() {
			r := httptest.NewRequest("POST", "/v1/notes", bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			if v := rt.CheckRequest(r, nil); v != nil {
				b.Fatal(v)
			}
		})
	})
	b.Run("shop30/createOrder-2KB", func(b *testing.B) {
		rt := shopRoute(b, "/v2/orders", []string{"POST"}, Options{Validate: true})
		benchP50(b, func() {
			if v := rt.CheckRequest(orderRequest(b, order), nil); v != nil {
				b.Fatal(v.Findings)
			}
		})
	})
	b.Run("shop30/listProducts-query", func(b *testing.B) {
		rt := shopRoute(b, "/v2/products", []string{"GET"}, Options{Validate: true})
		benchP50(b, func() {
			r := httptest.NewRequest("GET", "/v2/products?category=bakery&q=sourdough&limit=50&cursor=abc_DEF-123", nil)
			if v := rt.CheckRequest(r, nil); v != nil {
				b.Fatal(v.Findings)
			}
		})
	})
}

// response10K is a note list of about 10 KB as the naive upstream sends it,
// internal fields included.
func response10K() []byte {
	var b strings.Builder
	b.WriteString(`{"notes":[`)
	for i := range 40 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"id":"` + itoa(i+1) + `","title":"Note about the garden","body":"Plant the tulips by the fence; ask Mrs. O'Neill about the compost.","owner_id":"u1","owner_email":"u1@users.example","internal_flags":{"moderation_score":0.02,"shadow_banned":false}}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func BenchmarkFilterResponse(b *testing.B) {
	body := response10K()
	clean := bytes.ReplaceAll(body, []byte(`,"owner_email":"u1@users.example","internal_flags":{"moderation_score":0.02,"shadow_banned":false}`), nil)
	for _, tc := range []struct {
		name string
		body []byte
		opts Options
	}{
		{"filter-leaky-10KB", body, Options{Response: ResponseFilter}},
		{"filter-clean", clean, Options{Response: ResponseFilter}},
		{"filter+redact-leaky-10KB", body, Options{Response: ResponseFilter, Secrets: SecretsRedact}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			rt := demoRoute(b, "/v1/notes", []string{"GET"}, tc.opts)
			b.SetBytes(int64(len(tc.body)))
			benchP50(b, func() {
				resp := jsonResponse("GET", "/v1/notes", 200, string(tc.body))
				if _, err := rt.FilterResponse(resp); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

func BenchmarkScanSecrets(b *testing.B) {
	clean := response10K()
	dirty := bytes.Replace(clean, []byte("Plant the tulips"), []byte("AKIAIOSFODNN7EXAMPLE "+fakeJWT+" 4111 1111 1111 1111"), 3)
	for _, tc := range []struct {
		name string
		body []byte
	}{{"clean-10KB", clean}, {"three-hits-10KB", dirty}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.body)))
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				scanSecrets(tc.body, true, func(secretHit) { n++ })
			}
		})
	}
}

func BenchmarkWAF(b *testing.B) {
	order, err := os.ReadFile("testdata/order_2k.json")
	if err != nil {
		b.Fatal(err)
	}
	small := []byte(`{"title":"Dentist","body":"Tuesday at 3pm with Dr. O'Neill, bring the insurance card. https://maps.example/x?id=42"}`)
	for _, pl := range []int{1, 2} {
		waf, err := NewWAF(WAFOptions{Paranoia: pl})
		if err != nil {
			b.Fatal(err)
		}
		for _, body := range [][]byte{small, order} {
			b.Run("PL"+itoa(pl)+"/POST-json-"+itoa(len(body))+"B", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					r := httptest.NewRequest("POST", "/v1/notes", nil)
					r.Header.Set("Content-Type", "application/json")
					r.Header.Set("Authorization", "Bearer "+fakeJWT)
					r.Header.Set("User-Agent", "NotesApp/4.12 (iPhone; iOS 18.1)")
					if _, err := waf.Check(r, body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run("PL"+itoa(pl)+"/GET-search", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("GET", "/v1/notes/search?q=dentist+appointment", nil)
				r.Header.Set("Authorization", "Bearer "+fakeJWT)
				r.Header.Set("User-Agent", "NotesApp/4.12 (iPhone; iOS 18.1)")
				if _, err := waf.Check(r, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
