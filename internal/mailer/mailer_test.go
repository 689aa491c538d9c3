package mailer_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/mailer"
	"github.com/gatehouse-dev/gatehouse/internal/mailer/mailpittest"
	"github.com/gatehouse-dev/gatehouse/internal/tlsutil"
	"github.com/prometheus/client_golang/prometheus"
)

func TestConfigChecked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  mailer.Config
		want string
	}{
		{"no host", mailer.Config{From: "a@example.com"}, "host is required"},
		{"bad from", mailer.Config{Host: "smtp.example.com", From: "not an address"}, "from must be"},
		{"header injection in from", mailer.Config{Host: "smtp.example.com", From: "a@example.com\r\nBcc: x@example.com"}, "from must be"},
		{"plaintext to a remote relay", mailer.Config{Host: "smtp.example.com", From: "a@example.com", TLS: "none"}, "loopback"},
		{"unknown tls", mailer.Config{Host: "smtp.example.com", From: "a@example.com", TLS: "ssl"}, "tls must be"},
		{"bad port", mailer.Config{Host: "smtp.example.com", From: "a@example.com", Port: 70000}, "port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := mailer.New(tt.cfg, mailer.Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	for _, ok := range []mailer.Config{
		{Host: "127.0.0.1", From: "a@example.com", TLS: "none"},
		{Host: "localhost", From: "Gatehouse <a@example.com>", TLS: "none"},
		{Host: "smtp.example.com", From: "a@example.com"},
		{Host: "smtp.example.com", From: "a@example.com", TLS: "tls"},
	} {
		if _, err := mailer.New(ok, mailer.Options{}); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}

func TestDeliversThroughTheQueue(t *testing.T) {
	t.Parallel()
	mp := mailpittest.Start(t)
	reg := prometheus.NewRegistry()
	m, err := mailer.New(mailer.Config{Host: mp.SMTPHost, Port: mp.SMTPPort, From: "Gatehouse <noreply@example.com>", TLS: "none", Timeout: 10 * time.Second},
		mailer.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	// A subject with CR LF must not become a header of its own.
	if err := m.Enqueue(mailer.Message{To: "user@example.com", Subject: "Hello\r\nBcc: evil@example.com", Text: "code 12345678\n", HTML: "<p>code <b>12345678</b></p>", Kind: "verify"}); err != nil {
		t.Fatal(err)
	}
	got := mp.WaitFor(t, "user@example.com", 1)
	if !strings.Contains(got.Text, "code 12345678") || !strings.Contains(got.HTML, "<b>12345678</b>") {
		t.Fatalf("bodies: %q / %q", got.Text, got.HTML)
	}
	if got.From.Address != "noreply@example.com" {
		t.Fatalf("from %+v", got.From)
	}
	if len(mp.To(t, "evil@example.com")) != 0 || len(got.To) != 1 {
		t.Fatalf("a header was injected: %+v", got.Summary)
	}
	deadline := time.Now().Add(10 * time.Second)
	for value(t, reg, "verify", "sent") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("sent counter not incremented")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFailureIsCountedAndDoesNotBlock(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	// Port 1 on loopback: nothing listens, the connection is refused.
	m, err := mailer.New(mailer.Config{Host: "127.0.0.1", Port: 1, From: "a@example.com", TLS: "none", Timeout: 2 * time.Second},
		mailer.Options{Registerer: reg, QueueSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), mailer.Message{To: "u@example.com", Subject: "s", Text: "t", Kind: "reset"}); err == nil {
		t.Fatal("send to a closed port succeeded")
	}
	if n := value(t, reg, "reset", "failed"); n != 1 {
		t.Fatalf("failed = %v", n)
	}
	// Without Run nothing drains: the second message finds the queue full.
	if err := m.Enqueue(mailer.Message{To: "u@example.com", Kind: "reset"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Enqueue(mailer.Message{To: "u@example.com", Kind: "reset"}); !errors.Is(err, mailer.ErrQueueFull) {
		t.Fatalf("got %v, want ErrQueueFull", err)
	}
	if n := value(t, reg, "reset", "dropped"); n != 1 {
		t.Fatalf("dropped = %v", n)
	}
}

// value reads gatehouse_mail_messages_total{kind,result}; 0 when absent.
func value(t *testing.T, reg *prometheus.Registry, kind, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// STARTTLS is required, never opportunistic: a server that offers it with a
// trusted certificate gets the mail; a plaintext-only server gets nothing.
func TestStartTLSIsRequired(t *testing.T) {
	t.Parallel()
	ca, err := tlsutil.EnsureDevCA(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tlsMP := mailpittest.Start(t, "--smtp-tls-cert", ca.CertFile, "--smtp-tls-key", ca.KeyFile, "--smtp-require-starttls")
	plainMP := mailpittest.Start(t)
	for _, tc := range []struct {
		name string
		mp   *mailpittest.Server
		ok   bool
	}{{"starttls offered", tlsMP, true}, {"plaintext only", plainMP, false}} {
		m, err := mailer.New(mailer.Config{Host: tc.mp.SMTPHost, Port: tc.mp.SMTPPort, From: "a@example.com", Timeout: 10 * time.Second,
			TLSConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}, mailer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = m.Send(context.Background(), mailer.Message{To: "tls@example.com", Subject: "s", Text: "secret link", Kind: "verify"})
		if (err == nil) != tc.ok {
			t.Fatalf("%s: err %v", tc.name, err)
		}
		if tc.ok {
			tc.mp.WaitFor(t, "tls@example.com", 1)
		} else if n := len(tc.mp.To(t, "tls@example.com")); n != 0 {
			t.Fatalf("%s: %d mails sent in clear", tc.name, n)
		}
	}
}
