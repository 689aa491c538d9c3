// Package social runs sign-in through OpenID Connect providers for native
// apps (RFC 8252): the app opens the system browser at Gatehouse's authorize
// endpoint with its own redirect URI, state and PKCE S256 challenge;
// Gatehouse runs the provider flow as a confidential client with its own
// state, nonce and PKCE; verifies the provider's ID token (go-oidc); finds,
// links or creates the account; and sends the app a one-time Gatehouse code
// bound to the app's redirect URI and challenge, which the app redeems at the
// token endpoint with its code_verifier.
//
// It owns provider discovery (retried with backoff; a provider that is down
// answers ErrUnavailable and stops nothing else), the state and code records
// (store one-time codes, only hashes as ids), and the account rules: an
// existing link wins; otherwise an account with the same email is joined only
// when the provider says email_verified is true (the takeover guard); otherwise
// a password-less account is created.
//
// It never mints Gatehouse tokens (httpapi's finishLogin does, after Redeem),
// never keeps the provider's tokens (Gatehouse needs only the verified
// identity, so there is nothing to leak or rotate), and never writes a code,
// state, token or email address to a log line or audit event.
package social
