package scan

import (
	"errors"
	"strings"
	"testing"
)

func TestParseSuppressions(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		n        int
		errPart  string
	}{
		{"yaml", "- id: GH-HDR-001\n  reason: served by the CDN\n- fingerprint: ABCD\n  reason: accepted risk\n", 2, ""},
		{"json", `[{"id":"GH-TLS-005","reason":"HSTS set at the edge"}]`, 1, ""},
		{"empty file", "", 0, ""},
		{"no reason", "- id: GH-HDR-001\n", 0, "reason is required"},
		{"blank reason", "- id: GH-HDR-001\n  reason: '  '\n", 0, "reason is required"},
		{"neither", "- reason: why\n", 0, "needs id or fingerprint"},
		{"both", "- id: A\n  fingerprint: B\n  reason: r\n", 0, "not both"},
		{"unknown key", "- id: A\n  reason: r\n  until: 2030\n", 0, "until"},
		{"not a list", "id: A\nreason: r\n", 0, "cannot unmarshal"},
		{"every problem at once", "- id: A\n- reason: r\n", 0, "entry 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSuppressions([]byte(tc.in))
			if tc.errPart != "" {
				if !errors.Is(err, ErrBadSuppression) || !strings.Contains(err.Error(), tc.errPart) {
					t.Fatalf("err = %v, want ErrBadSuppression mentioning %q", err, tc.errPart)
				}
				return
			}
			if err != nil || len(got) != tc.n {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
}

func sampleReport() *Report {
	r := &Report{Version: ReportVersion}
	for _, f := range []struct{ id, path string }{{"GH-HDR-001", "/a"}, {"GH-HDR-001", "/b"}, {"GH-AUTH-001", "/c"}} {
		r.Findings = append(r.Findings, NewFinding(Rule{ID: f.id, Title: "t", Severity: SeverityLow, Fix: "f"}, "c", "GET", "http://x"+f.path, f.path, "", Evidence{Request: "GET"}, nil))
	}
	return r
}

func TestSuppressAndBaseline(t *testing.T) {
	r := sampleReport()
	fp := strings.ToUpper(r.Findings[2].Fingerprint)
	r.Suppress([]Suppression{{ID: "gh-hdr-001", Reason: "r"}, {Fingerprint: fp, Reason: "r"}})
	if len(r.Findings) != 0 || r.Suppressed != 3 {
		t.Fatalf("after suppress: %d findings, %d suppressed", len(r.Findings), r.Suppressed)
	}
	prev := sampleReport()
	prevJSON := `{"version":1,"findings":[{"fingerprint":"` + prev.Findings[0].Fingerprint + `"}]}`
	known, err := ReadBaseline([]byte(prevJSON))
	if err != nil {
		t.Fatal(err)
	}
	cur := sampleReport()
	cur.DropKnown(known)
	if len(cur.Findings) != 2 || cur.Known != 1 {
		t.Fatalf("after baseline: %d findings, %d known", len(cur.Findings), cur.Known)
	}
	for _, bad := range []string{"", "{", `{"version":2,"findings":[]}`, `{"version":1}`, `[]`} {
		if _, err := ReadBaseline([]byte(bad)); !errors.Is(err, ErrBadBaseline) {
			t.Errorf("ReadBaseline(%q) err = %v", bad, err)
		}
	}
}

func FuzzParseSuppressions(f *testing.F) {
	f.Add([]byte("- id: GH-HDR-001\n  reason: cdn\n"))            // valid YAML
	f.Add([]byte(`[{"fingerprint":"00ff","reason":"accepted"}]`)) // valid JSON
	f.Add([]byte("- id: A\n"))                                    // missing reason
	f.Add([]byte("- &a {id: x, reason: y}\n- *a\n"))              // aliases
	f.Add([]byte("- id: [1, 2]\n  reason: {a: b}\n"))             // wrong types
	f.Fuzz(func(t *testing.T, b []byte) {
		list, err := ParseSuppressions(b)
		if err != nil {
			return
		}
		for _, s := range list {
			if s.Reason == "" || (s.ID == "") == (s.Fingerprint == "") {
				t.Fatalf("accepted an invalid suppression %+v", s)
			}
		}
	})
}

func FuzzReadBaseline(f *testing.F) {
	f.Add([]byte(`{"version":1,"findings":[{"fingerprint":"ab"}]}`))
	f.Add([]byte(`{"version":1,"findings":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ReadBaseline(b)
	})
}
