package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
)

// SignatureHeader carries the webhook body's signature.
const SignatureHeader = "Gatehouse-Signature"

// Errors from Verify.
var (
	ErrBadSignature = errors.New("alert: bad webhook signature")
	ErrStale        = errors.New("alert: webhook signature outside the tolerance (replay?)")
)

// Sign returns the signature header value for body at t:
// "t=<unix>,v1=<hex HMAC-SHA256(secret, "<unix>.<body>")>". Binding the time
// into the MAC is what lets receivers refuse replays of an old delivery.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a signature header for body: well formed, the MAC right (any
// one of several v1 values, for key rotation), and the time within tolerance of
// now. Receivers should also remember the signatures they have seen within the
// tolerance if they must refuse every replay.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(header) > 1024 {
		return ErrBadSignature
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrBadSignature
		}
		switch k {
		case "t":
			if ts != "" {
				return ErrBadSignature
			}
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return ErrBadSignature
			}
			sigs = append(sigs, b)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 || ts != strconv.FormatInt(sec, 10) {
		return ErrBadSignature
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		ok = hmac.Equal(s, want) || ok
	}
	if !ok {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	return nil
}

// Webhook posts signed JSON. It is also the events sink's transport.
type Webhook struct {
	URL    string
	Secret []byte
	Client *http.Client // nil → a client with a 10s timeout
	Now    func() time.Time
}

// LogValue masks the secret.
func (w *Webhook) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", redactURL(w.URL)), slog.String("secret", "[redacted]"))
}

// Name implements Sink.
func (w *Webhook) Name() string { return "webhook" }

// Deliver implements Sink.
func (w *Webhook) Deliver(ctx context.Context, a Alert) error {
	return w.Post(ctx, "alert", a)
}

// Post sends v as signed JSON with a Gatehouse-Event header naming kind.
func (w *Webhook) Post(ctx context.Context, kind string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("alert: webhook: %w", err)
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	return post(ctx, w.client(), w.URL, body, map[string]string{
		SignatureHeader:   Sign(w.Secret, now(), body),
		"Gatehouse-Event": kind,
	})
}

func (w *Webhook) client() *http.Client {
	if w.Client != nil {
		return w.Client
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// Slack posts to a Slack-compatible incoming webhook ({"text": ...}).
type Slack struct {
	URL    string // a secret: whoever has it can post
	Client *http.Client
}

// LogValue masks the URL.
func (s *Slack) LogValue() slog.Value { return slog.StringValue("[redacted slack webhook]") }

// Name implements Sink.
func (s *Slack) Name() string { return "slack" }

// Deliver implements Sink.
func (s *Slack) Deliver(ctx context.Context, a Alert) error {
	body, _ := json.Marshal(map[string]string{"text": Text(a)})
	c := s.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	return post(ctx, c, s.URL, body, nil)
}

func post(ctx context.Context, c *http.Client, url string, body []byte, hdr map[string]string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return errors.New("alert: post: bad url")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gatehouse-alerts")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		// The error names the URL, which may be a secret (Slack); keep the kind only.
		return fmt.Errorf("alert: post: %w", unwrapURL(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("alert: post: receiver answered %d", resp.StatusCode)
	}
	return nil
}

func unwrapURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

func redactURL(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			rest = rest[:j]
		}
		if k := strings.LastIndex(rest, "@"); k >= 0 {
			rest = rest[k+1:]
		}
		return u[:i+3] + rest + "/…"
	}
	return "[redacted]"
}

// Email sends alerts over SMTP.
type Email struct {
	Host     string
	Port     int
	TLS      string // "starttls" (required), "tls" (implicit) or "none"
	Username string
	Password string
	From     string
	To       []string
	// Extra, optional, are more go-mail client options (e.g. a TLS config
	// with a private CA), applied last.
	Extra []mail.Option
}

// LogValue masks the password.
func (e *Email) LogValue() slog.Value {
	return slog.GroupValue(slog.String("host", e.Host), slog.Int("port", e.Port), slog.String("password", "[redacted]"))
}

// Name implements Sink.
func (e *Email) Name() string { return "email" }

// Deliver implements Sink.
func (e *Email) Deliver(ctx context.Context, a Alert) error {
	m := mail.NewMsg()
	if err := m.From(e.From); err != nil {
		return fmt.Errorf("alert: email: from: %w", err)
	}
	if err := m.To(e.To...); err != nil {
		return fmt.Errorf("alert: email: to: %w", err)
	}
	m.Subject(a.Title)
	m.SetBodyString(mail.TypeTextPlain, Text(a))
	m.SetGenHeader("X-Gatehouse-Alert-Id", a.ID)
	opts := []mail.Option{mail.WithPort(e.Port), mail.WithTimeout(10 * time.Second)}
	switch e.TLS {
	case "tls":
		opts = append(opts, mail.WithSSL())
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		// Why mandatory: opportunistic STARTTLS can be stripped by anyone on
		// the path, and the alert names addresses and accounts.
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if e.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(e.Username), mail.WithPassword(e.Password))
	}
	opts = append(opts, e.Extra...)
	c, err := mail.NewClient(e.Host, opts...)
	if err != nil {
		return fmt.Errorf("alert: email: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return fmt.Errorf("alert: email: %w", err)
	}
	return nil
}
