package passkey

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Errors returned by the service. HTTP maps them in internal/httpapi.
var (
	// ErrRejected: the ceremony or the credential did not verify (no such
	// ceremony, used or expired, begun for something else or someone else,
	// wrong origin or rp id, bad signature, unknown credential or user). One
	// error for all of them: an unauthenticated caller must not learn which.
	ErrRejected = errors.New("passkey: verification failed")
	// ErrCounterRegressed: the sign counter did not grow (possibly a cloned
	// authenticator). It also matches ErrRejected.
	ErrCounterRegressed = fmt.Errorf("%w: sign counter did not increase", ErrRejected)
	// ErrNotFound: the user has no passkey with this id.
	ErrNotFound = errors.New("passkey: not found")
	// ErrExists: the credential is registered already.
	ErrExists = errors.New("passkey: credential already registered")
	// ErrNoPasskeys: the mfa_token's user has no passkey to assert with.
	ErrNoPasskeys = errors.New("passkey: the user has no passkey")
	// ErrInvalidMFAToken: the mfa_token is unknown, used, expired or exhausted.
	ErrInvalidMFAToken = errors.New("passkey: invalid mfa_token")
)

// InputError is malformed input from the client: Field names the JSON member
// (e.g. "response.clientDataJSON"), "" when the whole body is at fault.
type InputError struct {
	Field  string
	Reason string
}

func (e *InputError) Error() string {
	if e.Field == "" {
		return "passkey: malformed input: " + e.Reason
	}
	return "passkey: malformed " + e.Field + ": " + e.Reason
}

// Store is what passkeys need from the store (*store.DB).
type Store interface {
	CreateCode(ctx context.Context, c *store.Code) error
	Code(ctx context.Context, id string) (*store.Code, error)
	UseCode(ctx context.Context, kind, id string, now time.Time) (*store.Code, error)
	CreateWebAuthnCredential(ctx context.Context, c *store.WebAuthnCredential) error
	ListWebAuthnCredentials(ctx context.Context, userID string) ([]store.WebAuthnCredential, error)
	UpdateWebAuthnUse(ctx context.Context, id string, oldCount, newCount int64, credential []byte, at time.Time) (bool, error)
	DeleteWebAuthnCredential(ctx context.Context, userID, id string) error
}

// Users finds accounts and opens their email (the passkey's user name).
type Users interface {
	User(ctx context.Context, id string) (*store.User, error)
	Email(u *store.User) (string, error)
}

// Recorder records audit events.
type Recorder interface {
	Record(ctx context.Context, e store.Event)
}

// Config is the relying party.
type Config struct {
	// RPID is the relying party id (a registrable domain or "localhost"). Required.
	RPID string
	// RPDisplayName is shown by authenticators. Required.
	RPDisplayName string
	// Origins are accepted clientDataJSON origins: https web origins and
	// android:apk-key-hash: origins. At least one web origin.
	Origins []string
	// Timeout is the life of a ceremony and the hint given to the client. 0 → 5m.
	Timeout time.Duration
}

// Options are optional.
type Options struct {
	// Now is the clock. nil: time.Now.
	Now func() time.Time
	// Logger gets verification failures at debug level (never the input). nil: discarded.
	Logger *slog.Logger
	// MFATokenID maps an mfa_token to its one-time code id. nil: hex SHA-256
	// of the token, as the MFA step stores it.
	MFATokenID func(token string) string
}

// Service runs passkey ceremonies.
type Service struct {
	wa    *webauthn.WebAuthn
	st    Store
	users Users
	audit Recorder
	ttl   time.Duration
	opts  Options
}

// Ceremony purposes, kept in the ceremony's data: a challenge begun for one
// purpose is refused by every other.
const (
	purposeRegister = "register"
	purposeLogin    = "login"
	purposeMFA      = "mfa"
)

// maxNameLen bounds a passkey's display name (bytes).
const maxNameLen = 100

// New returns the service.
func New(cfg Config, st Store, users Users, rec Recorder, opts Options) (*Service, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MFATokenID == nil {
		opts.MFATokenID = HashID
	}
	var web, opaque []string
	for _, o := range cfg.Origins {
		if protocol.IsOpaqueOrigin(o) {
			opaque = append(opaque, o)
		} else {
			web = append(web, o)
		}
	}
	rk := true
	wa, err := webauthn.New(&webauthn.Config{
		RPID:            cfg.RPID,
		RPDisplayName:   cfg.RPDisplayName,
		RPOrigins:       web,
		RPOpaqueOrigins: opaque,
		// Attestation "none": Gatehouse admits any authenticator the platform
		// offers (synced passkeys carry no attestation anyway), so asking for
		// one would only collect a device fingerprint.
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			// Discoverable credentials: sign-in needs no username.
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: &rk,
			UserVerification:   protocol.VerificationPreferred,
		},
		Timeouts: webauthn.TimeoutsConfig{
			// The store's expiry (on the injected clock) is what enforces
			// the timeout; these are the hints sent to the client.
			Login:        webauthn.TimeoutConfig{Timeout: cfg.Timeout, TimeoutUVD: cfg.Timeout},
			Registration: webauthn.TimeoutConfig{Timeout: cfg.Timeout, TimeoutUVD: cfg.Timeout},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	return &Service{wa: wa, st: st, users: users, audit: rec, ttl: cfg.Timeout, opts: opts}, nil
}

// HashID is the hex SHA-256 of s: the id of a ceremony (of its challenge)
// and, by default, of an mfa_token.
func HashID(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// challengeID is the ceremony id for a challenge as the client echoes it in
// clientDataJSON (base64url, padding tolerated).
func challengeID(challenge string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(challenge, "="))
	if err != nil || len(b) < protocol.MinimumChallengeLength {
		return "", false
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), true
}

// user is a Gatehouse account as the library sees it.
type user struct {
	id          []byte // the user id (a UUID string): the WebAuthn user handle
	name        string
	credentials []webauthn.Credential
}

func (u *user) WebAuthnID() []byte                         { return u.id }
func (u *user) WebAuthnName() string                       { return u.name }
func (u *user) WebAuthnDisplayName() string                { return u.name }
func (u *user) WebAuthnCredentials() []webauthn.Credential { return u.credentials }

// ceremony is the data kept with a begun ceremony.
type ceremony struct {
	Purpose string               `json:"purpose"`
	Name    string               `json:"name,omitempty"`     // registration: the passkey's name
	MFACode string               `json:"mfa_code,omitempty"` // mfa: the mfa_token's code id
	Session webauthn.SessionData `json:"session"`
}

// Credential is a passkey as its owner sees it.
type Credential struct {
	ID             string     `json:"id"`
	Name           string     `json:"name"`
	CreatedAt      time.Time  `json:"created_at"`
	LastUsedAt     *time.Time `json:"last_used_at,omitempty"`
	BackupEligible bool       `json:"backup_eligible"`
	BackupState    bool       `json:"backup_state"`
}

// loaded is a stored passkey with its decoded record.
type loaded struct {
	row  store.WebAuthnCredential
	cred webauthn.Credential
}

func (s *Service) load(ctx context.Context, userID string) ([]loaded, error) {
	rows, err := s.st.ListWebAuthnCredentials(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("passkey: list: %w", err)
	}
	out := make([]loaded, 0, len(rows))
	for _, r := range rows {
		var c webauthn.Credential
		if err := json.Unmarshal(r.Credential, &c); err != nil {
			return nil, fmt.Errorf("passkey: decode credential %s: %w", r.ID, err)
		}
		out = append(out, loaded{row: r, cred: c})
	}
	return out, nil
}

func (s *Service) waUser(ctx context.Context, u *store.User, creds []loaded) (*user, error) {
	email, err := s.users.Email(u)
	if err != nil {
		return nil, fmt.Errorf("passkey: open email: %w", err)
	}
	wu := &user{id: []byte(u.ID), name: email}
	for _, c := range creds {
		wu.credentials = append(wu.credentials, c.cred)
	}
	return wu, nil
}

// save stores a begun ceremony under the hash of its challenge.
func (s *Service) save(ctx context.Context, userID string, c ceremony) error {
	id, ok := challengeID(c.Session.Challenge)
	if !ok {
		return errors.New("passkey: the library made an unusable challenge")
	}
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("passkey: encode ceremony: %w", err)
	}
	now := s.opts.Now()
	return s.st.CreateCode(ctx, &store.Code{
		ID: id, Kind: store.CodeWebAuthn, UserID: userID, Data: data,
		MaxAttempts: 1, CreatedAt: now, ExpiresAt: now.Add(s.ttl),
	})
}

// claim finds the live ceremony the client data's challenge names, checks it
// was begun for purpose and userID ("" for discoverable sign-in), and uses it
// up. Why check before using: a challenge presented at the wrong endpoint or
// by the wrong user must not burn the rightful owner's ceremony. Why use it
// before verifying: so a replayed response can never verify twice, however
// the requests interleave.
func (s *Service) claim(ctx context.Context, challenge, purpose, userID string) (*ceremony, error) {
	id, ok := challengeID(challenge)
	if !ok {
		return nil, fmt.Errorf("%w: no such ceremony", ErrRejected)
	}
	now := s.opts.Now()
	code, err := s.st.Code(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: no such ceremony", ErrRejected)
	}
	if err != nil {
		return nil, fmt.Errorf("passkey: ceremony: %w", err)
	}
	if code.Kind != store.CodeWebAuthn || code.UsedAt != nil || !code.ExpiresAt.After(now) {
		return nil, fmt.Errorf("%w: ceremony used or expired", ErrRejected)
	}
	var c ceremony
	if err := json.Unmarshal(code.Data, &c); err != nil {
		return nil, fmt.Errorf("passkey: decode ceremony: %w", err)
	}
	if c.Purpose != purpose || code.UserID != userID {
		return nil, fmt.Errorf("%w: ceremony begun for another purpose or user", ErrRejected)
	}
	if _, err := s.st.UseCode(ctx, store.CodeWebAuthn, id, now); errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: ceremony used or expired", ErrRejected)
	} else if err != nil {
		return nil, fmt.Errorf("passkey: use ceremony: %w", err)
	}
	return &c, nil
}

// BeginRegistration starts registering a passkey for a signed-in user. name
// labels it in the user's list ("" → "Passkey"). The options exclude the
// user's existing passkeys, so an authenticator does not register twice.
func (s *Service) BeginRegistration(ctx context.Context, userID, name string) (*protocol.CredentialCreation, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = "Passkey"
	}
	if !validName(name) {
		return nil, &InputError{Field: "name", Reason: fmt.Sprintf("must be at most %d bytes of printable text", maxNameLen)}
	}
	u, err := s.users.User(ctx, userID)
	if err != nil {
		return nil, err
	}
	if u.LockedAt != nil {
		return nil, identity.ErrLocked
	}
	creds, err := s.load(ctx, userID)
	if err != nil {
		return nil, err
	}
	wu, err := s.waUser(ctx, u, creds)
	if err != nil {
		return nil, err
	}
	exclude := make([]protocol.CredentialDescriptor, 0, len(creds))
	for _, c := range creds {
		exclude = append(exclude, c.cred.Descriptor())
	}
	opts, sess, err := s.wa.BeginRegistration(wu, webauthn.WithExclusions(exclude))
	if err != nil {
		return nil, fmt.Errorf("passkey: begin registration: %w", err)
	}
	if err := s.save(ctx, userID, ceremony{Purpose: purposeRegister, Name: name, Session: *sess}); err != nil {
		return nil, err
	}
	return opts, nil
}

// FinishRegistration verifies an attestation response (the
// PublicKeyCredential JSON) against the user's registration ceremony and
// stores the passkey.
func (s *Service) FinishRegistration(ctx context.Context, userID string, body []byte, m identity.Meta) (*Credential, error) {
	if err := checkShape(body, attestationFields); err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return nil, &InputError{Field: "response.attestationObject", Reason: "is not a valid attestation object"}
	}
	c, err := s.claim(ctx, parsed.Response.CollectedClientData.Challenge, purposeRegister, userID)
	if err != nil {
		return nil, err
	}
	u, err := s.users.User(ctx, userID)
	if err != nil {
		return nil, err
	}
	if u.LockedAt != nil {
		return nil, identity.ErrLocked
	}
	creds, err := s.load(ctx, userID)
	if err != nil {
		return nil, err
	}
	wu, err := s.waUser(ctx, u, creds)
	if err != nil {
		return nil, err
	}
	cred, err := s.wa.CreateCredential(wu, c.Session, parsed)
	if err != nil {
		s.debug(ctx, "registration rejected", userID, err)
		return nil, fmt.Errorf("%w: %s", ErrRejected, describe(err))
	}
	rec, err := json.Marshal(cred)
	if err != nil {
		return nil, fmt.Errorf("passkey: encode credential: %w", err)
	}
	row := &store.WebAuthnCredential{
		ID: base64.RawURLEncoding.EncodeToString(cred.ID), UserID: userID, Name: c.Name,
		Credential: rec, SignCount: int64(cred.Authenticator.SignCount), CreatedAt: s.opts.Now().UTC(),
	}
	if err := s.st.CreateWebAuthnCredential(ctx, row); errors.Is(err, store.ErrConflict) {
		return nil, ErrExists
	} else if err != nil {
		return nil, fmt.Errorf("passkey: store credential: %w", err)
	}
	s.record(ctx, audit.PasskeyRegistered, userID, m, map[string]string{
		"credential_id": row.ID, "backup_eligible": fmt.Sprint(cred.Flags.BackupEligible), "user_verified": fmt.Sprint(cred.Flags.UserVerified),
	})
	return view(row, cred), nil
}

// BeginLogin starts a passwordless sign-in: no user, no allowed credentials
// (the authenticator offers its discoverable passkeys for the rp id).
func (s *Service) BeginLogin(ctx context.Context) (*protocol.CredentialAssertion, error) {
	opts, sess, err := s.wa.BeginDiscoverableLogin()
	if err != nil {
		return nil, fmt.Errorf("passkey: begin login: %w", err)
	}
	if err := s.save(ctx, "", ceremony{Purpose: purposeLogin, Session: *sess}); err != nil {
		return nil, err
	}
	return opts, nil
}

// BeginMFA starts a passkey assertion as the second step of a sign-in: the
// mfa_token is looked up (not used: the MFA grant consumes it) and the
// options list only its user's passkeys.
func (s *Service) BeginMFA(ctx context.Context, mfaToken string) (*protocol.CredentialAssertion, error) {
	if mfaToken == "" || len(mfaToken) > 512 {
		return nil, ErrInvalidMFAToken
	}
	id := s.opts.MFATokenID(mfaToken)
	code, err := s.st.Code(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalidMFAToken
	}
	if err != nil {
		return nil, fmt.Errorf("passkey: mfa token: %w", err)
	}
	if code.Kind != store.CodeMFA || code.UsedAt != nil || !code.ExpiresAt.After(s.opts.Now()) || code.Attempts >= code.MaxAttempts || code.UserID == "" {
		return nil, ErrInvalidMFAToken
	}
	u, err := s.users.User(ctx, code.UserID)
	if errors.Is(err, identity.ErrNotFound) || errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalidMFAToken
	}
	if err != nil {
		return nil, err
	}
	if u.LockedAt != nil {
		return nil, identity.ErrLocked
	}
	creds, err := s.load(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if len(creds) == 0 {
		return nil, ErrNoPasskeys
	}
	wu, err := s.waUser(ctx, u, creds)
	if err != nil {
		return nil, err
	}
	opts, sess, err := s.wa.BeginLogin(wu)
	if err != nil {
		return nil, fmt.Errorf("passkey: begin mfa: %w", err)
	}
	if err := s.save(ctx, u.ID, ceremony{Purpose: purposeMFA, MFACode: id, Session: *sess}); err != nil {
		return nil, err
	}
	return opts, nil
}

// FinishLogin verifies a discoverable sign-in: the assertion's user handle
// names the user, whose passkey must verify against the sign-in ceremony.
// It returns the user and the amr (RFC 8176): "hwk" for the key, plus "user"
// and "mfa" when the authenticator verified the user (biometrics or PIN: two
// factors in one gesture).
func (s *Service) FinishLogin(ctx context.Context, body []byte, m identity.Meta) (*store.User, []string, error) {
	parsed, err := parseAssertion(body, true)
	if err != nil {
		return nil, nil, err
	}
	fail := func(userID, reason string, err error) (*store.User, []string, error) {
		s.record(ctx, audit.PasskeySignInFailed, userID, m, map[string]string{"reason": reason, "step": "login"})
		return nil, nil, err
	}
	c, err := s.claim(ctx, parsed.Response.CollectedClientData.Challenge, purposeLogin, "")
	if errors.Is(err, ErrRejected) {
		return fail("", "no_ceremony", err)
	}
	if err != nil {
		return nil, nil, err
	}
	uid, err := uuid.ParseBytes(parsed.Response.UserHandle)
	if err != nil || uid.String() != string(parsed.Response.UserHandle) {
		return fail("", "unknown_user", fmt.Errorf("%w: unknown user handle", ErrRejected))
	}
	u, err := s.users.User(ctx, uid.String())
	if errors.Is(err, identity.ErrNotFound) || errors.Is(err, store.ErrNotFound) {
		return fail("", "unknown_user", fmt.Errorf("%w: unknown user handle", ErrRejected))
	}
	if err != nil {
		return nil, nil, err
	}
	if err := s.verify(ctx, u, c, parsed, m, "login"); err != nil {
		return nil, nil, err
	}
	return u, amrFor(parsed), nil
}

// VerifyMFAAssertion verifies a passkey assertion (the PublicKeyCredential
// JSON) as the second factor of userID's sign-in. The assertion must answer a
// ceremony begun with that user's mfa_token (BeginMFA) and be made by one of
// that user's passkeys. Malformed input is an *InputError; anything that does
// not verify is ErrRejected; a locked user is identity.ErrLocked.
func (s *Service) VerifyMFAAssertion(ctx context.Context, userID string, assertion []byte, m identity.Meta) error {
	parsed, err := parseAssertion(assertion, false)
	if err != nil {
		return err
	}
	c, err := s.claim(ctx, parsed.Response.CollectedClientData.Challenge, purposeMFA, userID)
	if errors.Is(err, ErrRejected) {
		s.record(ctx, audit.PasskeySignInFailed, userID, m, map[string]string{"reason": "no_ceremony", "step": "mfa"})
		return err
	}
	if err != nil {
		return err
	}
	u, err := s.users.User(ctx, userID)
	if errors.Is(err, identity.ErrNotFound) || errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: unknown user", ErrRejected)
	}
	if err != nil {
		return err
	}
	return s.verify(ctx, u, c, parsed, m, "mfa")
}

// verify checks the assertion against the ceremony and the user's passkeys,
// then the sign counter, and records the use.
func (s *Service) verify(ctx context.Context, u *store.User, c *ceremony, parsed *protocol.ParsedCredentialAssertionData, m identity.Meta, step string) error {
	fail := func(reason string, err error, detail ...string) error {
		d := map[string]string{"reason": reason, "step": step}
		for i := 0; i+1 < len(detail); i += 2 {
			d[detail[i]] = detail[i+1]
		}
		s.record(ctx, audit.PasskeySignInFailed, u.ID, m, d)
		return err
	}
	if u.LockedAt != nil {
		return fail("locked", identity.ErrLocked)
	}
	creds, err := s.load(ctx, u.ID)
	if err != nil {
		return err
	}
	wu, err := s.waUser(ctx, u, creds)
	if err != nil {
		return err
	}
	var got *webauthn.Credential
	if c.Purpose == purposeMFA {
		got, err = s.wa.ValidateLogin(wu, c.Session, parsed)
	} else {
		_, got, err = s.wa.ValidatePasskeyLogin(func(_, _ []byte) (webauthn.User, error) { return wu, nil }, c.Session, parsed)
	}
	if err != nil {
		s.debug(ctx, "assertion rejected", u.ID, err)
		return fail("verification_failed", fmt.Errorf("%w: %s", ErrRejected, describe(err)))
	}
	var stored *loaded
	for i := range creds {
		if bytes.Equal(creds[i].cred.ID, got.ID) {
			stored = &creds[i]
		}
	}
	if stored == nil {
		return fail("verification_failed", fmt.Errorf("%w: unknown credential", ErrRejected))
	}
	// Why: WebAuthn §7.2 step 21. A counter that does not grow means two
	// copies of the private key may exist (a cloned authenticator). Synced
	// passkeys report 0 forever, which is allowed only while both are 0.
	old, now := stored.row.SignCount, int64(parsed.Response.AuthenticatorData.Counter)
	if (old != 0 || now != 0) && now <= old {
		s.record(ctx, audit.PasskeyCounterRegressed, u.ID, m, map[string]string{"credential_id": stored.row.ID, "stored": fmt.Sprint(old), "presented": fmt.Sprint(now), "step": step})
		return fail("counter_regressed", ErrCounterRegressed, "credential_id", stored.row.ID)
	}
	got.Authenticator.SignCount = uint32(now)
	got.Authenticator.CloneWarning = false
	rec, err := json.Marshal(got)
	if err != nil {
		return fmt.Errorf("passkey: encode credential: %w", err)
	}
	// Compare-and-set on the counter: of two sign-ins racing with the same
	// counter value, one wins.
	ok, err := s.st.UpdateWebAuthnUse(ctx, stored.row.ID, old, now, rec, s.opts.Now().UTC())
	if err != nil {
		return fmt.Errorf("passkey: record use: %w", err)
	}
	if !ok {
		s.record(ctx, audit.PasskeyCounterRegressed, u.ID, m, map[string]string{"credential_id": stored.row.ID, "presented": fmt.Sprint(now), "step": step, "race": "true"})
		return fail("counter_regressed", ErrCounterRegressed, "credential_id", stored.row.ID)
	}
	s.record(ctx, audit.PasskeySignInSucceeded, u.ID, m, map[string]string{
		"credential_id": stored.row.ID, "step": step, "user_verified": fmt.Sprint(parsed.Response.AuthenticatorData.Flags.HasUserVerified()),
		"backup_state": fmt.Sprint(got.Flags.BackupState),
	})
	return nil
}

func amrFor(p *protocol.ParsedCredentialAssertionData) []string {
	if p.Response.AuthenticatorData.Flags.HasUserVerified() {
		return []string{"hwk", "user", "mfa"}
	}
	return []string{"hwk"}
}

// List returns the user's passkeys, oldest first.
func (s *Service) List(ctx context.Context, userID string) ([]Credential, error) {
	creds, err := s.load(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]Credential, 0, len(creds))
	for _, c := range creds {
		out = append(out, *view(&c.row, &c.cred))
	}
	return out, nil
}

// Delete removes the user's passkey id. ErrNotFound when the user has no such
// passkey (someone else's id answers the same).
func (s *Service) Delete(ctx context.Context, userID, id string, m identity.Meta) error {
	if id == "" || len(id) > 1400 {
		return ErrNotFound
	}
	err := s.st.DeleteWebAuthnCredential(ctx, userID, id)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("passkey: delete: %w", err)
	}
	s.record(ctx, audit.PasskeyRemoved, userID, m, map[string]string{"credential_id": id})
	return nil
}

func view(r *store.WebAuthnCredential, c *webauthn.Credential) *Credential {
	return &Credential{
		ID: r.ID, Name: r.Name, CreatedAt: r.CreatedAt, LastUsedAt: r.LastUsedAt,
		BackupEligible: c.Flags.BackupEligible, BackupState: c.Flags.BackupState,
	}
}

func validName(s string) bool {
	if len(s) > maxNameLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func (s *Service) record(ctx context.Context, typ, userID string, m identity.Meta, detail map[string]string) {
	if s.audit == nil {
		return
	}
	s.audit.Record(ctx, store.Event{Type: typ, UserID: userID, IP: m.IP, RequestID: m.RequestID, Detail: detail})
}

// debug logs why the library refused (its messages carry no secrets: they
// name the check, not the values).
func (s *Service) debug(ctx context.Context, msg, userID string, err error) {
	s.opts.Logger.DebugContext(ctx, "passkey: "+msg, "user_id", userID, "error", describe(err))
}

// describe is the library's reason for a refusal, without its debug info.
func describe(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		if pe.Details != "" {
			return pe.Details
		}
		return pe.Type
	}
	return "verification failed"
}
