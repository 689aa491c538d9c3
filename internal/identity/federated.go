package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/google/uuid"
)

// ErrIdentityLinked: the provider account is linked to an account already
// (a concurrent first sign-in won the race).
var ErrIdentityLinked = errors.New("provider account already linked")

// FederatedStore creates an account together with its provider link; the
// service's UserStore must implement it for CreateFederated (*store.DB does).
type FederatedStore interface {
	CreateUserWithIdentity(ctx context.Context, u *store.User, i *store.Identity) error
}

// CreateFederated creates an account without a password for a first sign-in
// through a provider, linked to the provider account (provider, subject) in
// the same transaction. emailVerified is what the provider said; the account
// gets the default plan and roles, like a sign-up. Sign-up being disabled
// does not stop it: the provider vouches for the person, and an operator who
// wants no new accounts removes the provider. ErrEmailTaken if an account has
// the address; ErrIdentityLinked if the provider account is linked already.
func (s *Service) CreateFederated(ctx context.Context, email string, emailVerified bool, provider, subject string, m Meta) (*store.User, error) {
	fs, ok := s.users.(FederatedStore)
	if !ok {
		return nil, errors.New("identity: create federated: the user store cannot link provider accounts")
	}
	norm, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now().UTC()
	u := &store.User{
		ID:            uuid.NewString(),
		EmailIndex:    s.emailIndex(norm),
		Roles:         append([]string{}, s.opts.DefaultRoles...),
		Plan:          s.opts.DefaultPlan,
		EmailVerified: emailVerified,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	u.EmailSealed, err = s.sealer.Seal("email", []byte(norm), "users", "email", u.ID)
	if err != nil {
		return nil, fmt.Errorf("identity: create federated: %w", err)
	}
	if err := fs.CreateUserWithIdentity(ctx, u, &store.Identity{Provider: provider, Subject: subject, CreatedAt: now}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// Which uniqueness rule failed decides the caller's next step.
			if _, lerr := s.users.UserByEmailIndex(ctx, u.EmailIndex); lerr == nil {
				return nil, ErrEmailTaken
			}
			return nil, ErrIdentityLinked
		}
		return nil, fmt.Errorf("identity: create federated: %w", err)
	}
	s.record(ctx, audit.UserCreated, u.ID, m, map[string]string{"via": "oidc:" + strings.ToLower(provider)})
	return u, nil
}
