package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, and its result
// must be either a config that validates or a non-empty Problems list naming the
// file.
func FuzzParse(f *testing.F) {
	for _, path := range []string{"../../gatehouse.example.yaml", "testdata/problems.yaml"} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	seeds := []string{
		minimal,                                // valid
		"",                                     // empty: required keys missing
		"- a\n",                                // root is a list
		"server: {listen: [}\n",                // syntax error
		minimal + "---\nissuer: x\n",           // second document
		minimal + "tokens: {access_ttl: 10}\n", // duration without unit
		minimal + "routes: [{path: '/{a}/{a}', upstream: x}]\n", // duplicate parameter
		"a: &a [1]\nb: [*a, *a]\n",                              // aliases
		"routes:\n  - &r {path: /a}\n  - <<: *r\n",              // merge key
		"plans: {\"a.b\": 1/h, \"x[\": 2/s}\n",                  // odd map keys
		"identity: {password: {argon2: {parallelism: 999}}}\n",  // overflow
		"? [a]\n: b\n",                // complex key
		"issuer: !!binary aGVsbG8=\n", // tagged scalar
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml", nil)
		if err == nil {
			if c == nil {
				t.Fatal("nil config without an error")
			}
			if ps := c.Validate(); len(ps) != 0 {
				t.Fatalf("Parse accepted a config that does not validate: %v", Problems(ps))
			}
			return
		}
		var ps Problems
		if !errors.As(err, &ps) || len(ps) == 0 {
			t.Fatalf("error is not a non-empty Problems: %v", err)
		}
		for _, p := range ps {
			if p.File != "fuzz.yaml" || p.Message == "" || p.Line < 0 {
				t.Fatalf("malformed problem %+v", p)
			}
		}
	})
}
