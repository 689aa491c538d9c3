package scan

import (
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Masker hides secrets in evidence: every registered secret verbatim, and by
// pattern bearer tokens, JWTs, password form/JSON fields and cookie headers. A
// nil *Masker still masks by pattern.
type Masker struct {
	mu      sync.RWMutex
	secrets []string
}

// Add registers secret values (passwords, tokens) to be replaced verbatim.
// Values shorter than 4 bytes are ignored: masking them would shred evidence.
func (m *Masker) Add(secrets ...string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range secrets {
		if len(s) >= 4 {
			m.secrets = append(m.secrets, s)
		}
	}
	// Longest first, so a token containing a password is masked whole.
	sort.Slice(m.secrets, func(i, j int) bool { return len(m.secrets[i]) > len(m.secrets[j]) })
}

const mask = "****"

var (
	reBearer   = regexp.MustCompile(`(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*`)
	reJWT      = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)
	reFormPW   = regexp.MustCompile(`(?i)((?:password|passwd|secret|client_secret|refresh_token|access_token)=)[^&\s]*`)
	reJSONPW   = regexp.MustCompile(`(?i)("(?:password|passwd|secret|client_secret|refresh_token|access_token|id_token)"\s*:\s*")[^"]*`)
	reCookie   = regexp.MustCompile(`(?im)^((?:set-)?cookie:\s*)[^\r\n]*`)
	reBasic    = regexp.MustCompile(`(?i)(basic\s+)[A-Za-z0-9+/]+=*`)
	rePHCHash  = regexp.MustCompile(`\$(argon2(?:id|i|d)|2[abxy]?|scrypt|pbkdf2[-_a-z0-9]*|7)\$[^\s"']{8,}|(pbkdf2_sha(?:1|256|512))\$[^\s"']{8,}`)
	rePrivKey  = regexp.MustCompile(`(?s)(-----BEGIN [A-Z ]*PRIVATE KEY-----).*?(-----END [A-Z ]*PRIVATE KEY-----)`)
	reAWSKeyID = regexp.MustCompile(`\b((?:AKIA|ASIA)[0-9A-Z]{4})[0-9A-Z]{12}\b`)
)

// Mask returns s with secrets replaced by "****" (JWTs keep their first 10
// characters so a reader can tell them apart).
func (m *Masker) Mask(s string) string {
	if s == "" {
		return s
	}
	if m != nil {
		m.mu.RLock()
		for _, sec := range m.secrets {
			s = strings.ReplaceAll(s, sec, mask)
		}
		m.mu.RUnlock()
	}
	s = reJWT.ReplaceAllStringFunc(s, func(t string) string { return t[:10] + "…" + mask })
	s = reBearer.ReplaceAllString(s, "${1}"+mask)
	s = reFormPW.ReplaceAllString(s, "${1}"+mask)
	s = reJSONPW.ReplaceAllString(s, "${1}"+mask)
	s = reCookie.ReplaceAllString(s, "${1}"+mask)
	s = reBasic.ReplaceAllString(s, "${1}"+mask)
	s = rePHCHash.ReplaceAllString(s, "$$${1}${2}$$"+mask)
	s = rePrivKey.ReplaceAllString(s, "${1}"+mask+"${2}")
	s = reAWSKeyID.ReplaceAllString(s, "${1}"+mask)
	s = maskCardNumbers(s)
	return s
}

var reCardCandidate = regexp.MustCompile(`\b(?:\d[ -]?){12,18}\d\b`)

// maskCardNumbers keeps the last four digits of anything passing the Luhn test.
func maskCardNumbers(s string) string {
	return reCardCandidate.ReplaceAllStringFunc(s, func(c string) string {
		d := digitsOnly(c)
		if !Luhn(d) {
			return c
		}
		return mask + d[len(d)-4:]
	})
}

func digitsOnly(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Luhn reports whether digits (13–19 of them) pass the Luhn checksum.
func Luhn(digits string) bool {
	if len(digits) < 13 || len(digits) > 19 {
		return false
	}
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		c := digits[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}
