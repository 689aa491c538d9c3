// Package passkeytest is a software WebAuthn authenticator for tests: its own
// ECDSA P-256 keys, real CBOR attestation objects (fmt "none") and real
// signed assertions, with every field a test may want to get wrong exposed.
// It is for tests only; nothing in the product imports it.
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Authenticator flags (WebAuthn §6.1).
const (
	FlagUP byte = 0x01 // user present
	FlagUV byte = 0x04 // user verified
	FlagBE byte = 0x08 // backup eligible
	FlagBS byte = 0x10 // backup state
	FlagAT byte = 0x40 // attested credential data included
)

var b64 = base64.RawURLEncoding

// Authenticator holds discoverable credentials for one relying party.
type Authenticator struct {
	RPID   string   // hashed into authenticator data
	Origin string   // put in clientDataJSON
	AAGUID [16]byte // the model id in attested credential data
	// Flags are the flags each response carries (UP|UV by default via New).
	Flags byte
}

// New returns an authenticator for rpID answering from origin, verifying the
// user (UV) on every ceremony.
func New(rpID, origin string) *Authenticator {
	return &Authenticator{RPID: rpID, Origin: origin, Flags: FlagUP | FlagUV,
		AAGUID: [16]byte{0x67, 0x61, 0x74, 0x65, 0x68, 0x6f, 0x75, 0x73, 0x65, 0x2d, 0x74, 0x65, 0x73, 0x74, 0x00, 0x01}}
}

// Credential is a key pair the authenticator made.
type Credential struct {
	ID         []byte
	Key        *ecdsa.PrivateKey
	UserHandle []byte
	Counter    uint32 // the last counter used; Assert adds Step before signing
	Step       uint32 // counter increment per assertion (0: a synced passkey, counter stays 0)
}

// IDString is the credential id as the server names it (base64url).
func (c *Credential) IDString() string { return b64.EncodeToString(c.ID) }

// Creation is the part of the server's creation options the authenticator reads.
type Creation struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"rp"`
		User struct {
			ID          string `json:"id"`
			Name        string `json:"name"`
			DisplayName string `json:"displayName"`
		} `json:"user"`
		ExcludeCredentials []struct {
			ID string `json:"id"`
		} `json:"excludeCredentials"`
		AuthenticatorSelection struct {
			ResidentKey      string `json:"residentKey"`
			UserVerification string `json:"userVerification"`
		} `json:"authenticatorSelection"`
		Attestation string `json:"attestation"`
	} `json:"publicKey"`
}

// Request is the part of the server's request options the authenticator reads.
type Request struct {
	PublicKey struct {
		Challenge        string `json:"challenge"`
		RPID             string `json:"rpId"`
		UserVerification string `json:"userVerification"`
		AllowCredentials []struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		} `json:"allowCredentials"`
	} `json:"publicKey"`
}

// ClientData returns clientDataJSON for a ceremony type ("webauthn.create" or
// "webauthn.get"), challenge and origin.
func ClientData(typ, challenge, origin string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return b
}

// Register makes a new credential for creation options (the server's JSON)
// and returns it with the attestation response JSON to send back.
func (a *Authenticator) Register(options []byte) (*Credential, []byte, error) {
	var c Creation
	if err := json.Unmarshal(options, &c); err != nil {
		return nil, nil, fmt.Errorf("passkeytest: creation options: %w", err)
	}
	uh, err := b64.DecodeString(c.PublicKey.User.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("passkeytest: user id: %w", err)
	}
	cred, err := NewCredential(uh)
	if err != nil {
		return nil, nil, err
	}
	body, err := a.Attest(cred, ClientData("webauthn.create", c.PublicKey.Challenge, a.Origin))
	return cred, body, err
}

// NewCredential makes a key pair and a random 32-byte credential id.
func NewCredential(userHandle []byte) (*Credential, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	return &Credential{ID: id, Key: k, UserHandle: userHandle, Step: 1}, nil
}

// Attest returns the attestation response JSON for cred with the given
// clientDataJSON: attestation format "none", authenticator data with the rp
// id hash, flags (a.Flags|AT), counter, AAGUID, credential id and COSE key.
func (a *Authenticator) Attest(cred *Credential, clientData []byte) ([]byte, error) {
	cose, err := COSEKey(&cred.Key.PublicKey)
	if err != nil {
		return nil, err
	}
	ad := a.authData(a.Flags|FlagAT, cred.Counter)
	ad = append(ad, a.AAGUID[:]...)
	ad = binary.BigEndian.AppendUint16(ad, uint16(len(cred.ID)))
	ad = append(ad, cred.ID...)
	ad = append(ad, cose...)
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": ad})
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": cred.IDString(), "rawId": cred.IDString(), "type": "public-key",
		"authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(clientData),
			"attestationObject": b64.EncodeToString(att),
			"transports":        []string{"internal", "hybrid"},
		},
		"clientExtensionResults": map[string]any{},
	})
}

// Assert answers request options (the server's JSON) with cred, advancing
// its counter by Step.
func (a *Authenticator) Assert(cred *Credential, options []byte) ([]byte, error) {
	var r Request
	if err := json.Unmarshal(options, &r); err != nil {
		return nil, fmt.Errorf("passkeytest: request options: %w", err)
	}
	if r.PublicKey.Challenge == "" {
		return nil, errors.New("passkeytest: no challenge in request options")
	}
	cred.Counter += cred.Step
	return a.Sign(cred, cred.Key, cred.Counter, ClientData("webauthn.get", r.PublicKey.Challenge, a.Origin))
}

// Sign returns an assertion response JSON for cred with the given counter
// and clientDataJSON, signed by key (normally cred.Key): authenticator data
// followed by SHA-256(clientDataJSON), ECDSA over SHA-256, DER-encoded.
func (a *Authenticator) Sign(cred *Credential, key *ecdsa.PrivateKey, counter uint32, clientData []byte) ([]byte, error) {
	ad := a.authData(a.Flags, counter)
	cdh := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(append([]byte{}, ad...), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		return nil, err
	}
	var uh any
	if cred.UserHandle != nil {
		uh = b64.EncodeToString(cred.UserHandle)
	}
	return json.Marshal(map[string]any{
		"id": cred.IDString(), "rawId": cred.IDString(), "type": "public-key",
		"authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(clientData),
			"authenticatorData": b64.EncodeToString(ad),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        uh,
		},
		"clientExtensionResults": map[string]any{},
	})
}

func (a *Authenticator) authData(flags byte, counter uint32) []byte {
	h := sha256.Sum256([]byte(a.RPID))
	ad := append([]byte{}, h[:]...)
	ad = append(ad, flags)
	return binary.BigEndian.AppendUint32(ad, counter)
}

// COSEKey is the COSE_Key (RFC 9053) of an ES256 public key: kty EC2, alg
// -7, crv P-256, x, y.
func COSEKey(pub *ecdsa.PublicKey) ([]byte, error) {
	raw, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		return nil, err
	}
	return cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: raw[1:33], -3: raw[33:65]})
}
