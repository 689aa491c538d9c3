package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/mailer"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Email flow errors.
var (
	// ErrInvalidCode: the link token or the code is wrong, expired, already
	// used or out of attempts. The four are one answer on purpose.
	ErrInvalidCode = errors.New("invalid, expired or used code")
)

// CodeStore keeps the one-time codes of the email flows (store.DB).
type CodeStore interface {
	CreateCode(ctx context.Context, c *store.Code) error
	Code(ctx context.Context, id string) (*store.Code, error)
	LatestCode(ctx context.Context, kind string, subject []byte, now time.Time) (*store.Code, error)
	AttemptCode(ctx context.Context, kind, id string, now time.Time) (*store.Code, error)
	UseCode(ctx context.Context, kind, id string, now time.Time) (*store.Code, error)
	DeleteCodes(ctx context.Context, userID, kind string) (int64, error)
}

// EmailVerifier marks addresses verified (store.DB).
type EmailVerifier interface {
	SetEmailVerified(ctx context.Context, userID string, verified bool, now time.Time) error
}

// Mailer queues outgoing mail without blocking (mailer.Mailer).
type Mailer interface {
	Enqueue(m mailer.Message) error
}

// Rate is a fixed-window budget: Count per Period. Count 0 turns it off.
type Rate struct {
	Count  int
	Period time.Duration
}

// EmailOptions configure the email flows.
type EmailOptions struct {
	// VerifyURL and ResetURL are the app's (universal / app) link bases; the
	// mail's link is the URL with "token=..." added to its query. "" → the
	// mail carries only the code.
	VerifyURL string
	ResetURL  string
	// TTL of a link and its code. 0 → 15m.
	TTL time.Duration
	// MaxAttempts wrong codes spend a mail's code (and its link). 0 → 5.
	MaxAttempts int
	// PerAddress caps mail sent to one address (every kind together): over
	// it the answer stays the same but nothing is sent. Zero → 3/h.
	PerAddress Rate
	// PerIP caps send requests from one client IP; over it the caller gets a
	// *ThrottledError (429). Zero → 20/h.
	PerIP Rate
	// AppName names the service in the mails. "" → Options.ServiceName.
	AppName string
}

// EmailFlows runs email verification and password reset on top of the
// account service.
//
// One mail, one code row. The link carries a 32-byte random token; the row's
// id is "e1." + base64url(SHA-256(token)), so the token itself is never
// stored and a link is found in one lookup. The same row carries the
// 8-digit code for typing into the app: Data holds the keyed blind index
// (Sealer.Index, purpose "email") of the row id and the code, so a stolen
// database does not let anyone try the 10^8 codes offline; Subject is the
// address's blind index, so {email, code} finds the row with LatestCode.
// Link and code are two spellings of one secret: using either uses the row
// (UseCode), and MaxAttempts wrong codes spend the row, link included. A new
// mail of a kind deletes the user's earlier codes of that kind, so at most
// one code is live per account and kind, and online guessing gets
// MaxAttempts tries per mail (mails themselves being capped per address).
type EmailFlows struct {
	acc      *Service
	codes    CodeStore
	verifier EmailVerifier
	mail     Mailer
	opts     EmailOptions
}

// NewEmailFlows returns the email flows.
func NewEmailFlows(acc *Service, codes CodeStore, verifier EmailVerifier, m Mailer, o EmailOptions) *EmailFlows {
	if o.TTL <= 0 {
		o.TTL = 15 * time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.PerAddress.Period <= 0 || o.PerAddress.Count <= 0 {
		o.PerAddress = Rate{Count: 3, Period: time.Hour}
	}
	if o.PerIP.Period <= 0 || o.PerIP.Count <= 0 {
		o.PerIP = Rate{Count: 20, Period: time.Hour}
	}
	if o.AppName == "" {
		o.AppName = acc.opts.ServiceName
	}
	return &EmailFlows{acc: acc, codes: codes, verifier: verifier, mail: m, opts: o}
}

// Proof is what a client presents: Token (from a link) or Email and Code.
type Proof struct {
	Token string
	Email string
	Code  string
}

const (
	tokenBytes  = 32
	codeDigits  = 8
	codeIDPrefx = "e1."
)

// SendVerification mails a verification link and code to email when it names
// an account whose address is not verified yet. The answer is the same
// whether or not it does (nil), except for a malformed address
// (ErrInvalidEmail) and a client IP over its budget (*ThrottledError).
func (f *EmailFlows) SendVerification(ctx context.Context, email string, m Meta) error {
	norm, u, ok, err := f.sendPrologue(ctx, email, m, audit.EmailVerificationSent)
	if err != nil || !ok {
		return err
	}
	if u == nil || u.EmailVerified {
		reason := "unknown_account"
		if u != nil {
			reason = "already_verified"
		}
		f.acc.record(ctx, audit.EmailVerificationSent, userID(u), m, map[string]string{"sent": "false", "reason": reason})
		return nil
	}
	return f.issue(ctx, store.CodeEmailVerify, u, norm, m)
}

// SendVerificationTo is SendVerification for a signed-in user.
func (f *EmailFlows) SendVerificationTo(ctx context.Context, uid string, m Meta) error {
	u, err := f.acc.User(ctx, uid)
	if err != nil {
		return err
	}
	norm, err := f.acc.Email(u)
	if err != nil {
		return err
	}
	_, _, ok, err := f.sendPrologue(ctx, norm, m, audit.EmailVerificationSent)
	if err != nil || !ok {
		return err
	}
	if u.EmailVerified {
		f.acc.record(ctx, audit.EmailVerificationSent, u.ID, m, map[string]string{"sent": "false", "reason": "already_verified"})
		return nil
	}
	return f.issue(ctx, store.CodeEmailVerify, u, norm, m)
}

// ForgotPassword mails a reset link and code when email names an account.
// Same answers as SendVerification.
func (f *EmailFlows) ForgotPassword(ctx context.Context, email string, m Meta) error {
	norm, u, ok, err := f.sendPrologue(ctx, email, m, audit.PasswordResetRequested)
	if err != nil || !ok {
		return err
	}
	if u == nil {
		f.acc.record(ctx, audit.PasswordResetRequested, "", m, map[string]string{"sent": "false", "reason": "unknown_account"})
		return nil
	}
	return f.issue(ctx, store.CodePasswordReset, u, norm, m)
}

// SignupCreated sends the verification mail to a new account (sign-up with
// identity.require_verified_email). Failures are logged, not returned: the
// account exists and the user can ask again.
func (f *EmailFlows) SignupCreated(ctx context.Context, u *store.User, m Meta) {
	norm, err := f.acc.Email(u)
	if err == nil {
		_, _, ok, perr := f.sendPrologue(ctx, norm, m, audit.EmailVerificationSent)
		if perr == nil && ok {
			err = f.issue(ctx, store.CodeEmailVerify, u, norm, m)
		} else {
			err = perr
		}
	}
	if err != nil {
		f.acc.opts.Logger.WarnContext(ctx, "signup verification mail", "user_id", u.ID, "error", err.Error())
	}
}

// SignupTaken answers a sign-up with an address that already has an account
// (with identity.require_verified_email, where sign-up must not reveal
// accounts): the owner gets a notice instead of a verification mail.
func (f *EmailFlows) SignupTaken(ctx context.Context, email string, m Meta) {
	norm, u, ok, err := f.sendPrologue(ctx, email, m, audit.EmailVerificationSent)
	if err != nil || !ok || u == nil {
		return
	}
	f.acc.record(ctx, audit.EmailVerificationSent, u.ID, m, map[string]string{"sent": "true", "reason": "signup_existing_account"})
	f.enqueue(ctx, mailer.Message{To: norm, Kind: "signup_existing", Subject: f.opts.AppName + ": someone tried to sign up with your address",
		Text: "Someone (maybe you) tried to create a new " + f.opts.AppName + " account with this email address.\n\n" +
			"You already have an account: sign in, or reset your password from the app if you forgot it.\n" +
			"If it was not you, you can ignore this message.\n"})
}

// sendPrologue runs the checks every sending request shares: the client IP's
// budget (error), the address (ErrInvalidEmail), and the address's budget
// (ok false: answer as usual, send nothing). The address is counted whether or
// not it has an account, so the counters reveal nothing either.
func (f *EmailFlows) sendPrologue(ctx context.Context, email string, m Meta, event string) (norm string, u *store.User, ok bool, err error) {
	now := f.acc.opts.Now().UTC()
	if m.IP != "" {
		n, reset, err := f.acc.throttle.Hit(ctx, "email_send:ip:"+m.IP, f.opts.PerIP.Period, now)
		if err != nil {
			return "", nil, false, fmt.Errorf("identity: email send: %w", err)
		}
		if n > int64(f.opts.PerIP.Count) {
			f.acc.record(ctx, event, "", m, map[string]string{"sent": "false", "reason": "ip_throttled"})
			return "", nil, false, &ThrottledError{RetryAfter: reset.Sub(now)}
		}
	}
	norm, err = NormalizeEmail(email)
	if err != nil {
		return "", nil, false, err
	}
	idx := f.acc.emailIndex(norm)
	n, _, err := f.acc.throttle.Hit(ctx, "email_send:acct:"+string(hexIndex(idx)), f.opts.PerAddress.Period, now)
	if err != nil {
		return "", nil, false, fmt.Errorf("identity: email send: %w", err)
	}
	u, err = f.acc.users.UserByEmailIndex(ctx, idx)
	if errors.Is(err, store.ErrNotFound) {
		u, err = nil, nil
	}
	if err != nil {
		return "", nil, false, fmt.Errorf("identity: email send: %w", err)
	}
	if n > int64(f.opts.PerAddress.Count) {
		f.acc.record(ctx, event, userID(u), m, map[string]string{"sent": "false", "reason": "address_throttled"})
		return norm, u, false, nil
	}
	return norm, u, true, nil
}

// issue makes a new link token and code for u, replacing the earlier ones of
// kind, and queues the mail.
func (f *EmailFlows) issue(ctx context.Context, kind string, u *store.User, norm string, m Meta) error {
	tok, code, err := newTokenAndCode()
	if err != nil {
		return fmt.Errorf("identity: email code: %w", err)
	}
	if _, err := f.codes.DeleteCodes(ctx, u.ID, kind); err != nil {
		return fmt.Errorf("identity: email code: %w", err)
	}
	now := f.acc.opts.Now().UTC()
	id := codeID(tok)
	c := &store.Code{
		ID: id, Kind: kind, UserID: u.ID, Subject: f.acc.emailIndex(norm),
		Data: f.codeMAC(id, code), MaxAttempts: f.opts.MaxAttempts,
		CreatedAt: now, ExpiresAt: now.Add(f.opts.TTL),
	}
	if err := f.codes.CreateCode(ctx, c); err != nil {
		return fmt.Errorf("identity: email code: %w", err)
	}
	minutes := int(f.opts.TTL / time.Minute)
	var msg mailer.Message
	switch kind {
	case store.CodeEmailVerify:
		msg = f.letter("verify", norm, "Verify your email address for "+f.opts.AppName,
			"Confirm that this address belongs to your "+f.opts.AppName+" account.", f.opts.VerifyURL, tok, code, minutes,
			"If you did not create an account, ignore this message.")
		f.acc.record(ctx, audit.EmailVerificationSent, u.ID, m, map[string]string{"sent": "true"})
	default:
		msg = f.letter("reset", norm, "Reset your "+f.opts.AppName+" password",
			"Someone (hopefully you) asked to reset the password of your "+f.opts.AppName+" account.", f.opts.ResetURL, tok, code, minutes,
			"If it was not you, ignore this message: your password stays as it is.")
		f.acc.record(ctx, audit.PasswordResetRequested, u.ID, m, map[string]string{"sent": "true"})
	}
	f.enqueue(ctx, msg)
	return nil
}

func (f *EmailFlows) letter(kind, to, subject, intro, base, tok, code string, minutes int, outro string) mailer.Message {
	var b strings.Builder
	b.WriteString(intro + "\n\n")
	link := ""
	if base != "" {
		link = withToken(base, tok)
		b.WriteString("Open this link on your phone:\n\n" + link + "\n\nor enter this code in the app:\n\n")
	} else {
		b.WriteString("Enter this code in the app:\n\n")
	}
	b.WriteString("    " + code + "\n\n")
	fmt.Fprintf(&b, "The link and the code work once, for %d minutes.\n%s\n", minutes, outro)
	return mailer.Message{To: to, Subject: subject, Text: b.String(), Kind: kind}
}

func (f *EmailFlows) enqueue(ctx context.Context, msg mailer.Message) {
	if err := f.mail.Enqueue(msg); err != nil {
		// The mailer counted and logged it; the request's answer must not change.
		f.acc.opts.Logger.DebugContext(ctx, "mail not queued", "kind", msg.Kind, "error", err.Error())
	}
}

// VerifyEmail checks a link token or an {email, code} and marks the address
// verified. ErrInvalidCode for anything wrong, ErrInvalidEmail for a
// malformed address.
func (f *EmailFlows) VerifyEmail(ctx context.Context, p Proof, m Meta) error {
	c, err := f.redeem(ctx, store.CodeEmailVerify, p, nil)
	if err != nil {
		if errors.Is(err, ErrInvalidCode) {
			f.acc.record(ctx, audit.EmailVerificationFailed, codeUser(c), m, map[string]string{"reason": "invalid_code", "via": via(p)})
		}
		return err
	}
	now := f.acc.opts.Now().UTC()
	if err := f.verifier.SetEmailVerified(ctx, c.UserID, true, now); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return ErrInvalidCode
		}
		return fmt.Errorf("identity: verify email: %w", err)
	}
	f.acc.record(ctx, audit.EmailVerified, c.UserID, m, map[string]string{"via": via(p)})
	return nil
}

// ResetPassword checks a link token or an {email, code}, checks the new
// password against the policy (before the code is touched, so a weak
// password costs no attempt), sets it, ends every session of the user,
// deletes the other pending reset codes, clears the sign-in lockout of the
// account and mails a notice. A reset also proves the mailbox, so it marks
// the address verified.
func (f *EmailFlows) ResetPassword(ctx context.Context, p Proof, newPassword string, m Meta) error {
	check := func(u *store.User, norm string) error {
		local, _, _ := strings.Cut(norm, "@")
		return f.acc.policy.Check(newPassword, local, f.acc.opts.ServiceName)
	}
	c, err := f.redeem(ctx, store.CodePasswordReset, p, check)
	if err != nil {
		reason := "invalid_code"
		if !errors.Is(err, ErrInvalidCode) {
			reason = "rejected"
		}
		if !errors.Is(err, ErrInvalidEmail) {
			f.acc.record(ctx, audit.PasswordResetFailed, codeUser(c), m, map[string]string{"reason": reason, "via": via(p)})
		}
		return err
	}
	u, err := f.acc.users.UserByID(ctx, c.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return ErrInvalidCode
	}
	if err != nil {
		return fmt.Errorf("identity: reset password: %w", err)
	}
	hash, err := f.acc.hasher.Hash(ctx, newPassword)
	if err != nil {
		return fmt.Errorf("identity: reset password: %w", err)
	}
	now := f.acc.opts.Now().UTC()
	if err := f.acc.users.SetPasswordHash(ctx, u.ID, hash, now); err != nil {
		return fmt.Errorf("identity: reset password: %w", err)
	}
	// Why every session: whoever knew the old password may hold a refresh
	// token; a reset must lock them out of every device, this one included.
	if _, err := f.acc.RevokeSessions(ctx, u.ID, "", "password_reset", m); err != nil {
		return err
	}
	if _, err := f.codes.DeleteCodes(ctx, u.ID, store.CodePasswordReset); err != nil {
		f.acc.opts.Logger.WarnContext(ctx, "delete reset codes", "user_id", u.ID, "error", err.Error())
	}
	if err := f.acc.throttle.ResetThrottle(ctx, "login:acct:"+string(hexIndex(u.EmailIndex))); err != nil {
		f.acc.opts.Logger.WarnContext(ctx, "reset login throttle", "user_id", u.ID, "error", err.Error())
	}
	if !u.EmailVerified {
		if err := f.verifier.SetEmailVerified(ctx, u.ID, true, now); err != nil {
			f.acc.opts.Logger.WarnContext(ctx, "verify email on reset", "user_id", u.ID, "error", err.Error())
		}
	}
	f.acc.record(ctx, audit.PasswordResetCompleted, u.ID, m, map[string]string{"via": via(p)})
	if norm, err := f.acc.Email(u); err == nil {
		f.enqueue(ctx, mailer.Message{To: norm, Kind: "password_changed", Subject: "Your " + f.opts.AppName + " password was changed",
			Text: "The password of your " + f.opts.AppName + " account was just changed, and every device was signed out.\n\n" +
				"If it was not you, reset your password now from the app and contact support.\n"})
	}
	return nil
}

// redeem finds and uses the code a proof names. check, optional, runs once
// the row is found and before it is used or an attempt is counted; its error
// is returned as is (the code stays live).
func (f *EmailFlows) redeem(ctx context.Context, kind string, p Proof, check func(u *store.User, norm string) error) (*store.Code, error) {
	now := f.acc.opts.Now().UTC()
	if p.Token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(p.Token)
		if err != nil || len(raw) != tokenBytes {
			return nil, ErrInvalidCode
		}
		id := codeID(p.Token)
		if check != nil {
			c, err := f.codes.Code(ctx, id)
			if errors.Is(err, store.ErrNotFound) || err == nil && (c.Kind != kind || c.UsedAt != nil || !c.ExpiresAt.After(now) || c.Attempts >= c.MaxAttempts) {
				return c, ErrInvalidCode
			}
			if err != nil {
				return nil, fmt.Errorf("identity: redeem: %w", err)
			}
			if err := f.checkFor(ctx, c, check); err != nil {
				return c, err
			}
		}
		c, err := f.codes.UseCode(ctx, kind, id, now)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrInvalidCode
		}
		if err != nil {
			return nil, fmt.Errorf("identity: redeem: %w", err)
		}
		// A row spent by wrong codes does not come back to life through its link.
		if c.Attempts >= c.MaxAttempts {
			return c, ErrInvalidCode
		}
		return c, nil
	}

	norm, err := NormalizeEmail(p.Email)
	if err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(nil, norm); err != nil {
			return nil, err
		}
	}
	if len(p.Code) != codeDigits || strings.Trim(p.Code, "0123456789") != "" {
		return nil, ErrInvalidCode
	}
	latest, err := f.codes.LatestCode(ctx, kind, f.acc.emailIndex(norm), now)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalidCode
	}
	if err != nil {
		return nil, fmt.Errorf("identity: redeem: %w", err)
	}
	// Count the attempt before comparing: N parallel guesses get at most
	// MaxAttempts comparisons.
	c, err := f.codes.AttemptCode(ctx, kind, latest.ID, now)
	if errors.Is(err, store.ErrNotFound) {
		return latest, ErrInvalidCode
	}
	if err != nil {
		return nil, fmt.Errorf("identity: redeem: %w", err)
	}
	if subtle.ConstantTimeCompare(c.Data, f.codeMAC(c.ID, p.Code)) != 1 {
		if c.Attempts >= c.MaxAttempts {
			// The last attempt spends the row, so its link dies with the code.
			if _, err := f.codes.UseCode(ctx, kind, c.ID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
				f.acc.opts.Logger.WarnContext(ctx, "spend exhausted code", "error", err.Error())
			}
		}
		return c, ErrInvalidCode
	}
	used, err := f.codes.UseCode(ctx, kind, c.ID, now)
	if errors.Is(err, store.ErrNotFound) {
		return c, ErrInvalidCode
	}
	if err != nil {
		return nil, fmt.Errorf("identity: redeem: %w", err)
	}
	return used, nil
}

func (f *EmailFlows) checkFor(ctx context.Context, c *store.Code, check func(u *store.User, norm string) error) error {
	u, err := f.acc.users.UserByID(ctx, c.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return ErrInvalidCode
	}
	if err != nil {
		return fmt.Errorf("identity: redeem: %w", err)
	}
	norm, err := f.acc.Email(u)
	if err != nil {
		return err
	}
	return check(u, norm)
}

// codeMAC binds the short code to its row under a key the store never sees.
func (f *EmailFlows) codeMAC(id, code string) []byte {
	return f.acc.sealer.Index("email", []byte("email-code\x00"+id+"\x00"+code))
}

func codeID(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return codeIDPrefx + base64.RawURLEncoding.EncodeToString(sum[:])
}

func newTokenAndCode() (tok, code string, err error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	n, err := rand.Int(rand.Reader, big.NewInt(100_000_000))
	if err != nil {
		return "", "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), fmt.Sprintf("%08d", n.Int64()), nil
}

// withToken adds token=tok to base's query (base was validated as a URL by
// the config).
func withToken(base, tok string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	q := u.Query()
	q.Set("token", tok)
	u.RawQuery = q.Encode()
	return u.String()
}

func via(p Proof) string {
	if p.Token != "" {
		return "link"
	}
	return "code"
}

func userID(u *store.User) string {
	if u == nil {
		return ""
	}
	return u.ID
}

func codeUser(c *store.Code) string {
	if c == nil {
		return ""
	}
	return c.UserID
}
