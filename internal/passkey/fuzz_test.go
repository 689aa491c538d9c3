package passkey_test

import (
	"errors"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/passkey"
	"github.com/gatehouse-dev/gatehouse/internal/passkey/passkeytest"
)

// FuzzFinish feeds hostile PublicKeyCredential JSON to both finish paths:
// nothing may panic, and every refusal is an input error or a rejection,
// never an internal error.
func FuzzFinish(f *testing.F) {
	fx := newFixture(f)
	uid := fx.user("fuzz@example.com")
	a := passkeytest.New(rpID, origin)
	opts, err := fx.svc.BeginRegistration(fx.ctx, uid, "")
	if err != nil {
		f.Fatal(err)
	}
	cred, reg, err := a.Register(mustJSON(f, opts))
	if err != nil {
		f.Fatal(err)
	}
	if _, err := fx.svc.FinishRegistration(fx.ctx, uid, reg, identity.Meta{}); err != nil {
		f.Fatal(err)
	}
	lopts, _ := fx.svc.BeginLogin(fx.ctx)
	assertion, _ := a.Assert(cred, mustJSON(f, lopts))
	f.Add(assertion)                                                            // a valid assertion (its ceremony is live once)
	f.Add(reg)                                                                  // an attestation where an assertion is expected
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{}}`)) // no members
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AA","signature":"AA","userHandle":"AA"}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"response":{"clientDataJSON":1}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, run := range []func() error{
			func() error { _, _, err := fx.svc.FinishLogin(fx.ctx, body, identity.Meta{}); return err },
			func() error { _, err := fx.svc.FinishRegistration(fx.ctx, uid, body, identity.Meta{}); return err },
			func() error { return fx.svc.VerifyMFAAssertion(fx.ctx, uid, body, identity.Meta{}) },
		} {
			err := run()
			var ie *passkey.InputError
			if err != nil && !errors.As(err, &ie) && !errors.Is(err, passkey.ErrRejected) && !errors.Is(err, passkey.ErrExists) {
				t.Fatalf("unexpected error kind: %v", err)
			}
		}
	})
}
