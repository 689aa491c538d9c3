package envelope

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// ResealStore is what a data rotation needs of the store: *store.DB is one.
type ResealStore interface {
	OpenResealRun(ctx context.Context) (*store.ResealRun, error)
	StartReseal(ctx context.Context, at time.Time, retire []string, add []store.DataKey) (*store.ResealRun, error)
	ResealBatch(ctx context.Context, runID, field string, limit int, fn func(store.SealedValue) (store.Resealed, error)) (store.ResealProgress, error)
	FinishReseal(ctx context.Context, runID string, at time.Time) error
}

// ResealOptions configures Reseal. Zero values are the documented defaults.
type ResealOptions struct {
	// BatchSize is how many values one transaction re-seals. 0: 500.
	BatchSize int
	// AfterBatch, if set, is called after each committed batch (progress output).
	AfterBatch func(field string, p store.ResealProgress)
}

// ResealReport says what a run did.
type ResealReport struct {
	RunID   string
	Resumed bool             // an interrupted run was continued
	Fields  map[string]int64 // values re-sealed per field by this run (over all its attempts)
}

// Reseal re-encrypts every sealed value in the store under new DEKs: it retires
// each purpose's active DEK, adds a new one, and re-seals field by field in
// bounded batches, each its own transaction, recording progress in the store. If
// a previous run was interrupted (a crash, a kill), Reseal continues it instead
// of starting over. Values stored in plaintext by older versions (sessions' and
// events' IP and user agent) are sealed on the way. Serving processes keep
// working meanwhile: they open values under either DEK (a DEK they have not seen
// is loaded on first sight) and move to the new DEKs within their reload
// interval. Retired DEKs stay in the store, so values written under them by a
// server that had not reloaded yet still open.
func (k *Keyring) Reseal(ctx context.Context, st ResealStore, opts ResealOptions) (ResealReport, error) {
	run, err := st.OpenResealRun(ctx)
	resumed := err == nil
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		retire, add, err := k.NextKeys(ctx)
		if err != nil {
			return ResealReport{}, err
		}
		if run, err = st.StartReseal(ctx, k.now(), retire, add); err != nil {
			return ResealReport{}, fmt.Errorf("envelope: reseal: %w", err)
		}
	default:
		return ResealReport{}, fmt.Errorf("envelope: reseal: %w", err)
	}
	// Seal under the DEKs the run made, whichever process made them.
	if err := k.Reload(ctx); err != nil {
		return ResealReport{}, err
	}
	rep := ResealReport{RunID: run.ID, Resumed: resumed, Fields: map[string]int64{}}
	for _, f := range store.SealedFields() {
		fn := func(v store.SealedValue) (store.Resealed, error) { return k.reseal(f, v) }
		for {
			p, err := st.ResealBatch(ctx, run.ID, f.Name, opts.BatchSize, fn)
			if err != nil {
				return rep, fmt.Errorf("envelope: reseal: %w", err)
			}
			rep.Fields[f.Name] = p.Resealed
			if opts.AfterBatch != nil {
				opts.AfterBatch(f.Name, p)
			}
			if p.Done {
				break
			}
		}
	}
	if err := st.FinishReseal(ctx, run.ID, k.now()); err != nil {
		return rep, fmt.Errorf("envelope: reseal: %w", err)
	}
	return rep, nil
}

func (k *Keyring) reseal(f store.SealedField, v store.SealedValue) (store.Resealed, error) {
	aad := v.AAD(f)
	pt := []byte(v.Plain)
	if len(v.Sealed) > 0 {
		var err error
		if pt, err = k.Open(v.Purpose, v.Sealed, aad...); err != nil {
			return store.Resealed{}, err
		}
	}
	defer clear(pt)
	sealed, err := k.Seal(v.Purpose, pt, aad...)
	if err != nil {
		return store.Resealed{}, err
	}
	out := store.Resealed{Sealed: sealed}
	if f.IndexPurpose != "" {
		out.Index = k.Index(f.IndexPurpose, pt)
	}
	return out, nil
}
