package config

import (
	"strings"
	"testing"
	"time"
)

func TestMonitorDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal), "g.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := c.Monitor
	if m.Disabled || len(m.AllowCIDRs) != 2 || m.QueueSize != 4096 || m.Detectors.BruteForceIP.Threshold != 20 || m.Detectors.BruteForceIP.BanFor.D() != 15*time.Minute ||
		m.Detectors.BruteForceAccount.BanFor != 0 || m.Alerts.GroupWait.D() != 30*time.Second || m.Alerts.Email.TLS != "starttls" {
		t.Fatalf("defaults: %+v", m)
	}
	// A partly written detector keeps the defaults of the keys it leaves out.
	c, err = Parse([]byte(withTLS("monitor: {detectors: {stuffing_ip: {threshold: 3}}}\n")), "g.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Monitor.Detectors.StuffingIP; d.Threshold != 3 || d.Window.D() != 10*time.Minute || d.BanFor.D() != time.Hour {
		t.Fatalf("partial detector: %+v", d)
	}
}

func TestMonitorProblems(t *testing.T) {
	cases := []struct {
		yaml, path, msg string
	}{
		{"monitor: {allow_cidrs: [10.0.0.0/33]}", "monitor.allow_cidrs[0]", "CIDR"},
		{"monitor: {allow_cidrs: [not-an-ip]}", "monitor.allow_cidrs[0]", "CIDR"},
		{"monitor: {queue_size: 1}", "monitor.queue_size", "at least 16"},
		{"monitor: {decision_interval: 0s}", "monitor.decision_interval", "at least"},
		{"monitor: {detectors: {brute_force_ip: {threshold: 0}}}", "monitor.detectors.brute_force_ip.threshold", "at least 1"},
		{"monitor: {detectors: {enumeration: {window: 0s}}}", "monitor.detectors.enumeration.window", "at least"},
		{"monitor: {detectors: {token_forgery: {ban_for: 31d}}}", "monitor.detectors.token_forgery.ban_for", "at most"},
		{"monitor: {detectors: {error_spike: {factor: 0.5}}}", "monitor.detectors.error_spike.factor", "between"},
		{"monitor: {detectors: {error_spike: {baseline: 10s}}}", "monitor.detectors.error_spike.baseline", "between"},
		{"monitor: {alerts: {max_per_hour: 0}}", "monitor.alerts.max_per_hour", "at least 1"},
		{"monitor: {alerts: {retries: 99}}", "monitor.alerts.retries", "at most"},
		{"monitor: {alerts: {webhook: {url: 'http://alerts.example.com/x', secret_env: S}}}", "monitor.alerts.webhook.url", "https"},
		{"monitor: {alerts: {webhook: {url: 'ftp://x/y', secret_env: S}}}", "monitor.alerts.webhook.url", "http(s)"},
		{"monitor: {alerts: {webhook: {url: 'https://alerts.example.com/x'}}}", "monitor.alerts.webhook.secret_env", "environment"},
		{"monitor: {alerts: {webhook: {secret_env: S}}}", "monitor.alerts.webhook.url", "required"},
		{"monitor: {events_webhook: {url: 'https://x.example.com', secret_env: 'A B'}}", "monitor.events_webhook.secret_env", "environment"},
		{"monitor: {alerts: {slack: {url_env: 'https://hooks.slack.com/x'}}}", "monitor.alerts.slack.url_env", "environment"},
		{"monitor: {alerts: {email: {host: smtp.example.com, to: [a@example.com]}}}", "monitor.alerts.email.from", "email address"},
		{"monitor: {alerts: {email: {host: smtp.example.com, from: a@example.com}}}", "monitor.alerts.email.to", "at least one"},
		{"monitor: {alerts: {email: {host: smtp.example.com, from: a@example.com, to: ['x\"<y']}}}", "monitor.alerts.email.to[0]", "email address"},
		{"monitor: {alerts: {email: {host: smtp.example.com, from: a@example.com, to: [b@example.com], tls: ssl3}}}", "monitor.alerts.email.tls", "must be"},
		{"monitor: {alerts: {email: {host: smtp.example.com, from: a@example.com, to: [b@example.com], port: 70000}}}", "monitor.alerts.email.port", "at most"},
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
	// Loopback receivers may use plain http; a disabled detector is not checked.
	ok := withTLS("monitor: {alerts: {webhook: {url: 'http://127.0.0.1:9/hook', secret_env: S}}, detectors: {enumeration: {disabled: true, threshold: 0}}}\n")
	if _, err := Parse([]byte(ok), "g.yaml", nil); err != nil {
		t.Fatalf("valid monitor config refused: %v", err)
	}
}
