package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rate is a request budget: Count requests per Period.
type Rate struct {
	Count  int64
	Period time.Duration
}

// ParseRate reads "N/unit" with a positive whole N and a unit of s, m, h or d, as
// used by plans ("100/h", "1000/d") and route rate limits ("10/s").
func ParseRate(s string) (Rate, error) {
	n, unit, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q must be N/unit, e.g. \"100/h\"", s)
	}
	count, err := strconv.ParseInt(n, 10, 64)
	if err != nil || n == "" || n[0] == '+' {
		return Rate{}, fmt.Errorf("rate %q: %q is not a whole number", s, n)
	}
	if count <= 0 {
		return Rate{}, fmt.Errorf("rate %q: the count must be positive", s)
	}
	var period time.Duration
	switch unit {
	case "s":
		period = time.Second
	case "m":
		period = time.Minute
	case "h":
		period = time.Hour
	case "d":
		period = day
	default:
		return Rate{}, fmt.Errorf("rate %q: unit %q must be s, m, h or d", s, unit)
	}
	return Rate{Count: count, Period: period}, nil
}

// String writes the rate back in the form ParseRate reads.
func (r Rate) String() string {
	unit := "?"
	switch r.Period {
	case time.Second:
		unit = "s"
	case time.Minute:
		unit = "m"
	case time.Hour:
		unit = "h"
	case day:
		unit = "d"
	}
	return strconv.FormatInt(r.Count, 10) + "/" + unit
}

// What a route rate limit is counted per.
const (
	// PerRoute is one budget shared by every caller of the route (the default).
	PerRoute = "route"
	// PerIP is one budget per client IP (trusted-proxy aware).
	PerIP = "ip"
	// PerUser is one budget per authenticated user (the token's sub).
	PerUser = "user"
)

// RouteLimit is one entry of a route's rate_limits.
type RouteLimit struct {
	Rate
	// Per is PerRoute, PerIP or PerUser.
	Per string
}

// ParseRouteLimit reads a route rate limit: "N/unit" optionally followed by
// "per ip", "per user" or "per route" (the default), e.g. "10/s per ip".
func ParseRouteLimit(s string) (RouteLimit, error) {
	fields := strings.Fields(s)
	if len(fields) != 1 && len(fields) != 3 {
		return RouteLimit{}, fmt.Errorf("rate limit %q must be N/unit optionally followed by \"per ip\", \"per user\" or \"per route\"", s)
	}
	r, err := ParseRate(fields[0])
	if err != nil {
		return RouteLimit{}, fmt.Errorf("rate limit %q: %w", s, err)
	}
	l := RouteLimit{Rate: r, Per: PerRoute}
	if len(fields) == 3 {
		if fields[1] != "per" {
			return RouteLimit{}, fmt.Errorf("rate limit %q: expected \"per\" after the rate", s)
		}
		switch fields[2] {
		case PerRoute, PerIP, PerUser:
			l.Per = fields[2]
		default:
			return RouteLimit{}, fmt.Errorf("rate limit %q: %q must be ip, user or route", s, fields[2])
		}
	}
	return l, nil
}
