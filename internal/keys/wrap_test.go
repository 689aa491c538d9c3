package keys

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func localKEK(t testing.TB, b byte) *KEK {
	t.Helper()
	return newKEK(bytes.Repeat([]byte{b}, kekSize))
}

func TestWrapUnwrap(t *testing.T) {
	ctx := context.Background()
	other := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	kms, err := OpenKEK(ctx, "base64key://"+base64.URLEncoding.EncodeToString(testKey), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer kms.Close()
	kms2, err := OpenKEK(ctx, "base64key://"+strings.NewReplacer("+", "-", "/", "_").Replace(other), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer kms2.Close()
	for _, tc := range []struct {
		name       string
		kek, wrong Wrapper
	}{
		{"local", localKEK(t, 1), localKEK(t, 2)},
		{"kms base64key", kms, kms2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dek := bytes.Repeat([]byte{0x5A}, 32)
			w, err := tc.kek.Wrap(ctx, dek, "id1", "seal", "email")
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(w, dek) {
				t.Fatal("wrapped key contains the key")
			}
			got, err := tc.kek.Unwrap(ctx, w, "id1", "seal", "email")
			if err != nil || !bytes.Equal(got, dek) {
				t.Fatalf("unwrap = %x, %v", got, err)
			}
			hostile := []struct {
				name    string
				kek     Wrapper
				wrapped []byte
				aad     []string
			}{
				{"other id", tc.kek, w, []string{"id2", "seal", "email"}},
				{"other purpose", tc.kek, w, []string{"id1", "seal", "totp"}},
				{"aad split differently", tc.kek, w, []string{"id1s", "eal", "email"}},
				{"missing aad", tc.kek, w, nil},
				{"wrong kek", tc.wrong, w, []string{"id1", "seal", "email"}},
				{"flipped bit", tc.kek, flip(w, len(w)-1), []string{"id1", "seal", "email"}},
				{"truncated", tc.kek, w[:len(w)/2], []string{"id1", "seal", "email"}},
				{"empty", tc.kek, nil, []string{"id1", "seal", "email"}},
			}
			for _, h := range hostile {
				if _, err := h.kek.Unwrap(ctx, h.wrapped, h.aad...); !errors.Is(err, ErrUnwrap) {
					t.Errorf("%s: err = %v, want ErrUnwrap", h.name, err)
				}
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func TestOpenKEKSchemes(t *testing.T) {
	ctx := context.Background()
	secret := base64.URLEncoding.EncodeToString(testKey)
	tests := []struct {
		url     string
		env     map[string]string
		wantErr string
	}{
		{"base64key://" + secret, nil, ""},
		{"base64key://not-base64!!", nil, "cannot open the base64key:// key"},
		{"hashivault://gatehouse", nil, "cannot open the hashivault:// key"},
		{"env://GH_KEK", map[string]string{"GH_KEK": base64.StdEncoding.EncodeToString(testKey)}, ""},
		{"ftp://x", nil, `scheme "ftp" is not supported`},
		{secret, nil, "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			k, err := OpenKEK(ctx, tt.url, func(n string) string { return tt.env[n] })
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				k.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "not-base64") {
				t.Fatalf("error echoes the URL: %v", err)
			}
		})
	}
}

func TestKMSKEKMasked(t *testing.T) {
	secret := base64.URLEncoding.EncodeToString(testKey)
	k, err := OpenKEK(context.Background(), "base64key://"+secret, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("kek", "kek", k)
	for _, out := range []string{fmt.Sprint(k), fmt.Sprintf("%+v %#v %x %q", k, k, k, k), logs.String()} {
		if strings.Contains(out, secret) || !strings.Contains(out, "KEK(") {
			t.Fatalf("not masked: %s", out)
		}
	}
	if len(k.ID()) != 16 || strings.Contains(secret, k.ID()) {
		t.Fatalf("id %q", k.ID())
	}
}

func TestLegacyIndexKeyMatchesSealer(t *testing.T) {
	k := localKEK(t, 3)
	s := NewSealer(k)
	key := k.DeriveLegacyIndexKey("email")
	want := s.Index("email", []byte("a@example.com"))
	got := hmacSum(key, []byte("a@example.com"))
	if !bytes.Equal(got, want) {
		t.Fatal("DeriveLegacyIndexKey is not the key Sealer.Index uses")
	}
}

func hmacSum(key, v []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(v)
	return m.Sum(nil)
}
