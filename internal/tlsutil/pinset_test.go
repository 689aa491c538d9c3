package tlsutil

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

const (
	pinA = "ndOOvJnZf9au3ImjBNdzHPH/SSeNtKha6i5dB+Jra+Q="
	pinB = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
)

func testPinSet() PinSet {
	return PinSet{Version: PinSetVersion, Hosts: []string{"api.example.com", "*.cdn.example.com"},
		Pins: []string{pinA}, Backups: []string{pinB}, NotAfter: time.Date(2027, 2, 26, 0, 0, 0, 0, time.UTC)}
}

// wellFormedXML decodes every token, failing on any syntax error.
func wellFormedXML(t *testing.T, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader("<root>" + strings.TrimPrefix(s, `<?xml version="1.0" encoding="utf-8"?>`) + "</root>"))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, s)
		}
	}
}

func TestRenderPinSet(t *testing.T) {
	ps := testPinSet()
	tests := []struct {
		format PinFormat
		want   []string
		xml    bool
	}{
		{PinFormatJSON, []string{`"version": 1`, `"hosts"`, `"pins"`, `"backups"`, `"not_after": "2027-02-26T00:00:00Z"`}, false},
		{PinFormatAndroid, []string{`<pin-set expiration="2027-02-26">`, `<pin digest="SHA-256">` + pinA + `</pin>`,
			`<pin digest="SHA-256">` + pinB + `</pin>`, `<domain includeSubdomains="false">api.example.com</domain>`,
			`<domain includeSubdomains="true">cdn.example.com</domain>`, `cleartextTrafficPermitted="false"`}, true},
		{PinFormatIOS, []string{"<key>NSPinnedDomains</key>", "<key>NSPinnedLeafIdentities</key>", "<key>SPKI-SHA256-BASE64</key>",
			"<string>" + pinA + "</string>", "<string>" + pinB + "</string>", "<key>cdn.example.com</key>", "<true/>"}, true},
		{PinFormatOkHttp, []string{`CertificatePinner.Builder()`, `.add("api.example.com", "sha256/` + pinA + `")`,
			`.add("api.example.com", "sha256/` + pinB + `") // backup key`, `.add("**.cdn.example.com", "sha256/` + pinA + `")`}, false},
	}
	for _, tc := range tests {
		t.Run(string(tc.format), func(t *testing.T) {
			var b bytes.Buffer
			if err := RenderPinSet(&b, ps, tc.format); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, b.String())
				}
			}
			if tc.xml {
				wellFormedXML(t, b.String())
			}
			if tc.format == PinFormatJSON {
				var back PinSet
				if err := json.Unmarshal(b.Bytes(), &back); err != nil || !back.NotAfter.Equal(ps.NotAfter) || back.Pins[0] != pinA {
					t.Errorf("JSON does not round-trip: %v %+v", err, back)
				}
			}
		})
	}
}

func TestRenderPinSetRefuses(t *testing.T) {
	tests := []struct {
		name string
		edit func(*PinSet)
	}{
		{"no backup", func(p *PinSet) { p.Backups = nil }},
		{"backup equals serving pin", func(p *PinSet) { p.Backups = []string{pinA} }},
		{"no serving pin", func(p *PinSet) { p.Pins = nil; p.Backups = []string{pinA, pinB} }},
		{"no hosts", func(p *PinSet) { p.Hosts = nil }},
		{"bad pin", func(p *PinSet) { p.Pins = []string{"sha256/" + pinA} }},
		{"short pin", func(p *PinSet) { p.Pins = []string{"AAAA"} }},
		{"unpadded pin", func(p *PinSet) { p.Pins = []string{strings.TrimRight(pinA, "=")} }},
		{"xml in host", func(p *PinSet) { p.Hosts = []string{"a</domain><domain>evil"} }},
		{"quote in host", func(p *PinSet) { p.Hosts = []string{`a", "sha256/x"); evil("`} }},
		{"space in host", func(p *PinSet) { p.Hosts = []string{"a b"} }},
		{"no expiry", func(p *PinSet) { p.NotAfter = time.Time{} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps := testPinSet()
			tc.edit(&ps)
			for _, f := range []PinFormat{PinFormatJSON, PinFormatAndroid, PinFormatIOS, PinFormatOkHttp} {
				var b bytes.Buffer
				if err := RenderPinSet(&b, ps, f); err == nil || b.Len() != 0 {
					t.Errorf("%s: rendered (err %v, %d bytes)", f, err, b.Len())
				}
			}
		})
	}
	if err := RenderPinSet(io.Discard, testPinSet(), "pem"); !errors.Is(err, ErrUnknownPinFormat) {
		t.Errorf("unknown format: %v", err)
	}
}

func TestParsePinFormat(t *testing.T) {
	for _, s := range []string{"", "json", "android", "ios", "okhttp"} {
		if _, err := ParsePinFormat(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"JSON", "xml", " json", "okhttp3", "ios\x00"} {
		if _, err := ParsePinFormat(s); !errors.Is(err, ErrUnknownPinFormat) {
			t.Errorf("%q accepted", s)
		}
	}
}

// Whatever host and pin strings come in, the snippets are either refused or
// well-formed, and a host never escapes its string or element.
func FuzzRenderPinSet(f *testing.F) {
	f.Add("api.example.com", pinA, pinB)
	f.Add("*.example.com", pinA, pinB)
	f.Add("a</domain><domain>evil", pinA, pinB)
	f.Add(`a"b`, pinA, pinB)
	f.Add("::1", pinA, "")
	f.Add("api.example.com", "<x>", pinB)
	f.Fuzz(func(t *testing.T, host, pin, backup string) {
		ps := PinSet{Version: 1, Hosts: []string{host}, Pins: []string{pin}, Backups: []string{backup},
			NotAfter: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}
		for _, f := range []PinFormat{PinFormatAndroid, PinFormatIOS, PinFormatOkHttp} {
			var b bytes.Buffer
			if err := RenderPinSet(&b, ps, f); err != nil {
				continue
			}
			if f != PinFormatOkHttp {
				wellFormedXML(t, b.String())
			}
			if strings.ContainsAny(host, "<>\"&\\\n") {
				t.Fatalf("%s: host %q rendered", f, host)
			}
		}
	})
}
