package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/wneessen/go-mail"
)

// TLS modes.
const (
	TLSStartTLS = "starttls" // STARTTLS, required (the default)
	TLSImplicit = "tls"      // implicit TLS (SMTPS, usually port 465)
	TLSNone     = "none"     // plaintext; loopback relays only
)

// Errors.
var (
	// ErrQueueFull: the message was dropped because the send queue is full.
	ErrQueueFull = errors.New("mailer: queue full")
	// ErrClosed: the mailer has stopped.
	ErrClosed = errors.New("mailer: stopped")
)

// Config is where and how mail is sent.
type Config struct {
	Host string
	// Port. 0 → 587 (starttls/none) or 465 (tls).
	Port int
	// Username, optional, turns on SMTP AUTH (with Password).
	Username string
	Password string
	// From is the envelope and header sender, a bare address or "Name <addr>".
	From string
	// TLS is TLSStartTLS ("" means it), TLSImplicit or TLSNone (only accepted
	// when Host is a loopback address or "localhost").
	TLS string
	// TLSConfig, optional, replaces the default TLS client config (e.g. a
	// private CA in tests). ServerName defaults to Host.
	TLSConfig *tls.Config
	// Timeout bounds each delivery: connect, handshake, and every SMTP command.
	// 0 → 15s.
	Timeout time.Duration
}

// LogValue masks the password.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("host", c.Host), slog.Int("port", c.Port), slog.String("tls", c.TLS), slog.String("password", "[redacted]"))
}

// Message is one plain-text mail, optionally with a simple HTML alternative.
// Headers are set by go-mail, which encodes them; To is validated by the
// caller (identity.NormalizeEmail) and again by go-mail.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string // optional
	// Kind labels the message in metrics and logs ("verify", "reset", ...).
	Kind string
}

// Options tune the queue. Zero values are usable.
type Options struct {
	// QueueSize is how many messages may wait. 0 → 256.
	QueueSize int
	// Workers deliver in parallel. 0 → 2.
	Workers int
	// Logger gets one line per failed or dropped message (never the address).
	// nil: discarded.
	Logger *slog.Logger
	// Registerer gets gatehouse_mail_messages_total{kind,result}. nil: not registered.
	Registerer prometheus.Registerer
}

// Mailer sends messages.
type Mailer struct {
	cfg     Config
	log     *slog.Logger
	queue   chan Message
	workers int
	results *prometheus.CounterVec

	mu      sync.Mutex
	stopped bool
	running bool
}

// New checks cfg and returns a mailer. Deliveries from the queue start with Run.
func New(cfg Config, o Options) (*Mailer, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Port == 0 {
		cfg.Port = 587
		if cfg.TLS == TLSImplicit {
			cfg.Port = 465
		}
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 256
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Mailer{cfg: cfg, log: o.Logger, queue: make(chan Message, o.QueueSize), workers: o.Workers,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_mail_messages_total",
			Help: "Outgoing mail by kind and result (sent, failed, dropped).",
		}, []string{"kind", "result"}),
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(m.results); err != nil {
			return nil, fmt.Errorf("mailer: metrics: %w", err)
		}
	}
	return m, nil
}

func (c Config) check() error {
	var errs []error
	if c.Host == "" {
		errs = append(errs, errors.New("host is required"))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, errors.New("port must be 1-65535"))
	}
	switch c.TLS {
	case "", TLSStartTLS, TLSImplicit:
	case TLSNone:
		// Why: without TLS the one-time links and codes cross the network in
		// clear; only a relay on this machine may be reached that way.
		if !IsLoopback(c.Host) {
			errs = append(errs, errors.New(`tls "none" is only allowed for a loopback host`))
		}
	default:
		errs = append(errs, fmt.Errorf("tls must be starttls, tls or none"))
	}
	if err := mail.NewMsg().From(c.From); err != nil || c.From == "" {
		errs = append(errs, errors.New("from must be an email address"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("mailer: %w", errors.Join(errs...))
	}
	return nil
}

// IsLoopback reports whether host is "localhost" or a loopback IP.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// Enqueue hands msg to the background workers and returns at once. A full
// queue or a stopped mailer drops the message (counted, logged, returned).
func (m *Mailer) Enqueue(msg Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		m.drop(msg, "stopped")
		return ErrClosed
	}
	select {
	case m.queue <- msg:
		return nil
	default:
		m.drop(msg, "queue_full")
		return ErrQueueFull
	}
}

func (m *Mailer) drop(msg Message, reason string) {
	m.results.WithLabelValues(kind(msg), "dropped").Inc()
	m.log.Warn("mail dropped", "kind", kind(msg), "reason", reason)
}

// Run delivers queued messages until ctx ends; messages still queued then are
// dropped (counted). Run may be called once.
func (m *Mailer) Run(ctx context.Context) {
	m.mu.Lock()
	if m.running || m.stopped {
		m.mu.Unlock()
		return
	}
	m.running = true
	m.mu.Unlock()
	var wg sync.WaitGroup
	for range m.workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case msg := <-m.queue:
					_ = m.Send(ctx, msg)
				}
			}
		})
	}
	wg.Wait()
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	for {
		select {
		case msg := <-m.queue:
			m.drop(msg, "stopped")
		default:
			return
		}
	}
}

// Send delivers msg now, bounded by the configured timeout. Failures are
// counted and logged without the recipient; the returned error may name it.
func (m *Mailer) Send(ctx context.Context, msg Message) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	err := m.deliver(ctx, msg)
	if err != nil {
		m.results.WithLabelValues(kind(msg), "failed").Inc()
		m.log.Error("mail not sent", "kind", kind(msg), "error", scrub(err, msg.To))
		return err
	}
	m.results.WithLabelValues(kind(msg), "sent").Inc()
	return nil
}

func (m *Mailer) deliver(ctx context.Context, msg Message) error {
	mm := mail.NewMsg()
	if err := mm.From(m.cfg.From); err != nil {
		return fmt.Errorf("mailer: from: %w", err)
	}
	if err := mm.To(msg.To); err != nil {
		return fmt.Errorf("mailer: to: %w", err)
	}
	mm.Subject(msg.Subject)
	mm.SetBodyString(mail.TypeTextPlain, msg.Text)
	if msg.HTML != "" {
		mm.AddAlternativeString(mail.TypeTextHTML, msg.HTML)
	}
	mm.SetDate()
	mm.SetMessageID()
	// Automated mail: auto-responders must not answer it (RFC 3834).
	mm.SetGenHeader("Auto-Submitted", "auto-generated")
	opts := []mail.Option{mail.WithPort(m.cfg.Port), mail.WithTimeout(m.cfg.Timeout)}
	switch m.cfg.TLS {
	case TLSImplicit:
		opts = append(opts, mail.WithSSL())
	case TLSNone:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		// Why mandatory: opportunistic STARTTLS can be stripped by anyone on
		// the path, and these messages carry sign-in secrets.
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if m.cfg.TLSConfig != nil {
		tc := m.cfg.TLSConfig.Clone()
		if tc.ServerName == "" {
			tc.ServerName = m.cfg.Host
		}
		opts = append(opts, mail.WithTLSConfig(tc))
	}
	if m.cfg.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(m.cfg.Username), mail.WithPassword(m.cfg.Password))
	}
	c, err := mail.NewClient(m.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("mailer: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, mm); err != nil {
		return fmt.Errorf("mailer: %w", err)
	}
	return nil
}

func kind(msg Message) string {
	if msg.Kind == "" {
		return "other"
	}
	return msg.Kind
}

// scrub removes the recipient from an error text before it is logged.
func scrub(err error, to string) string {
	s := err.Error()
	if to != "" {
		s = strings.ReplaceAll(s, to, "[recipient]")
	}
	return s
}
