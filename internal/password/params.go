package password

import (
	"errors"
	"fmt"
)

// Fixed sizes of what Hash produces. They are not tunable: 16 bytes of salt and a
// 32-byte key are what RFC 9106 and OWASP recommend, and fixing them keeps the
// PHC strings uniform.
const (
	SaltLen = 16
	KeyLen  = 32
)

// Bounds on argon2id cost.
//
// The floor is the OWASP Password Storage Cheat Sheet minimum for argon2id
// (m=19 MiB, t=2, p=1); anything cheaper makes offline guessing after a database
// leak too cheap.
//
// The ceilings exist because ParsePHC reads the cost from storage: a hostile or
// corrupted stored hash must not make a login allocate gigabytes or spin for
// minutes. One argon2id computation may use at most MaxMemoryKiB (1 GiB), and the
// Hasher's concurrency cap bounds how many run at once. The same ceilings apply to
// configured Params so that every hash we write can be read back.
const (
	MinMemoryKiB   = 19456
	MinIterations  = 2
	MinParallelism = 1

	MaxMemoryKiB   = 1 << 20 // 1 GiB
	MaxIterations  = 64
	MaxParallelism = 64
)

// Params is the argon2id cost. Salt and key lengths are fixed (SaltLen, KeyLen).
type Params struct {
	// MemoryKiB is the memory cost in KiB (argon2 "m").
	MemoryKiB uint32
	// Iterations is the number of passes over memory (argon2 "t").
	Iterations uint32
	// Parallelism is the number of lanes (argon2 "p"); Go's argon2 runs one
	// goroutine per lane.
	Parallelism uint8
}

// DefaultParams returns the OWASP floor: m=19456 KiB, t=2, p=1.
func DefaultParams() Params {
	return Params{MemoryKiB: MinMemoryKiB, Iterations: MinIterations, Parallelism: MinParallelism}
}

// Validate reports every way p is below the OWASP floor or above the ceilings,
// joined into one error; nil when p may be used to hash new passwords.
func (p Params) Validate() error {
	if err := p.problems(); err != nil {
		return fmt.Errorf("password: params: %w", err)
	}
	return nil
}

// problems joins every bound p breaks, nil if none.
func (p Params) problems() error {
	var errs []error
	if p.MemoryKiB < MinMemoryKiB {
		errs = append(errs, fmt.Errorf("memory %d KiB is below the floor of %d KiB", p.MemoryKiB, MinMemoryKiB))
	}
	if p.MemoryKiB > MaxMemoryKiB {
		errs = append(errs, fmt.Errorf("memory %d KiB is above the ceiling of %d KiB", p.MemoryKiB, MaxMemoryKiB))
	}
	if p.Iterations < MinIterations {
		errs = append(errs, fmt.Errorf("iterations %d is below the floor of %d", p.Iterations, MinIterations))
	}
	if p.Iterations > MaxIterations {
		errs = append(errs, fmt.Errorf("iterations %d is above the ceiling of %d", p.Iterations, MaxIterations))
	}
	if p.Parallelism < MinParallelism {
		errs = append(errs, fmt.Errorf("parallelism %d is below the floor of %d", p.Parallelism, MinParallelism))
	}
	if p.Parallelism > MaxParallelism {
		errs = append(errs, fmt.Errorf("parallelism %d is above the ceiling of %d", p.Parallelism, MaxParallelism))
	}
	return errors.Join(errs...)
}

// String renders p in PHC parameter form, e.g. "m=19456,t=2,p=1".
func (p Params) String() string {
	return fmt.Sprintf("m=%d,t=%d,p=%d", p.MemoryKiB, p.Iterations, p.Parallelism)
}
