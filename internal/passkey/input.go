package passkey

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
)

// The members of response a PublicKeyCredential JSON must carry as base64url.
var (
	attestationFields = []string{"clientDataJSON", "attestationObject"}
	assertionFields   = []string{"clientDataJSON", "authenticatorData", "signature"}
)

// checkShape checks a PublicKeyCredential JSON (WebAuthn L3 toJSON(), as
// browsers, iOS and Android's Credential Manager produce it) before the
// library sees it, so malformed input is answered with the member at fault.
// Unknown members are allowed: platforms add their own (publicKey,
// transports, authenticatorAttachment, ...).
func checkShape(body []byte, required []string) error {
	var top map[string]json.RawMessage
	if len(bytes.TrimSpace(body)) == 0 {
		return &InputError{Reason: "the body is empty"}
	}
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return &InputError{Reason: "the body must be a PublicKeyCredential JSON object"}
	}
	for _, f := range []string{"id", "rawId"} {
		if err := b64Member(top, f, f); err != nil {
			return err
		}
	}
	id, _ := decodeB64(top["id"])
	rawID, _ := decodeB64(top["rawId"])
	if !bytes.Equal(id, rawID) {
		return &InputError{Field: "rawId", Reason: "must encode the same bytes as id"}
	}
	var typ string
	if err := json.Unmarshal(top["type"], &typ); err != nil || typ != "public-key" {
		return &InputError{Field: "type", Reason: `must be "public-key"`}
	}
	var resp map[string]json.RawMessage
	if err := json.Unmarshal(top["response"], &resp); err != nil || resp == nil {
		return &InputError{Field: "response", Reason: "must be an object"}
	}
	for _, f := range required {
		if err := b64Member(resp, f, "response."+f); err != nil {
			return err
		}
	}
	cd, _ := decodeB64(resp["clientDataJSON"])
	var client struct {
		Type      string `json:"type"`
		Challenge string `json:"challenge"`
		Origin    string `json:"origin"`
	}
	if err := json.Unmarshal(cd, &client); err != nil || client.Challenge == "" || client.Type == "" || client.Origin == "" {
		return &InputError{Field: "response.clientDataJSON", Reason: "must be JSON with type, challenge and origin"}
	}
	return nil
}

// b64Member requires m[name] to be a non-empty base64url string.
func b64Member(m map[string]json.RawMessage, name, path string) error {
	raw, ok := m[name]
	if !ok || string(raw) == "null" {
		return &InputError{Field: path, Reason: "required"}
	}
	b, err := decodeB64(raw)
	if err != nil {
		return &InputError{Field: path, Reason: "must be a base64url string"}
	}
	if len(b) == 0 {
		return &InputError{Field: path, Reason: "must not be empty"}
	}
	return nil
}

func decodeB64(raw json.RawMessage) ([]byte, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// parseAssertion checks and parses an assertion response. A discoverable
// sign-in needs the user handle; the MFA step knows its user already.
func parseAssertion(body []byte, needUserHandle bool) (*protocol.ParsedCredentialAssertionData, error) {
	fields := assertionFields
	if needUserHandle {
		fields = append(fields[:len(fields):len(fields)], "userHandle")
	}
	if err := checkShape(body, fields); err != nil {
		return nil, err
	}
	p, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return nil, &InputError{Field: "response.authenticatorData", Reason: "is not valid authenticator data"}
	}
	return p, nil
}
