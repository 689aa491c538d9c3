// Package mailer sends the identity flows' messages (email verification,
// password reset, notices) over SMTP with github.com/wneessen/go-mail.
//
// It owns the SMTP connection settings and a small bounded queue drained by
// background workers, so a slow or dead SMTP server never holds an API request:
// Enqueue returns at once, and a full queue drops the message (counted and
// logged). It must never log a recipient address or a message body — bodies
// carry one-time links and codes — and never take a password inline from the
// config (only from the environment, read by the caller).
package mailer
