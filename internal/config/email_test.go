package config

import (
	"strings"
	"testing"
)

func TestValidateSMTPAndIdentityEmail(t *testing.T) {
	t.Parallel()
	cases := []struct {
		yaml, path, msg string
	}{
		{"identity: {require_verified_email: true}", "identity.require_verified_email", "needs smtp.host"},
		{"smtp: {host: smtp.example.com}", "smtp.from", "email address"},
		{"smtp: {host: smtp.example.com, from: \"a@example.com\\r\\nBcc: x@example.com\"}", "smtp.from", "email address"},
		{"smtp: {host: smtp.example.com, from: a@example.com, tls: none}", "smtp.tls", "loopback"},
		{"smtp: {host: smtp.example.com, from: a@example.com, tls: ssl3}", "smtp.tls", "must be"},
		{"smtp: {host: smtp.example.com, from: a@example.com, port: 0}", "smtp.port", "at least"},
		{"smtp: {host: smtp.example.com, from: a@example.com, username: u}", "smtp.password_env", "required"},
		{"smtp: {host: smtp.example.com, from: a@example.com, password_env: 'A B'}", "smtp.password_env", "environment"},
		{"smtp: {host: smtp.example.com, from: a@example.com, timeout: 0s}", "smtp.timeout", "at least"},
		{"identity: {email: {verify_url: 'http://app.example.com/verify'}}", "identity.email.verify_url", "https"},
		{"identity: {email: {reset_url: 'app.example.com/reset'}}", "identity.email.reset_url", "absolute"},
		{"identity: {email: {reset_url: 'https://app.example.com/reset#x'}}", "identity.email.reset_url", "fragment"},
		{"identity: {email: {code_ttl: 10s}}", "identity.email.code_ttl", "at least"},
		{"identity: {email: {code_ttl: 2h}}", "identity.email.code_ttl", "at most"},
		{"identity: {email: {send_per_address: lots}}", "identity.email.send_per_address", "N/unit"},
		{"identity: {email: {send_per_ip: ''}}", "identity.email.send_per_ip", "N/unit"},
	}
	for _, tc := range cases {
		ps := parseProblems(t, withTLS(tc.yaml+"\n"), nil)
		found := false
		for _, p := range ps {
			if p.Path == tc.path && strings.Contains(p.Message, tc.msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: want a problem at %s containing %q, got %v", tc.yaml, tc.path, tc.msg, ps)
		}
	}
	ok := withTLS("smtp: {host: 127.0.0.1, port: 1025, tls: none, from: 'Example <no-reply@example.com>'}\n" +
		"identity: {require_verified_email: true, email: {verify_url: 'https://app.example.com/verify?src=mail', reset_url: 'http://localhost:3000/reset'}}\n")
	if _, err := Parse([]byte(ok), "g.yaml", nil); err != nil {
		t.Fatalf("valid email config refused: %v", err)
	}
}
