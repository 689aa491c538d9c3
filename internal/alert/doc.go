// Package alert turns detector firings into alerts for people: grouped (one
// alert per detector per group window, with counts), rate-limited (a cap per
// hour across all detectors), and delivered to webhook, Slack-compatible and
// email sinks with bounded retries and exponential backoff.
//
// Webhook bodies are signed: Gatehouse-Signature: t=<unix>,v1=<hex HMAC-SHA256
// of "<t>.<body>">, so receivers can verify them and refuse replays (Verify).
//
// It must never block its caller (Notify drops and counts when the queue is
// full), never retry without bound, and never log a signing key, webhook URL or
// SMTP password: the sink types that hold them implement slog.LogValuer.
package alert
