package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// ErrBadStat reports a /proc/<pid>/stat line that does not have the layout
// proc(5) documents.
var ErrBadStat = errors.New("malformed /proc stat line")

// userHZ is the unit of utime and stime. Linux fixes USER_HZ at 100 on every
// architecture Go supports, whatever the kernel's internal HZ.
const userHZ = 100

// CPU is the user plus system CPU time process pid has used so far (threads
// included, waited-for children excluded), with a 10 ms resolution.
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("proc: cpu: %w", err)
	}
	u, s, err := ParseStat(b)
	if err != nil {
		return 0, fmt.Errorf("proc: cpu of %d: %w", pid, err)
	}
	return ticks(u + s), nil
}

func ticks(n uint64) time.Duration {
	return time.Duration(n) * (time.Second / userHZ)
}

// ParseStat returns the utime and stime fields (clock ticks) of a
// /proc/<pid>/stat line. The command name in parentheses may itself hold
// spaces and parentheses, so fields are counted from the last ')'.
func ParseStat(b []byte) (utime, stime uint64, err error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 || bytes.IndexByte(b, '(') < 0 {
		return 0, 0, fmt.Errorf("%w: no command name", ErrBadStat)
	}
	// After the name: state (field 3) … utime (14), stime (15).
	f := bytes.Fields(b[end+1:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("%w: %d fields after the name, want at least 13", ErrBadStat, len(f))
	}
	if utime, err = strconv.ParseUint(string(f[11]), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("%w: utime: %w", ErrBadStat, err)
	}
	if stime, err = strconv.ParseUint(string(f[12]), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("%w: stime: %w", ErrBadStat, err)
	}
	return utime, stime, nil
}
