package ratelimit

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Bounds on what a Limit may express. They keep every time computation far
// from int64 overflow (in nanoseconds here and in microseconds inside Redis's
// Lua, whose numbers are doubles exact only to 2^53).
const (
	// MaxCount bounds Count, Burst and window quotas.
	MaxCount = 1_000_000_000
	// MaxPeriod bounds Period and window lengths (366 days).
	MaxPeriod = 366 * 24 * time.Hour
	// MinInterval is the smallest emission interval (Period/Count): one request
	// per microsecond per key. Intervals are truncated to whole microseconds so
	// the memory and Redis stores compute identical decisions.
	MinInterval = time.Microsecond
	// MinWindow is the shortest fixed window.
	MinWindow = time.Millisecond
	// maxFill bounds Burst*Interval, the time a drained bucket takes to refill.
	maxFill = 10 * MaxPeriod
	// maxLimitText bounds the text ParseLimit accepts.
	maxLimitText = 64
)

// Limit is a GCRA rate: Count requests per Period, with bursts of up to Burst.
//
// The zero Burst means Burst = Count, so "100/h" admits 100 requests at once and
// then one every 36 seconds.
type Limit struct {
	Count  int64
	Period time.Duration
	Burst  int64
}

// EffectiveBurst returns the burst with the zero value resolved to Count.
func (l Limit) EffectiveBurst() int64 {
	if l.Burst == 0 {
		return l.Count
	}
	return l.Burst
}

// Interval returns the emission interval Period/Count, truncated to whole
// microseconds (see MinInterval). It is zero for an invalid limit.
func (l Limit) Interval() time.Duration {
	if l.Count <= 0 || l.Period <= 0 {
		return 0
	}
	return (l.Period / time.Duration(l.Count)).Truncate(time.Microsecond)
}

// Window returns the time a drained bucket takes to refill completely:
// EffectiveBurst() × Interval(). With the default burst this is the period.
func (l Limit) Window() time.Duration {
	if l.Burst == 0 || l.Burst == l.Count {
		return l.Period
	}
	return time.Duration(l.EffectiveBurst()) * l.Interval()
}

// Validate reports whether l can be enforced; errors wrap ErrInvalidLimit.
func (l Limit) Validate() error {
	switch {
	case l.Count < 1:
		return fmt.Errorf("ratelimit: count %d must be at least 1: %w", l.Count, ErrInvalidLimit)
	case l.Count > MaxCount:
		return fmt.Errorf("ratelimit: count %d exceeds %d: %w", l.Count, int64(MaxCount), ErrInvalidLimit)
	case l.Period <= 0:
		return fmt.Errorf("ratelimit: period %v must be positive: %w", l.Period, ErrInvalidLimit)
	case l.Period > MaxPeriod:
		return fmt.Errorf("ratelimit: period %v exceeds %v: %w", l.Period, MaxPeriod, ErrInvalidLimit)
	case l.Burst < 0:
		return fmt.Errorf("ratelimit: burst %d must not be negative: %w", l.Burst, ErrInvalidLimit)
	case l.Burst > MaxCount:
		return fmt.Errorf("ratelimit: burst %d exceeds %d: %w", l.Burst, int64(MaxCount), ErrInvalidLimit)
	}
	iv := l.Interval()
	if iv < MinInterval {
		return fmt.Errorf("ratelimit: %d per %v is faster than one request per %v: %w", l.Count, l.Period, MinInterval, ErrInvalidLimit)
	}
	if l.EffectiveBurst() > int64(maxFill/iv) {
		return fmt.Errorf("ratelimit: burst %d at one request per %v takes longer than %v to refill: %w", l.EffectiveBurst(), iv, maxFill, ErrInvalidLimit)
	}
	return nil
}

// CheckGCRA validates l and the cost n together, as every Store does before
// deciding.
func CheckGCRA(l Limit, n int64) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if n < 0 || n > l.EffectiveBurst() {
		return fmt.Errorf("ratelimit: cost %d outside [0, burst %d]: %w", n, l.EffectiveBurst(), ErrInvalidCost)
	}
	return nil
}

// CheckWindow validates a fixed-window quota and the cost n.
func CheckWindow(limit int64, window time.Duration, n int64) error {
	switch {
	case limit < 1 || limit > MaxCount:
		return fmt.Errorf("ratelimit: quota %d outside [1, %d]: %w", limit, int64(MaxCount), ErrInvalidLimit)
	case window < MinWindow || window > MaxPeriod:
		return fmt.Errorf("ratelimit: window %v outside [%v, %v]: %w", window, MinWindow, MaxPeriod, ErrInvalidLimit)
	case window%time.Microsecond != 0:
		return fmt.Errorf("ratelimit: window %v is not a whole number of microseconds: %w", window, ErrInvalidLimit)
	case n < 0 || n > limit:
		return fmt.Errorf("ratelimit: cost %d outside [0, quota %d]: %w", n, limit, ErrInvalidCost)
	}
	return nil
}

// units are the period suffixes ParseLimit accepts, largest first (String
// picks the largest that divides the period).
var units = [...]struct {
	name string
	d    time.Duration
}{
	{"d", 24 * time.Hour},
	{"h", time.Hour},
	{"m", time.Minute},
	{"s", time.Second},
}

// String returns the canonical text form, which ParseLimit reads back to the
// same Limit: "100/h", "20/10s", "5/m burst 10".
func (l Limit) String() string {
	var b strings.Builder
	b.WriteString(strconv.FormatInt(l.Count, 10))
	b.WriteByte('/')
	b.WriteString(formatPeriod(l.Period))
	if l.Burst != 0 {
		b.WriteString(" burst ")
		b.WriteString(strconv.FormatInt(l.Burst, 10))
	}
	return b.String()
}

func formatPeriod(p time.Duration) string {
	if p > 0 {
		for _, u := range units {
			if p%u.d == 0 {
				if p == u.d {
					return u.name
				}
				return strconv.FormatInt(int64(p/u.d), 10) + u.name
			}
		}
	}
	return p.String()
}

// ParseLimit reads a rate such as "100/h", "10/s", "5/m", "1000/d" or "20/10s",
// optionally followed by " burst N". Units are s, m, h and d; a number before
// the unit multiplies it. The result is validated; errors wrap ErrInvalidLimit
// and name what is wrong.
func ParseLimit(s string) (Limit, error) {
	if len(s) > maxLimitText {
		return Limit{}, fmt.Errorf("ratelimit: parse limit: text is %d bytes, longer than %d: %w", len(s), maxLimitText, ErrInvalidLimit)
	}
	fail := func(format string, args ...any) (Limit, error) {
		return Limit{}, fmt.Errorf("ratelimit: parse limit %q: %s: %w", s, fmt.Sprintf(format, args...), ErrInvalidLimit)
	}
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return fail("empty; want COUNT/PERIOD such as 100/h")
	}
	rate := fields[0]
	countText, periodText, ok := strings.Cut(rate, "/")
	if !ok {
		return fail("missing \"/\" between count and period (want e.g. 100/h)")
	}
	count, err := parseCount(countText)
	if err != nil {
		return fail("count: %v", err)
	}
	period, err := parsePeriod(periodText)
	if err != nil {
		return fail("period: %v", err)
	}
	l := Limit{Count: count, Period: period}
	switch rest := fields[1:]; {
	case len(rest) == 0:
	case rest[0] != "burst":
		return fail("unexpected %q after the rate (only \"burst N\" may follow)", rest[0])
	case len(rest) == 1:
		return fail("\"burst\" needs a number after it")
	case len(rest) > 2:
		return fail("unexpected %q after the burst", rest[2])
	default:
		burst, err := parseCount(rest[1])
		if err != nil {
			return fail("burst: %v", err)
		}
		l.Burst = burst
	}
	if err := l.Validate(); err != nil {
		return Limit{}, fmt.Errorf("ratelimit: parse limit %q: %w", s, err)
	}
	return l, nil
}

// parseCount reads a positive decimal integer (digits only: no sign, no
// underscores) no larger than MaxCount.
func parseCount(s string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("missing number")
	}
	if !allDigits(s) {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v > MaxCount {
		return 0, fmt.Errorf("%s exceeds %d", s, int64(MaxCount))
	}
	if v < 1 {
		return 0, fmt.Errorf("must be at least 1")
	}
	return v, nil
}

// parsePeriod reads "s", "m", "h", "d", optionally preceded by a multiplier.
func parsePeriod(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("missing (want s, m, h or d, e.g. 100/h or 20/10s)")
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	num, unitText := s[:i], s[i:]
	var unit time.Duration
	for _, u := range units {
		if unitText == u.name {
			unit = u.d
		}
	}
	if unit == 0 {
		return 0, fmt.Errorf("unknown unit %q (want s, m, h or d)", unitText)
	}
	if num == "" {
		return unit, nil
	}
	mult, err := strconv.ParseInt(num, 10, 64)
	if err != nil || mult > int64(MaxPeriod/unit) {
		return 0, fmt.Errorf("%s%s exceeds %v", num, unitText, MaxPeriod)
	}
	if mult < 1 {
		return 0, fmt.Errorf("multiplier must be at least 1")
	}
	return time.Duration(mult) * unit, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
