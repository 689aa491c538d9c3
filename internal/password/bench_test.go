package password

import (
	"context"
	"testing"
	"time"
)

// reportMS adds a ms/op column: hashing is measured in milliseconds.
func reportMS(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed())/float64(time.Millisecond)/float64(b.N), "ms/op")
}

func BenchmarkHashDefault(b *testing.B) {
	h, err := NewHasher(DefaultParams(), HasherOptions{MaxConcurrent: 1})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
	reportMS(b)
}

func BenchmarkVerifyDefault(b *testing.B) {
	h, err := NewHasher(DefaultParams(), HasherOptions{MaxConcurrent: 1})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	encoded, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := h.Verify(ctx, "correct horse battery staple", encoded); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
	reportMS(b)
}

// BenchmarkVerifyDummyDefault should match BenchmarkVerifyDefault: the dummy
// exists so that unknown accounts cost the same.
func BenchmarkVerifyDummyDefault(b *testing.B) {
	h, err := NewHasher(DefaultParams(), HasherOptions{MaxConcurrent: 1})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := h.VerifyDummy(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
	reportMS(b)
}

func BenchmarkPolicyCheck(b *testing.B) {
	p := DefaultPolicy()
	ctxWords := []string{"alice.smith@example.com", "Gatehouse"}
	// Load the list outside the timed loop (DefaultPolicy loads it on first use).
	if err := p.Check("warm up the list"); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, pw string }{
		{"accepted", "correct horse battery staple"},
		{"common", "qwerty123"},
		{"unicode", "пароль-для-входа 🔑 ｆｕｌｌ"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = p.Check(bc.pw, ctxWords...)
			}
		})
	}
}

func BenchmarkLoadBlocklist(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadBlocklist(); err != nil {
			b.Fatal(err)
		}
	}
	reportMS(b)
}
