package keys

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"

	vault "github.com/hashicorp/vault/api"
	"gocloud.dev/gcp"

	"gocloud.dev/secrets"
	"gocloud.dev/secrets/awskms"
	"gocloud.dev/secrets/azurekeyvault"
	"gocloud.dev/secrets/gcpkms"
	"gocloud.dev/secrets/hashivault"
	"gocloud.dev/secrets/localsecrets"
)

// KMSSchemes are the KEK URL schemes served by a key-management service through
// gocloud.dev/secrets: the KEK itself never leaves the service, which wraps and
// unwraps data keys on request. base64key:// holds the key in the URL and is
// meant for tests.
func KMSSchemes() []string {
	return []string{hashivault.Scheme, awskms.Scheme, gcpkms.Scheme, azurekeyvault.Scheme, localsecrets.Scheme}
}

// OpenKEK opens the KEK named by url: file:// and env:// as LoadKEK (a local
// 32-byte key, returned as *KEK), or a KMS URL (hashivault://, awskms://,
// gcpkms://, azurekeyvault://, base64key://) opened through gocloud.dev/secrets
// with the provider's usual credentials from the environment. Errors never echo
// the URL beyond its scheme.
func OpenKEK(ctx context.Context, kekURL string, getenv func(string) string) (Wrapper, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	scheme, _, ok := strings.Cut(kekURL, "://")
	if !ok || !isKMSScheme(scheme) {
		k, err := LoadKEK(kekURL, getenv)
		if err != nil {
			return nil, err
		}
		return k, nil
	}
	// A mux of our own rather than the package-level default: only the schemes
	// listed here can ever be opened, whatever else registers itself.
	mux := new(secrets.URLMux)
	mux.RegisterKeeper(localsecrets.Scheme, &localsecrets.URLOpener{})
	mux.RegisterKeeper(awskms.Scheme, &awskms.URLOpener{})
	mux.RegisterKeeper(azurekeyvault.Scheme, &azurekeyvault.URLOpener{})
	mux.RegisterKeeper(hashivault.Scheme, &vaultOpener{getenv: getenv})
	mux.RegisterKeeper(gcpkms.Scheme, gcpOpener{})
	keeper, err := mux.OpenKeeper(ctx, kekURL)
	if err != nil {
		// Why not %w: the driver's message may quote the URL, which for
		// base64key:// is the key itself.
		return nil, fmt.Errorf("keys: open kek: cannot open the %s:// key (check the URL and the provider's credentials)", scheme)
	}
	h := sha256.Sum256([]byte("gatehouse kms kek\x00" + kekURL))
	return &kmsKEK{keeper: keeper, scheme: scheme, id: hex.EncodeToString(h[:8])}, nil
}

func isKMSScheme(s string) bool {
	for _, k := range KMSSchemes() {
		if s == k {
			return true
		}
	}
	return false
}

// vaultOpener connects to the Vault server named by VAULT_ADDR (or
// VAULT_SERVER_URL) with the token in VAULT_TOKEN (or VAULT_SERVER_TOKEN), as the
// driver's default opener does, but reading the environment through getenv.
type vaultOpener struct{ getenv func(string) string }

func (o *vaultOpener) OpenKeeperURL(ctx context.Context, u *url.URL) (*secrets.Keeper, error) {
	addr := cmp.Or(o.getenv("VAULT_SERVER_URL"), o.getenv("VAULT_ADDR"))
	if addr == "" {
		return nil, errors.New("neither VAULT_ADDR nor VAULT_SERVER_URL is set")
	}
	token := cmp.Or(o.getenv("VAULT_SERVER_TOKEN"), o.getenv("VAULT_TOKEN"))
	client, err := hashivault.Dial(ctx, &hashivault.Config{Token: token, APIConfig: vault.Config{Address: addr}})
	if err != nil {
		return nil, err
	}
	return (&hashivault.URLOpener{Client: client}).OpenKeeperURL(ctx, u)
}

// gcpOpener uses Application Default Credentials.
type gcpOpener struct{}

func (gcpOpener) OpenKeeperURL(ctx context.Context, u *url.URL) (*secrets.Keeper, error) {
	creds, err := gcp.DefaultCredentials(ctx)
	if err != nil {
		return nil, err
	}
	client, _, err := gcpkms.Dial(ctx, creds.TokenSource)
	if err != nil {
		return nil, err
	}
	return (&gcpkms.URLOpener{Client: client}).OpenKeeperURL(ctx, u)
}

// kmsKEK is a KEK held by a KMS. It has no key bytes of its own.
type kmsKEK struct {
	keeper *secrets.Keeper
	scheme string
	id     string
}

func (k *kmsKEK) ID() string { return k.id }

func (k *kmsKEK) String() string { return "KEK(" + k.scheme + ")" }

func (k *kmsKEK) GoString() string { return k.String() }

func (k *kmsKEK) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

func (k *kmsKEK) LogValue() slog.Value { return slog.StringValue(k.String()) }

// frame is the length-prefixed aad a KMS-wrapped key is prefixed with before
// encryption. Why: gocloud's Keeper takes no associated data, so the binding to
// the data key's id and purpose travels inside the ciphertext and is checked on
// unwrap.
func frame(aad []string) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, uint32(len(aad)))
	for _, a := range aad {
		b = binary.BigEndian.AppendUint32(b, uint32(len(a)))
		b = append(b, a...)
	}
	return b
}

func (k *kmsKEK) Wrap(ctx context.Context, key []byte, aad ...string) ([]byte, error) {
	pt := append(frame(aad), key...)
	defer clear(pt)
	ct, err := k.keeper.Encrypt(ctx, pt)
	if err != nil {
		return nil, fmt.Errorf("keys: wrap with %s:// kek: %w", k.scheme, errors.New("the key service refused"))
	}
	return ct, nil
}

func (k *kmsKEK) Unwrap(ctx context.Context, wrapped []byte, aad ...string) ([]byte, error) {
	pt, err := k.keeper.Decrypt(ctx, wrapped)
	if err != nil {
		return nil, fmt.Errorf("keys: unwrap with %s:// kek: %w", k.scheme, ErrUnwrap)
	}
	f := frame(aad)
	if len(pt) < len(f) || subtle.ConstantTimeCompare(pt[:len(f)], f) != 1 {
		clear(pt)
		return nil, fmt.Errorf("keys: unwrap with %s:// kek: %w", k.scheme, ErrUnwrap)
	}
	key := append([]byte(nil), pt[len(f):]...)
	clear(pt)
	return key, nil
}

func (k *kmsKEK) Close() error { return k.keeper.Close() }
