package protect

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestCheckJSON(t *testing.T) {
	small := JSONLimits{MaxDepth: 3, MaxArrayLen: 3, MaxStringLen: 5, MaxKeys: 2}
	cases := []struct {
		name  string
		lim   JSONLimits
		in    string
		limit string
		field string
	}{
		{"ok", small, `{"a":[1,2,3],"b":"hello"}`, "", ""},
		{"depth", small, `{"a":{"b":{"c":{}}}}`, LimitDepth, "body.a.b.c"},
		{"depth arrays", small, `[[[[1]]]]`, LimitDepth, "body[0][0][0]"},
		{"array", small, `{"a":[1,2,3,4]}`, LimitArrayLen, "body.a[3]"},
		{"string value", small, `{"a":"toolong"}`, LimitStringLen, "body.a"},
		{"string key", small, `{"toolongkey":1}`, LimitStringLen, "body.toolongkey"},
		{"escaped quote in string", small, `{"a":"\"\"\""}`, LimitStringLen, "body.a"},
		{"keys", small, `{"a":1,"b":2,"c":3}`, LimitKeys, "body"},
		{"nested keys", small, `{"x":{"a":1,"b":2,"c":3}}`, LimitKeys, "body.x"},
		{"strings are not structure", small, `{"a":"[[[[","b":"{,,,"}`, "", ""},
		{"empty containers", small, `{"a":[],"b":{}}`, "", ""},
		{"defaults deep", JSONLimits{}, strings.Repeat("[", 33) + strings.Repeat("]", 33), LimitDepth, ""},
		{"defaults fine", JSONLimits{}, strings.Repeat("[", 32) + strings.Repeat("]", 32), "", ""},
		{"defaults array", JSONLimits{}, "[" + strings.Repeat("0,", 10000) + "0]", LimitArrayLen, "body[10000]"},
		{"defaults keys", JSONLimits{}, manyKeys(1001), LimitKeys, ""},
		{"hostile key path", JSONLimits{MaxDepth: 3}, `{"\u0000\n<script>":{"b":{"c":{}}}}`, LimitDepth, ""},
		{"unterminated string", small, `{"a":"abc`, "", ""},
		{"stray closers", small, `]]]}}}`, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.lim.CheckJSON([]byte(tc.in))
			if tc.limit == "" {
				if f != nil {
					t.Fatalf("finding %+v, want none", f)
				}
				return
			}
			if f == nil || f.Limit != tc.limit || f.Kind != KindJSONLimit {
				t.Fatalf("finding %+v, want limit %s", f, tc.limit)
			}
			if tc.field != "" && f.Field != tc.field {
				t.Errorf("field %q, want %q", f.Field, tc.field)
			}
			if strings.ContainsAny(f.Field, "\x00\n\"") || len(f.Field) > 600 {
				t.Errorf("unsafe field %q", f.Field)
			}
		})
	}
}

func manyKeys(n int) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k` + itoa(i) + `":0`)
	}
	b.WriteString("}")
	return b.String()
}

// measure computes depth, longest array, longest string and widest object with
// encoding/json's tokenizer: the reference CheckJSON must agree with.
func measure(b []byte) (depth, arr, str, keys int, err error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	type fr struct {
		array bool
		n     int
	}
	var stack []fr
	for {
		tok, e := dec.Token()
		if errors.Is(e, io.EOF) {
			return
		}
		if e != nil {
			return 0, 0, 0, 0, e
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				if len(stack) > 0 {
					stack[len(stack)-1].n++
				}
				stack = append(stack, fr{array: v == '['})
				depth = max(depth, len(stack))
			} else {
				top := stack[len(stack)-1]
				if top.array {
					arr = max(arr, top.n)
				} else {
					keys = max(keys, top.n/2)
				}
				stack = stack[:len(stack)-1]
			}
		default:
			if len(stack) > 0 {
				stack[len(stack)-1].n++
			}
		}
	}
}

func FuzzCheckJSON(f *testing.F) {
	// Seeds: nesting at the limit, escaped quotes and backslashes that must not
	// end a string early, structure characters inside strings, wide objects.
	for _, s := range []string{
		`{"a":[1,2,{"b":"c"}]}`,
		`["\"", "\\", "\\\"", "[{"]`,
		`[[[[[[]]]]]]`,
		`{"a":1,"b":2,"c":3,"d":4}`,
		`"\u005c"`,
		`[1,[2,[3,[4]]],"x,y"]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := JSONLimits{MaxDepth: 4, MaxArrayLen: 3, MaxKeys: 3, MaxStringLen: 1 << 20}
		got := lim.CheckJSON(b)
		if !json.Valid(b) {
			return
		}
		depth, arr, _, keys, err := measure(b)
		if err != nil {
			return
		}
		want := depth > 4 || arr > 3 || keys > 3
		if (got != nil) != want {
			t.Fatalf("CheckJSON %+v, reference depth %d array %d keys %d for %q", got, depth, arr, keys, b)
		}
	})
}
