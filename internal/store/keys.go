package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
)

// keyOrder is each state's place in a key's life.
var keyOrder = map[string]int{KeyNext: 0, KeyActive: 1, KeyRetiring: 2, KeyRetired: 3}

func scanKey(s scanner) (SigningKey, error) {
	var (
		k                            SigningKey
		created                      int64
		activated, retiring, retired sql.NullInt64
	)
	if err := s.Scan(&k.ID, &k.Algorithm, &k.State, &k.PublicJWK, &k.PrivateSealed, &created,
		&activated, &retiring, &retired); err != nil {
		return SigningKey{}, err
	}
	k.CreatedAt = fromMicros(created)
	k.ActivatedAt, k.RetiringAt, k.RetiredAt = fromNullMicros(activated), fromNullMicros(retiring), fromNullMicros(retired)
	return k, nil
}

func validKey(k *SigningKey) error {
	switch {
	case k.ID == "":
		return errors.New("key id is empty")
	case len(k.PublicJWK) == 0 || len(k.PrivateSealed) == 0:
		return errors.New("key material is empty")
	}
	if _, ok := keyOrder[k.State]; !ok {
		return fmt.Errorf("unknown key state %q", k.State)
	}
	return nil
}

func insertKey(ctx context.Context, x execer, q string, k *SigningKey) error {
	_, err := x.ExecContext(ctx, q, k.ID, k.Algorithm, k.State, k.PublicJWK, k.PrivateSealed, micros(k.CreatedAt),
		nullMicros(k.ActivatedAt), nullMicros(k.RetiringAt), nullMicros(k.RetiredAt))
	return err
}

// CreateSigningKey inserts k. ErrConflict if the ID is taken, or if k is active
// while another key is (the schema allows at most one active key).
func (db *DB) CreateSigningKey(ctx context.Context, k *SigningKey) error {
	const op = "create signing key"
	if k == nil {
		return fmt.Errorf("store: %s: %w", op, errors.New("key is nil"))
	}
	if err := validKey(k); err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	return wrap(op, db.retry(ctx, func() error { return insertKey(ctx, db.sql, db.q.createKey, k) }))
}

// SigningKeys returns every key in every state, oldest first.
func (db *DB) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	const op = "signing keys"
	rows, err := db.sql.QueryContext(ctx, db.q.listKeys)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var out []SigningKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, wrap(op, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}

// TransitionKeys applies the transitions and then inserts newKey (if not nil),
// all in one transaction. Each transition moves key ID from From to To and stamps
// the column of the target state (ActivatedAt, RetiringAt or RetiredAt) with At;
// it applies only if the key is still in From. If any transition finds its key
// elsewhere, or newKey's ID is taken, nothing is changed and the error is
// ErrConflict: of two replicas rotating at once, one wins and the other changes
// nothing.
//
// Transitions out of "active" are applied first, whatever their order in ts, so
// that the at-most-one-active rule holds after every statement (a key can be
// promoted and the old one retired in the same call). A transition must move a
// key forward (next → active → retiring → retired, skipping allowed).
func (db *DB) TransitionKeys(ctx context.Context, ts []KeyTransition, newKey *SigningKey) error {
	const op = "transition keys"
	for _, t := range ts {
		from, okFrom := keyOrder[t.From]
		to, okTo := keyOrder[t.To]
		// Why forward only: a retired or retiring key may have been retired
		// because it leaked; no code path may bring it back to signing.
		if !okFrom || !okTo || to <= from {
			return fmt.Errorf("store: %s: %w", op, fmt.Errorf("invalid key transition %q -> %q", t.From, t.To))
		}
	}
	if newKey != nil {
		if err := validKey(newKey); err != nil {
			return fmt.Errorf("store: %s: %w", op, err)
		}
	}
	ordered := slices.Clone(ts)
	slices.SortStableFunc(ordered, func(a, b KeyTransition) int {
		aOut, bOut := a.From == KeyActive, b.From == KeyActive
		switch {
		case aOut && !bOut:
			return -1
		case bOut && !aOut:
			return 1
		}
		return 0
	})
	err := db.tx(ctx, func(tx *sql.Tx) error {
		for _, t := range ordered {
			// Why conditional: "AND state = From" is what makes a rotation safe
			// across replicas; the loser's update finds the key already moved.
			ok, err := exec1(ctx, tx, db.q.transition[t.To], t.To, micros(t.At), t.ID, t.From)
			if err != nil {
				return err
			}
			if !ok {
				return ErrConflict
			}
		}
		if newKey == nil {
			return nil
		}
		return insertKey(ctx, tx, db.q.createKey, newKey)
	})
	if err != nil {
		// A deadlock or serialization failure that outlived the retries means
		// another replica kept winning: report it as the lost race it is.
		if errors.Is(err, errBusy) {
			err = ErrConflict
		}
		return wrap(op, err)
	}
	return nil
}
