package tlsutil

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PinSetVersion is the version of the PinSet document format.
const PinSetVersion = 1

// ErrBadPin reports a string that is not base64(SHA-256) of an SPKI.
var ErrBadPin = errors.New("not a SHA-256 SPKI pin")

// PinSet is what an app pins: the hosts, the SPKI pins of the serving key(s) and of
// the pre-generated backup key(s), and the date after which the set must no longer
// be enforced. It is the payload of /.well-known/gatehouse/pins.json and the input
// of every platform snippet.
type PinSet struct {
	Version int      `json:"version"`
	Hosts   []string `json:"hosts"`
	// Pins are base64(SHA-256(SPKI)) of keys that may serve now.
	Pins []string `json:"pins"`
	// Backups are pins of keys not yet serving, published in advance.
	Backups []string `json:"backups"`
	// NotAfter: after this instant clients must stop enforcing the set (fail open
	// rather than lock users out of an app that was never updated).
	NotAfter time.Time `json:"not_after"`
}

// All returns Pins then Backups, without duplicates.
func (p PinSet) All() []string {
	out := make([]string, 0, len(p.Pins)+len(p.Backups))
	for _, s := range append(slices.Clone(p.Pins), p.Backups...) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Contains reports whether pin is one of Pins or Backups.
func (p PinSet) Contains(pin string) bool {
	return slices.Contains(p.Pins, pin) || slices.Contains(p.Backups, pin)
}

// CheckPin returns nil when s is base64 (standard alphabet, padded) of 32 bytes.
func CheckPin(s string) error {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 32 {
		return fmt.Errorf("%q: %w (want base64 of 32 bytes, e.g. from `gatehouse pins`)", s, ErrBadPin)
	}
	return nil
}

// PinFormat names an output of RenderPinSet.
type PinFormat string

// Output formats.
const (
	PinFormatJSON    PinFormat = "json"    // the PinSet as JSON
	PinFormatAndroid PinFormat = "android" // res/xml/network_security_config.xml
	PinFormatIOS     PinFormat = "ios"     // Info.plist NSAppTransportSecurity/NSPinnedDomains
	PinFormatOkHttp  PinFormat = "okhttp"  // Kotlin CertificatePinner
)

// ErrUnknownPinFormat reports a format name ParsePinFormat does not know.
var ErrUnknownPinFormat = errors.New("unknown pin format")

// ParsePinFormat maps a format name to a PinFormat ("" is json).
func ParsePinFormat(s string) (PinFormat, error) {
	switch f := PinFormat(s); f {
	case "":
		return PinFormatJSON, nil
	case PinFormatJSON, PinFormatAndroid, PinFormatIOS, PinFormatOkHttp:
		return f, nil
	}
	return "", fmt.Errorf("tlsutil: %q: %w (want json, android, ios or okhttp)", s, ErrUnknownPinFormat)
}

// RenderPinSet writes p in format f. Every pin must pass CheckPin and there must be
// at least one host and two pins: a pin set without a backup bricks the app the
// day the serving key has to change.
func RenderPinSet(w io.Writer, p PinSet, f PinFormat) error {
	if err := p.check(); err != nil {
		return err
	}
	var b bytes.Buffer
	switch f {
	case PinFormatJSON, "":
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		if err := enc.Encode(p); err != nil {
			return fmt.Errorf("tlsutil: render pins: %w", err)
		}
	case PinFormatAndroid:
		renderAndroid(&b, p)
	case PinFormatIOS:
		renderIOS(&b, p)
	case PinFormatOkHttp:
		renderOkHttp(&b, p)
	default:
		return fmt.Errorf("tlsutil: render pins: %q: %w", f, ErrUnknownPinFormat)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("tlsutil: render pins: %w", err)
	}
	return nil
}

func (p PinSet) check() error {
	if len(p.Hosts) == 0 {
		return errors.New("tlsutil: pin set: no hosts")
	}
	for _, h := range p.Hosts {
		// Hosts end up inside XML, plist and Kotlin string literals; anything but a
		// host name is refused rather than escaped into something surprising.
		if !hostLike(h) {
			return fmt.Errorf("tlsutil: pin set: %q is not a host name", h)
		}
	}
	for _, s := range p.All() {
		if err := CheckPin(s); err != nil {
			return fmt.Errorf("tlsutil: pin set: %w", err)
		}
	}
	if len(p.Pins) == 0 {
		return errors.New("tlsutil: pin set: no serving pin")
	}
	if len(p.All()) < 2 {
		return errors.New("tlsutil: pin set: no backup pin (pinning a single key locks users out when it changes)")
	}
	if p.NotAfter.IsZero() {
		return errors.New("tlsutil: pin set: no expiry")
	}
	return nil
}

// hostLike accepts DNS names (optionally with a leading "*.") and IP literals
// made of letters, digits, '-', '.', ':'.
func hostLike(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == ':') {
			return false
		}
	}
	return true
}

func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func renderAndroid(b *bytes.Buffer, p PinSet) {
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>
<!-- res/xml/network_security_config.xml, referenced from AndroidManifest.xml:
     <application android:networkSecurityConfig="@xml/network_security_config" ...>
     Generated by "gatehouse pins". The pin set stops being enforced after its
     expiration date: ship an app update (or refresh pins at run time from
     /.well-known/gatehouse/pins.json) before then. -->
<network-security-config>
    <domain-config cleartextTrafficPermitted="false">
`)
	for _, h := range p.Hosts {
		sub := strings.HasPrefix(h, "*.")
		fmt.Fprintf(b, "        <domain includeSubdomains=%q>%s</domain>\n", strconv.FormatBool(sub), xmlText(strings.TrimPrefix(h, "*.")))
	}
	fmt.Fprintf(b, "        <pin-set expiration=%q>\n", p.NotAfter.UTC().Format("2006-01-02"))
	for _, s := range p.Pins {
		fmt.Fprintf(b, "            <pin digest=\"SHA-256\">%s</pin>\n", xmlText(s))
	}
	for _, s := range p.Backups {
		if !slices.Contains(p.Pins, s) {
			fmt.Fprintf(b, "            <!-- backup key -->\n            <pin digest=\"SHA-256\">%s</pin>\n", xmlText(s))
		}
	}
	b.WriteString("        </pin-set>\n    </domain-config>\n</network-security-config>\n")
}

func renderIOS(b *bytes.Buffer, p PinSet) {
	b.WriteString(`<!-- Info.plist: add inside the top-level <dict>. Generated by "gatehouse pins".
     Pins apply to the leaf certificate's key; the backup key's pin is listed so
     that a certificate for it is accepted the day it replaces the serving key.
     NSPinnedDomains has no expiry: ship an update before ` + p.NotAfter.UTC().Format("2006-01-02") + `. -->
<key>NSAppTransportSecurity</key>
<dict>
    <key>NSPinnedDomains</key>
    <dict>
`)
	for _, h := range p.Hosts {
		sub := strings.HasPrefix(h, "*.")
		fmt.Fprintf(b, "        <key>%s</key>\n        <dict>\n", xmlText(strings.TrimPrefix(h, "*.")))
		fmt.Fprintf(b, "            <key>NSIncludesSubdomains</key>\n            <%s/>\n", strconv.FormatBool(sub))
		b.WriteString("            <key>NSPinnedLeafIdentities</key>\n            <array>\n")
		for _, s := range p.All() {
			fmt.Fprintf(b, "                <dict>\n                    <key>SPKI-SHA256-BASE64</key>\n                    <string>%s</string>\n                </dict>\n", xmlText(s))
		}
		b.WriteString("            </array>\n        </dict>\n")
	}
	b.WriteString("    </dict>\n</dict>\n")
}

func renderOkHttp(b *bytes.Buffer, p PinSet) {
	fmt.Fprintf(b, `// Generated by "gatehouse pins". OkHttp has no pin expiry: ship an update
// (or refresh pins at run time from /.well-known/gatehouse/pins.json) before %s.
import okhttp3.CertificatePinner
import okhttp3.OkHttpClient

val certificatePinner = CertificatePinner.Builder()
`, p.NotAfter.UTC().Format("2006-01-02"))
	for _, h := range p.Hosts {
		pattern := h
		if strings.HasPrefix(h, "*.") {
			pattern = "**." + strings.TrimPrefix(h, "*.") // OkHttp: "**." also matches the bare domain
		}
		for _, s := range p.Pins {
			fmt.Fprintf(b, "    .add(%s, %s)\n", strconv.Quote(pattern), strconv.Quote("sha256/"+s))
		}
		for _, s := range p.Backups {
			if !slices.Contains(p.Pins, s) {
				fmt.Fprintf(b, "    .add(%s, %s) // backup key\n", strconv.Quote(pattern), strconv.Quote("sha256/"+s))
			}
		}
	}
	b.WriteString(`    .build()

val client = OkHttpClient.Builder()
    .certificatePinner(certificatePinner)
    .build()
`)
}
