package envelope

import "github.com/gatehouse-dev/gatehouse/internal/store"

// Sealing purposes. Each has its own active DEK, so a key's compromise or
// rotation concerns one kind of data only.
const (
	PurposeEmail            = store.PurposeEmail            // users.email (identity)
	PurposeSigningKey       = store.PurposeSigningKey       // signing_keys.private (keys.Ring)
	PurposeRefreshSuccessor = store.PurposeRefreshSuccessor // refresh_tokens.successor_sealed (token.Families)
	PurposeSessionIP        = store.PurposeSessionIP        // sessions.ip (store)
	PurposeSessionUserAgent = store.PurposeSessionUserAgent // sessions.user_agent (store)
	PurposeEventIP          = store.PurposeEventIP          // events.ip (store)
	PurposeTransitKey       = store.PurposeTransitKey       // transit_key_versions.key (transit)
	// PurposeTOTP seals TOTP secrets, stored as user secrets of kind store.SecretTOTP.
	PurposeTOTP = "totp_secret"
	// PurposeOIDCToken seals OIDC provider tokens, stored as user secrets of kind
	// store.SecretOIDCPrefix + provider.
	PurposeOIDCToken = "oidc_token"
)

// SealPurposes are the purposes a Keyring seals for unless Options says otherwise.
func SealPurposes() []string {
	return []string{PurposeEmail, PurposeSigningKey, PurposeRefreshSuccessor, PurposeSessionIP,
		PurposeSessionUserAgent, PurposeEventIP, PurposeTransitKey, PurposeTOTP, PurposeOIDCToken}
}

// PurposeThrottleKey is the blind index throttle counters are stored under.
const PurposeThrottleKey = store.PurposeThrottleKey

// IndexPurposes are the blind-index purposes a Keyring keeps unless Options adds
// more: email lookup, event filtering by IP, throttle counter keys.
func IndexPurposes() []string { return []string{PurposeEmail, PurposeEventIP, PurposeThrottleKey} }
