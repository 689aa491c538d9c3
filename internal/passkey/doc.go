// Package passkey is Gatehouse's WebAuthn relying party (github.com/go-webauthn):
// passkey registration for a signed-in user, passwordless sign-in with a
// discoverable credential, and a passkey assertion as the second step of a
// password sign-in.
//
// It owns the ceremonies (their challenge-bound session data, stored as
// one-time codes of kind store.CodeWebAuthn whose id is the hex SHA-256 of the
// challenge, single use, bound to the user except for discoverable sign-in),
// the credential records (store.WebAuthnCredential, the library's Credential
// as JSON) and the sign-counter check against cloned authenticators.
//
// It never mints tokens or starts sessions: a verified sign-in returns the
// user and the amr, and the caller ends it in the one place every sign-in
// ends. It never logs or records a challenge, a client data blob or an
// assertion; audit events carry credential ids (public values) and reasons.
// The WebAuthn user handle is the Gatehouse user id (a random UUID), never an
// email address or anything personal.
package passkey
