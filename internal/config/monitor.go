package config

import (
	"net/mail"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Monitor is the event stream, the attack detectors, automatic bans and alerts.
type Monitor struct {
	// Disabled turns off detectors, bans made by them, and alerts. Bans made by
	// an operator are still enforced. Default false.
	Disabled bool `yaml:"disabled"`
	// AllowCIDRs are networks detectors never ban (office, monitoring, load
	// balancer health checks). They are still reported and alerted. Default
	// loopback (127.0.0.0/8, ::1): a loopback client is a local proxy or health
	// check, and banning it would ban everyone behind it. Setting the key
	// replaces the default.
	AllowCIDRs []string `yaml:"allow_cidrs"`
	// QueueSize bounds each sink's queue on the event bus; when one is full,
	// events for that sink are dropped and counted, never waited for. Default 4096.
	QueueSize int `yaml:"queue_size"`
	// DecisionInterval is how long gateway denials are aggregated (one stored
	// row per kind, route and caller, with a count) before the log, store and
	// webhook sinks see them. Default 1m.
	DecisionInterval Duration `yaml:"decision_interval"`
	// EventsWebhook, optional, receives every audit event and aggregated
	// denial in signed JSON batches.
	EventsWebhook Webhook `yaml:"events_webhook"`
	// Detectors are the attack detectors and their thresholds.
	Detectors Detectors `yaml:"detectors"`
	// Alerts are where detector firings are sent, grouped and rate-limited.
	Alerts Alerts `yaml:"alerts"`
}

// Detectors configures each detector. A detector fires when Threshold events
// (or distinct values) are seen within Window for one subject; then it bans
// the subject for BanFor (0: alert only) and stays quiet for that subject
// for max(Window, BanFor).
type Detectors struct {
	BruteForceIP      Detector   `yaml:"brute_force_ip"`
	BruteForceAccount Detector   `yaml:"brute_force_account"`
	StuffingIP        Detector   `yaml:"stuffing_ip"`
	StuffingAccount   Detector   `yaml:"stuffing_account"`
	Enumeration       Detector   `yaml:"enumeration"`
	RefreshReuse      Detector   `yaml:"refresh_reuse"`
	TokenForgery      Detector   `yaml:"token_forgery"`
	ErrorSpike        ErrorSpike `yaml:"error_spike"`
}

// Detector is one threshold detector.
type Detector struct {
	// Disabled turns the detector off.
	Disabled bool `yaml:"disabled"`
	// Threshold is the count (or number of distinct values) that fires it. At least 1.
	Threshold int `yaml:"threshold"`
	// Window is the sliding time window counted over.
	Window Duration `yaml:"window"`
	// BanFor is how long the subject is banned when it fires; 0s: alert only.
	BanFor Duration `yaml:"ban_for"`
}

// ErrorSpike compares each window's error count with a moving baseline.
type ErrorSpike struct {
	Disabled bool `yaml:"disabled"`
	// Window is the length of one counting window. Default 1m.
	Window Duration `yaml:"window"`
	// MinErrors is the fewest errors in a window that can fire. Default 50.
	MinErrors int `yaml:"min_errors"`
	// Factor: the window fires when its errors exceed Factor × the baseline.
	// Default 4.
	Factor float64 `yaml:"factor"`
	// Baseline is the time constant of the baseline's moving average. Default 30m.
	Baseline Duration `yaml:"baseline"`
}

// Alerts are the alert sinks and how alerts are grouped.
type Alerts struct {
	// GroupWait: firings of one detector within this time become one alert.
	// Default 30s.
	GroupWait Duration `yaml:"group_wait"`
	// RepeatInterval: after an alert, the same detector alerts again at most
	// this often (later firings are counted into the next one). Default 1h.
	RepeatInterval Duration `yaml:"repeat_interval"`
	// MaxPerHour caps alerts across all detectors; beyond, alerts are dropped
	// and counted. Default 30.
	MaxPerHour int `yaml:"max_per_hour"`
	// Retries is how many times a failed delivery is retried, with exponential
	// backoff from 1s. Default 5.
	Retries int `yaml:"retries"`
	// Webhook posts each alert as JSON, signed with HMAC-SHA256.
	Webhook Webhook `yaml:"webhook"`
	// Slack posts each alert to a Slack-compatible incoming webhook.
	Slack Slack `yaml:"slack"`
	// Email sends each alert over SMTP.
	Email Email `yaml:"email"`
}

// Webhook is a signed JSON webhook. URL empty: off.
type Webhook struct {
	URL string `yaml:"url"`
	// SecretEnv names the environment variable holding the HMAC key (at least
	// 16 bytes). Required with URL.
	SecretEnv string `yaml:"secret_env"`
}

// Slack is a Slack-compatible incoming webhook. Its URL is a secret, so it is
// read from an environment variable. Empty: off.
type Slack struct {
	URLEnv string `yaml:"url_env"`
}

// Email sends alerts over SMTP. Host empty: off.
type Email struct {
	Host string `yaml:"host"`
	// Port. Default 587.
	Port int `yaml:"port"`
	// TLS is "starttls" (default, required), "tls" (implicit, port 465) or
	// "none" (local relays only).
	TLS         string   `yaml:"tls"`
	Username    string   `yaml:"username"`
	PasswordEnv string   `yaml:"password_env"`
	From        string   `yaml:"from"`
	To          []string `yaml:"to"`
}

var emailTLS = []string{"starttls", "tls", "none"}

func defaultMonitor() Monitor {
	d := func(th int, w, ban time.Duration) Detector {
		return Detector{Threshold: th, Window: Duration(w), BanFor: Duration(ban)}
	}
	return Monitor{
		AllowCIDRs:       []string{"127.0.0.0/8", "::1/128"},
		QueueSize:        4096,
		DecisionInterval: Duration(time.Minute),
		Detectors: Detectors{
			BruteForceIP:      d(20, 5*time.Minute, 15*time.Minute),
			BruteForceAccount: d(10, 5*time.Minute, 0),
			StuffingIP:        d(10, 10*time.Minute, time.Hour),
			StuffingAccount:   d(10, 10*time.Minute, 0),
			Enumeration:       d(30, 5*time.Minute, 15*time.Minute),
			RefreshReuse:      d(1, time.Hour, 0),
			TokenForgery:      d(10, 5*time.Minute, time.Hour),
			ErrorSpike:        ErrorSpike{Window: Duration(time.Minute), MinErrors: 50, Factor: 4, Baseline: Duration(30 * time.Minute)},
		},
		Alerts: Alerts{
			GroupWait:      Duration(30 * time.Second),
			RepeatInterval: Duration(time.Hour),
			MaxPerHour:     30,
			Retries:        5,
			Email:          Email{Port: 587, TLS: "starttls"},
		},
	}
}

func (v *validator) monitor(c *Config) {
	m := c.Monitor
	for i, s := range m.AllowCIDRs {
		if _, err := netip.ParsePrefix(s); err != nil {
			if _, err := netip.ParseAddr(s); err != nil {
				v.add(pathIndex("monitor.allow_cidrs", i), "must be a CIDR or an address, got %q", clip(s))
			}
		}
	}
	v.intRange("monitor.queue_size", int64(m.QueueSize), 16, 1<<20)
	v.durationRange("monitor.decision_interval", m.DecisionInterval, time.Second, time.Hour)
	v.webhook("monitor.events_webhook", m.EventsWebhook)
	ds := m.Detectors
	for _, d := range []struct {
		name string
		d    Detector
	}{
		{"brute_force_ip", ds.BruteForceIP}, {"brute_force_account", ds.BruteForceAccount},
		{"stuffing_ip", ds.StuffingIP}, {"stuffing_account", ds.StuffingAccount},
		{"enumeration", ds.Enumeration}, {"refresh_reuse", ds.RefreshReuse}, {"token_forgery", ds.TokenForgery},
	} {
		if d.d.Disabled {
			continue
		}
		p := "monitor.detectors." + d.name
		v.intRange(p+".threshold", int64(d.d.Threshold), 1, 1_000_000)
		v.durationRange(p+".window", d.d.Window, time.Second, 7*day)
		v.durationRange(p+".ban_for", d.d.BanFor, 0, 30*day)
	}
	if sp := ds.ErrorSpike; !sp.Disabled {
		v.durationRange("monitor.detectors.error_spike.window", sp.Window, time.Second, time.Hour)
		v.intRange("monitor.detectors.error_spike.min_errors", int64(sp.MinErrors), 1, 1<<30)
		if sp.Factor < 1 || sp.Factor > 1000 {
			v.add("monitor.detectors.error_spike.factor", "must be between 1 and 1000 (got %g)", sp.Factor)
		}
		if sp.Baseline.D() < sp.Window.D() || sp.Baseline.D() > 7*day {
			v.add("monitor.detectors.error_spike.baseline", "must be between the window and 7d (got %s)", sp.Baseline)
		}
	}
	a := m.Alerts
	v.durationRange("monitor.alerts.group_wait", a.GroupWait, 0, time.Hour)
	v.durationRange("monitor.alerts.repeat_interval", a.RepeatInterval, 0, 7*day)
	v.intRange("monitor.alerts.max_per_hour", int64(a.MaxPerHour), 1, 10000)
	v.intRange("monitor.alerts.retries", int64(a.Retries), 0, 20)
	v.webhook("monitor.alerts.webhook", a.Webhook)
	if a.Slack.URLEnv != "" && !envNameRe.MatchString(a.Slack.URLEnv) {
		v.add("monitor.alerts.slack.url_env", "must be an environment variable name, got %q", clip(a.Slack.URLEnv))
	}
	if e := a.Email; e.Host != "" {
		p := "monitor.alerts.email"
		v.intRange(p+".port", int64(e.Port), 1, 65535)
		v.oneOf(p+".tls", e.TLS, emailTLS)
		if e.PasswordEnv != "" && !envNameRe.MatchString(e.PasswordEnv) {
			v.add(p+".password_env", "must be an environment variable name, got %q", clip(e.PasswordEnv))
		}
		if _, err := mail.ParseAddress(e.From); err != nil {
			v.add(p+".from", "must be an email address, got %q", clip(e.From))
		}
		if len(e.To) == 0 {
			v.add(p+".to", "list at least one recipient")
		}
		for i, to := range e.To {
			if _, err := mail.ParseAddress(to); err != nil {
				v.add(pathIndex(p+".to", i), "must be an email address, got %q", clip(to))
			}
		}
	}
}

func (v *validator) webhook(p string, w Webhook) {
	if w.URL == "" {
		if w.SecretEnv != "" {
			v.add(p+".url", "is required with secret_env")
		}
		return
	}
	u, err := url.Parse(w.URL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		v.add(p+".url", "must be an http(s) URL")
	} else if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		// A signed body is not a secret one: alerts name addresses and accounts.
		v.add(p+".url", "must be https (http is accepted for loopback receivers only)")
	}
	if !envNameRe.MatchString(w.SecretEnv) {
		v.add(p+".secret_env", "must name the environment variable holding the signing secret")
	}
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}
