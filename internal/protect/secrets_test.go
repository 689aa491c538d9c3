package protect

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func secretTypes(b []byte, isJSON bool) []string {
	var out []string
	scanSecrets(b, isJSON, func(h secretHit) { out = append(out, h.typ) })
	return out
}

// fakeJWT is header {"alg":"HS256","typ":"JWT"}, a small payload and a made-up signature.
const fakeJWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJlLW5vdC1yZWFs"

func TestScanSecrets(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string
	}{
		{"argon2id", `{"h":"$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$ZmFrZWhhc2g"}`, []string{SecretPasswordHash}},
		{"bcrypt 2b", `"$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"`, []string{SecretPasswordHash}},
		{"bcrypt 2y", `$2y$10$abcdefghijklmnopqrstuuJ0e0pVQ8v.B0Rz8dLr2Eq1Ws6m3b9Zi`, []string{SecretPasswordHash}},
		{"scrypt", `"$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E"`, []string{SecretPasswordHash}},
		{"pbkdf2 django", `"pbkdf2_sha256$600000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA=="`, []string{SecretPasswordHash}},
		{"pbkdf2 passlib", `"$pbkdf2-sha256$29000$N2bsPUdo7T2nFKLU2nuvNQ$scYsBgnuQfQz4l/7W2kw0Y9Lqa6s/Q7zqE1l8y6Ig1E"`, []string{SecretPasswordHash}},
		{"pem rsa", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n", []string{SecretPrivateKey}},
		{"pem openssh", "x -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----", []string{SecretPrivateKey}},
		{"gcp json", `{"type":"service_account","private_key_id":"abc","private_key":"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n","client_email":"x@y.iam.gserviceaccount.com"}`, []string{SecretGCPServiceKey}},
		{"jwt", `{"token":"` + fakeJWT + `"}`, []string{SecretJWT}},
		{"aws akia", `key AKIAIOSFODNN7EXAMPLE here`, []string{SecretAWSAccessKey}},
		{"aws asia", `"ASIAY34FZKBOKMUTVV7A"`, []string{SecretAWSAccessKey}},
		{"github ghp", `ghp_` + strings.Repeat("a1B2", 9), []string{SecretGitHubToken}},
		{"github pat", `github_pat_` + strings.Repeat("A1b2C3d4", 10) + `xy`, []string{SecretGitHubToken}},
		{"gatehouse refresh", `{"refresh_token":"ghr_` + strings.Repeat("Ab-_", 10) + `xyz"}`, []string{SecretGatehouseToken}},
		{"visa spaced", `card 4111 1111 1111 1111 ok`, []string{SecretCardNumber}},
		{"mastercard dashed", `5555-5555-5555-4444`, []string{SecretCardNumber}},
		{"amex bare json number", `{"pan":378282246310005}`, []string{SecretCardNumber}},
		{"several", `{"a":"AKIAIOSFODNN7EXAMPLE","b":"` + fakeJWT + `","c":"4012888888881881"}`, []string{SecretAWSAccessKey, SecretJWT, SecretCardNumber}},

		// Benign look-alikes.
		{"luhn fails", `4111 1111 1111 1112`, nil},
		{"ms timestamp", `{"ts":1733155200123,"id":4000000000000002}`, []string{SecretCardNumber}},
		{"epoch ms only", `{"ts":1733155200123}`, nil},
		{"long digit run", `41111111111111111111111`, nil},
		{"decimal", `0.4111111111111111`, nil},
		{"uuid", `"5f0c8a4e-2b7d-4c1e-9a3f-6d2e8b1c7a90"`, nil},
		{"akia in word", `XAKIAIOSFODNN7EXAMPLE`, nil},
		{"akia too long", `AKIAIOSFODNN7EXAMPLEX`, nil},
		{"short bcrypt-ish", `price $2a$ each`, nil},
		{"public key", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----", nil},
		{"certificate", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", nil},
		{"eyJ prose", `eyJust kidding`, nil},
		{"ghp short", `ghp_short`, nil},
		{"dollar prose", `costs $6$ or $7$ maybe`, nil},
		{"phone", `+44 1223 555 0199`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := secretTypes([]byte(tc.in), true)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRedactKeepsJSONValid(t *testing.T) {
	in := []byte(`{"pan":378282246310005,"note":"card 4111 1111 1111 1111, key AKIAIOSFODNN7EXAMPLE","list":[5555555555554444],"t":"` + fakeJWT + `"}`)
	var hits []secretHit
	scanSecrets(in, true, func(h secretHit) { hits = append(hits, h) })
	out := redactSecrets(in, hits)
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("redacted body is not JSON: %v: %s", err, out)
	}
	for _, secret := range []string{"378282246310005", "4111 1111", "AKIAIOSFODNN7EXAMPLE", "5555555555554444", "eyJhbGci"} {
		if bytes.Contains(out, []byte(secret)) {
			t.Errorf("%s survived: %s", secret, out)
		}
	}
	if v["pan"] != "[REDACTED:card_number]" {
		t.Errorf("pan = %v", v["pan"])
	}
}

func TestScanSecretsHostile(t *testing.T) {
	// Near-misses repeated: each anchor fails after a bounded look, so the scan
	// stays linear. (Speed is measured by BenchmarkScanSecrets, not asserted.)
	for _, in := range []string{
		strings.Repeat("$argon2id$", 10000),
		strings.Repeat("-----BEGIN ", 10000),
		"-----BEGIN RSA PRIVATE KEY-----" + strings.Repeat("A", 100000),
		strings.Repeat("eyJ", 20000),
		strings.Repeat("4111 ", 20000),
		strings.Repeat(`"\`, 20000),
		strings.Repeat("ghr_", 20000),
	} {
		got := secretTypes([]byte(in), true)
		if len(got) > len(in)/1024+1 {
			t.Errorf("%d hits in %.20q…", len(got), in)
		}
	}
}

func TestMask(t *testing.T) {
	cases := []struct{ in, want string }{
		{"AKIAIOSFODNN7EXAMPLE", "AKIA…"},
		{"abc", "a…"},
		{"ab", "…"},
		{"\x00\x01secretsecret", "??se…"},
	}
	for _, tc := range cases {
		if got := mask(tc.in, 4); got != tc.want {
			t.Errorf("mask(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzScanSecrets(f *testing.F) {
	// Seeds: each detector's positive form, near misses, JSON escapes around
	// anchors, and a card number as a bare JSON number (redaction must quote it).
	for _, s := range []string{
		`{"h":"$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$ZmFrZWhhc2g"}`,
		`"$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"`,
		"-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEE\\n-----END EC PRIVATE KEY-----",
		`{"t":"` + fakeJWT + `"}`,
		`{"k":"AKIAIOSFODNN7EXAMPLE","p":378282246310005}`,
		`["\"4111111111111111\"", 4111111111111111]`,
		`ghr_AbAbAbAbAbAbAbAbAbAbAbAbAbAbAbAbAbAbAbAbAbA`,
		`"\\"eyJ`,
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var hits []secretHit
		last := 0
		scanSecrets(b, true, func(h secretHit) {
			if h.start < last || h.end <= h.start || h.end > len(b) {
				t.Fatalf("bad span %+v (after %d, len %d)", h, last, len(b))
			}
			last = h.end
			hits = append(hits, h)
		})
		out := redactSecrets(b, hits)
		// Redacting a valid JSON document keeps it valid JSON.
		if json.Valid(b) && !json.Valid(out) {
			t.Fatalf("redaction broke JSON:\n in: %q\nout: %q", b, out)
		}
		// And nothing is found twice: the redacted form holds no secret.
		if n := len(secretTypes(out, true)); n != 0 && len(hits) > 0 {
			t.Fatalf("%d secrets after redaction: %q", n, out)
		}
	})
}
