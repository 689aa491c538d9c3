package protect

import "bytes"

// Secret types, used as Finding.Reason for KindSecret.
const (
	SecretPasswordHash   = "password_hash"
	SecretPrivateKey     = "private_key"
	SecretGCPServiceKey  = "gcp_service_account_key"
	SecretJWT            = "jwt"
	SecretAWSAccessKey   = "aws_access_key"
	SecretGitHubToken    = "github_token"
	SecretGatehouseToken = "gatehouse_refresh_token"
	SecretCardNumber     = "card_number"
)

// secretHit is one secret's byte span in a body.
type secretHit struct {
	typ        string
	start, end int
	bare       bool // a JSON number outside any string: redaction must quote it
}

// maxPEM bounds how far a PEM block is followed looking for its END line.
const maxPEM = 16 << 10

// scanSecrets finds secrets in b in one left-to-right pass. Each detector is
// anchored on a literal prefix and then consumes a bounded run of allowed bytes,
// so the cost is linear in len(b) whatever the input (no backtracking, no
// regular expression). It tracks JSON string state so that a card number that is
// a bare JSON number can be redacted without breaking the document.
func scanSecrets(b []byte, isJSON bool, visit func(secretHit)) {
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case !isJSON:
		case c == '"':
			inString = !inString
			continue
		case c == '\\' && inString:
			i++
			continue
		}
		var typ string
		end := 0
		switch c {
		case '$':
			end = passwordHashDollar(b, i)
			typ = SecretPasswordHash
		case 'p', 's':
			if boundaryBefore(b, i) {
				end = passwordHashDjango(b, i)
				typ = SecretPasswordHash
			}
		case '-':
			end, typ = pemBlock(b, i)
		case 'e':
			if boundaryBefore(b, i) {
				end = jwtToken(b, i)
				typ = SecretJWT
			}
		case 'A':
			if boundaryBefore(b, i) {
				end = awsKey(b, i)
				typ = SecretAWSAccessKey
			}
		case 'g':
			if boundaryBefore(b, i) {
				end, typ = ghToken(b, i)
			}
		default:
			if c >= '2' && c <= '6' && boundaryBefore(b, i) && (i == 0 || b[i-1] != '.') {
				end = cardNumber(b, i)
				typ = SecretCardNumber
			}
		}
		if end > i {
			visit(secretHit{typ: typ, start: i, end: end, bare: isJSON && typ == SecretCardNumber && !inString})
			i = end - 1
		}
	}
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isB64URL(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }

// boundaryBefore: the byte before i does not continue a word, so "xAKIA…" or
// "1234111…" are not anchors.
func boundaryBefore(b []byte, i int) bool {
	return i == 0 || !isB64URL(b[i-1])
}

// run returns the end of the run of bytes from i for which ok holds, stopping
// at limit bytes.
func run(b []byte, i, limit int, ok func(byte) bool) int {
	j := i
	for j < len(b) && j-i < limit && ok(b[j]) {
		j++
	}
	return j
}

func isHashChar(c byte) bool {
	return isAlnum(c) || c == '$' || c == '.' || c == '/' || c == '+' || c == '=' || c == ',' || c == '-' || c == '_'
}

var dollarHashPrefixes = [][]byte{
	[]byte("$argon2id$"), []byte("$argon2i$"), []byte("$argon2d$"),
	[]byte("$2a$"), []byte("$2b$"), []byte("$2y$"), []byte("$2x$"),
	[]byte("$scrypt$"), []byte("$7$"),
	[]byte("$pbkdf2-sha256$"), []byte("$pbkdf2-sha512$"), []byte("$pbkdf2-sha1$"), []byte("$pbkdf2$"),
	[]byte("$5$"), []byte("$6$"), []byte("$y$"),
}

// passwordHashDollar matches modular-crypt hashes ($argon2id$v=19$m=…$salt$hash,
// $2b$12$…, $scrypt$…, $pbkdf2-sha256$…, $6$…). It requires at least two more
// '$'-separated fields and 20 bytes after the prefix, so "$2a$" in prose is not
// a hit.
func passwordHashDollar(b []byte, i int) int {
	rest := b[i:]
	for _, p := range dollarHashPrefixes {
		if !bytes.HasPrefix(rest, p) {
			continue
		}
		end := run(b, i+len(p), 1024, isHashChar)
		body := b[i+len(p) : end]
		if len(body) < 20 {
			return 0
		}
		if p[1] == '2' {
			// bcrypt: cost "$" then 53 characters of salt and hash.
			if len(body) < 3+53 || body[2] != '$' {
				return 0
			}
			return end
		}
		if bytes.Count(body, []byte("$")) < 1 {
			return 0
		}
		return end
	}
	return 0
}

var djangoPrefixes = [][]byte{
	[]byte("pbkdf2_sha256$"), []byte("pbkdf2_sha1$"), []byte("scrypt$"), []byte("sha1$"),
}

// passwordHashDjango matches Django's algorithm$iterations$salt$hash form.
func passwordHashDjango(b []byte, i int) int {
	rest := b[i:]
	for _, p := range djangoPrefixes {
		if !bytes.HasPrefix(rest, p) {
			continue
		}
		end := run(b, i+len(p), 1024, isHashChar)
		body := b[i+len(p) : end]
		if len(body) >= 20 && bytes.Count(body, []byte("$")) >= 2 {
			return end
		}
		return 0
	}
	return 0
}

var (
	pemBegin      = []byte("-----BEGIN ")
	pemEnd        = []byte("-----END ")
	pemPrivateKey = []byte("PRIVATE KEY")
	gcpKeyField   = []byte(`"private_key"`)
)

// pemBlock matches a PEM private key from its BEGIN line to the end of its END
// line (or maxPEM bytes when the END line is missing). A key inside a JSON
// "private_key" member is a GCP service-account key.
func pemBlock(b []byte, i int) (int, string) {
	if !bytes.HasPrefix(b[i:], pemBegin) {
		return 0, ""
	}
	labelEnd := bytes.Index(b[i+len(pemBegin):min(len(b), i+len(pemBegin)+40)], []byte("-----"))
	if labelEnd < 0 {
		return 0, ""
	}
	label := b[i+len(pemBegin) : i+len(pemBegin)+labelEnd]
	if !bytes.Contains(label, pemPrivateKey) {
		return 0, ""
	}
	limit := min(len(b), i+maxPEM)
	end := limit
	if j := bytes.Index(b[i+len(pemBegin):limit], pemEnd); j >= 0 {
		k := i + len(pemBegin) + j + len(pemEnd)
		if m := bytes.Index(b[k:min(len(b), k+48)], []byte("-----")); m >= 0 {
			end = k + m + 5
		} else {
			end = k
		}
	}
	// The key body may hold a raw quote only in broken input; never let a span
	// cross one, so JSON string state and redaction stay sound.
	if q := bytes.IndexByte(b[i:end], '"'); q >= 0 {
		end = i + q
	}
	typ := SecretPrivateKey
	if bytes.Contains(b[max(0, i-32):i], gcpKeyField) {
		typ = SecretGCPServiceKey
	}
	return end, typ
}

// jwtToken matches header.payload.signature where header and payload are
// base64url JSON objects ("eyJ" is `{"` encoded).
func jwtToken(b []byte, i int) int {
	if !bytes.HasPrefix(b[i:], []byte("eyJ")) {
		return 0
	}
	h := run(b, i, 8192, isB64URL)
	if h-i < 10 || h >= len(b) || b[h] != '.' {
		return 0
	}
	p := run(b, h+1, 16384, isB64URL)
	if p-(h+1) < 4 || p >= len(b) || b[p] != '.' {
		return 0
	}
	s := run(b, p+1, 8192, isB64URL)
	return s
}

// awsKey matches AKIA/ASIA access key ids: the prefix and 16 upper-case
// letters or digits, not followed by another word character.
func awsKey(b []byte, i int) int {
	rest := b[i:]
	if !bytes.HasPrefix(rest, []byte("AKIA")) && !bytes.HasPrefix(rest, []byte("ASIA")) {
		return 0
	}
	end := run(b, i+4, 17, func(c byte) bool { return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' })
	if end-(i+4) != 16 || end < len(b) && isAlnum(b[end]) {
		return 0
	}
	return end
}

// ghToken matches GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_ and 36+
// characters; github_pat_) and Gatehouse refresh tokens (ghr_ and exactly 43
// base64url characters: 32 random bytes).
func ghToken(b []byte, i int) (int, string) {
	rest := b[i:]
	if bytes.HasPrefix(rest, []byte("github_pat_")) {
		end := run(b, i+11, 255, func(c byte) bool { return isAlnum(c) || c == '_' })
		if end-(i+11) >= 40 {
			return end, SecretGitHubToken
		}
		return 0, ""
	}
	if len(rest) < 4 || rest[0] != 'g' || rest[1] != 'h' || rest[3] != '_' {
		return 0, ""
	}
	switch rest[2] {
	case 'p', 'o', 'u', 's', 'r':
	default:
		return 0, ""
	}
	end := run(b, i+4, 256, isB64URL)
	n := end - (i + 4)
	if rest[2] == 'r' && n == 43 {
		return end, SecretGatehouseToken
	}
	alnum := run(b, i+4, 256, isAlnum)
	if alnum-(i+4) >= 36 {
		return alnum, SecretGitHubToken
	}
	return 0, ""
}

// cardNumber matches 13 to 19 digits, optionally grouped by single spaces or
// dashes, that start with a card network's prefix and pass the Luhn check.
// Prefixes keep ids and millisecond timestamps (which start with 1) out.
func cardNumber(b []byte, i int) int {
	var digits [19]byte
	n := 0
	j := i
	var sep byte
	for j < len(b) && n < 19 {
		c := b[j]
		if c >= '0' && c <= '9' {
			digits[n] = c - '0'
			n++
			j++
			continue
		}
		if (c == ' ' || c == '-') && n > 0 && j+1 < len(b) && b[j+1] >= '0' && b[j+1] <= '9' {
			if sep == 0 {
				sep = c
			}
			if c != sep {
				break
			}
			j++
			continue
		}
		break
	}
	// A longer digit run, or one glued to a word, is not one card number.
	if j < len(b) && (isAlnum(b[j]) || b[j] == '.' && j+1 < len(b) && b[j+1] >= '0' && b[j+1] <= '9') {
		return 0
	}
	if n < 13 || !cardPrefix(digits[:n]) || !luhn(digits[:n]) {
		return 0
	}
	return j
}

func cardPrefix(d []byte) bool {
	n := len(d)
	p2 := int(d[0])*10 + int(d[1])
	p4 := p2*100 + int(d[2])*10 + int(d[3])
	switch {
	case d[0] == 4: // Visa
		return n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720: // Mastercard
		return n == 16
	case p2 == 34 || p2 == 37: // American Express
		return n == 15
	case p4 == 6011 || p2 == 65 || p4/10 >= 644 && p4/10 <= 649: // Discover
		return n >= 16
	case p4 >= 3528 && p4 <= 3589: // JCB
		return n >= 16
	case p2 == 36 || p2 == 38 || p2 == 39 || p4/10 >= 300 && p4/10 <= 305: // Diners Club
		return n >= 14
	case p2 == 62: // UnionPay
		return n >= 16
	}
	return false
}

func luhn(d []byte) bool {
	sum := 0
	double := false
	for k := len(d) - 1; k >= 0; k-- {
		v := int(d[k])
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// redactSecrets returns b with every hit replaced by "[REDACTED:type]" (quoted
// when the hit was a bare JSON number, so the document stays valid JSON).
func redactSecrets(b []byte, hits []secretHit) []byte {
	out := make([]byte, 0, len(b))
	prev := 0
	for _, h := range hits {
		out = append(out, b[prev:h.start]...)
		if h.bare {
			out = append(out, '"')
		}
		out = append(out, "[REDACTED:"...)
		out = append(out, h.typ...)
		out = append(out, ']')
		if h.bare {
			out = append(out, '"')
		}
		prev = h.end
	}
	return append(out, b[prev:]...)
}
