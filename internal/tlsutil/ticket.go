package tlsutil

import (
	"context"
	"crypto/tls"
	"errors"
	"strconv"
	"time"
)

// TicketKeyPurpose is the purpose string ticket keys are derived under. A value
// derived for it is used for nothing else.
const TicketKeyPurpose = "tls-ticket"

// DefaultTicketKeyPeriod is how long one session-ticket key encrypts new tickets.
const DefaultTicketKeyPeriod = 12 * time.Hour

// TicketKeyDeriver returns a keyed 32-byte value for (purpose, value) that is the
// same in every process holding the same secret and unguessable without it.
// *keys.Sealer's Index (HMAC-SHA256 under a KEK-derived subkey) is one.
type TicketKeyDeriver interface {
	Index(purpose string, value []byte) []byte
}

// TicketKeyOptions tunes NewTicketKeys. The zero value is ready to use.
type TicketKeyOptions struct {
	// Period is how long one key encrypts new tickets. Zero means 12 hours; less
	// than a minute is an error.
	Period time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// TicketKeys derives TLS session-ticket keys from a shared secret, one per time
// epoch of Period, so that every replica sharing the KEK encrypts and decrypts
// tickets with the same keys without storing or exchanging them.
//
// Why derive rather than let crypto/tls pick random keys: a client that resumes
// on another replica behind a load balancer would otherwise pay a full handshake,
// and random per-process keys cannot be rotated in step. Why not store them: the
// keys are as secret as the KEK; deriving them from it (HMAC under a purpose-bound
// subkey) gives every replica the same keys with nothing new to protect, and a
// store compromise reveals nothing.
type TicketKeys struct {
	d      TicketKeyDeriver
	period time.Duration
	now    func() time.Time
}

// NewTicketKeys returns a TicketKeys deriving from d. d must not be nil.
func NewTicketKeys(d TicketKeyDeriver, opts TicketKeyOptions) (*TicketKeys, error) {
	if d == nil {
		return nil, errors.New("tlsutil: ticket keys: nil deriver")
	}
	t := &TicketKeys{d: d, period: opts.Period, now: opts.Now}
	switch {
	case t.period == 0:
		t.period = DefaultTicketKeyPeriod
	case t.period < time.Minute:
		return nil, errors.New("tlsutil: ticket keys: period below one minute")
	}
	if t.now == nil {
		t.now = time.Now
	}
	return t, nil
}

// epoch numbers the period containing at.
func (t *TicketKeys) epoch(at time.Time) int64 {
	return at.Unix() / int64(t.period/time.Second)
}

func (t *TicketKeys) key(epoch int64) [32]byte {
	// The period is part of the input: two deployments with different periods
	// never share a key for different time spans.
	v := "v1/" + strconv.FormatInt(int64(t.period/time.Second), 10) + "/" + strconv.FormatInt(epoch, 10)
	var k [32]byte
	copy(k[:], t.d.Index(TicketKeyPurpose, []byte(v)))
	return k
}

// Keys returns the keys for at: the current epoch's key first (it encrypts new
// tickets), then the next epoch's and the two previous epochs' (they only
// decrypt).
//
// Why the next one: a replica whose clock is slightly ahead starts the next epoch
// first; its tickets must still open here. Why two previous: a ticket issued
// just before a rotation stays usable for at least one more full period.
func (t *TicketKeys) Keys(at time.Time) [][32]byte {
	e := t.epoch(at)
	return [][32]byte{t.key(e), t.key(e + 1), t.key(e - 1), t.key(e - 2)}
}

// Install sets cfg's session ticket keys for now. cfg must be the *tls.Config
// the listener actually uses (http.Server.ServeTLS clones its TLSConfig; serve
// through tls.NewListener with cfg instead).
func (t *TicketKeys) Install(cfg *tls.Config) {
	cfg.SetSessionTicketKeys(t.Keys(t.now()))
}

// Run installs the keys into every cfg now and again at each epoch boundary,
// until ctx ends.
func (t *TicketKeys) Run(ctx context.Context, cfgs ...*tls.Config) {
	for {
		now := t.now()
		for _, c := range cfgs {
			t.Install(c)
		}
		next := time.Unix((t.epoch(now)+1)*int64(t.period/time.Second), 0)
		timer := time.NewTimer(next.Sub(now) + time.Second)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}
