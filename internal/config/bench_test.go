package config

import (
	"os"
	"testing"
)

func BenchmarkParseExample(b *testing.B) {
	data, err := os.ReadFile("../../gatehouse.example.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data, "gatehouse.yaml", nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseProblems(b *testing.B) {
	data, err := os.ReadFile("testdata/problems.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, "problems.yaml", nil); err == nil {
			b.Fatal("no problems")
		}
	}
}
