package envelope

import (
	"context"
	"fmt"
	"sort"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// CheckStore is what Check needs of the store: *store.DB is one.
type CheckStore interface {
	ScanSealed(ctx context.Context, field, cursor string, limit int) ([]store.SealedValue, string, error)
}

// PurposeCount is what Check found for one purpose.
type PurposeCount struct {
	Purpose   string
	Opened    int64 // values that opened
	Failed    int64 // values that did not open
	Version1  int64 // of those opened: in the pre-envelope (KEK-derived) format
	Retired   int64 // of those opened: under a retired DEK
	Plaintext int64 // values still in plaintext (rows older than sealing)
}

// Failure is one value that did not open.
type Failure struct {
	Field string
	RowID string
	Err   string
}

// CheckReport is the result of Check.
type CheckReport struct {
	Purposes []PurposeCount // sorted by purpose
	Failures []Failure      // at most maxFailures
	Failed   int64          // all failures
}

const maxFailures = 50

// Check opens every sealed value in the store and counts the results per
// purpose. It proves the configured KEK (through the DEKs) opens everything.
func (k *Keyring) Check(ctx context.Context, st CheckStore) (CheckReport, error) {
	counts := map[string]*PurposeCount{}
	var rep CheckReport
	for _, f := range store.SealedFields() {
		cursor := ""
		for {
			vs, next, err := st.ScanSealed(ctx, f.Name, cursor, 1000)
			if err != nil {
				return rep, fmt.Errorf("envelope: check: %w", err)
			}
			for _, v := range vs {
				c := counts[v.Purpose]
				if c == nil {
					c = &PurposeCount{Purpose: v.Purpose}
					counts[v.Purpose] = c
				}
				if len(v.Sealed) == 0 {
					c.Plaintext++
					continue
				}
				pt, err := k.Open(v.Purpose, v.Sealed, v.AAD(f)...)
				if err != nil {
					c.Failed++
					rep.Failed++
					if len(rep.Failures) < maxFailures {
						msg := err.Error()
						if h := k.Explain(v.Sealed); h != "" {
							msg += "; " + h
						}
						rep.Failures = append(rep.Failures, Failure{Field: f.Name, RowID: v.RowID, Err: msg})
					}
					continue
				}
				clear(pt)
				c.Opened++
				switch ver, id := Describe(v.Sealed); ver {
				case 1:
					c.Version1++
				case 2:
					if k.State(id) == store.DataKeyRetired {
						c.Retired++
					}
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
	}
	for _, c := range counts {
		rep.Purposes = append(rep.Purposes, *c)
	}
	sort.Slice(rep.Purposes, func(i, j int) bool { return rep.Purposes[i].Purpose < rep.Purposes[j].Purpose })
	return rep, nil
}
