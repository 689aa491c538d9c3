package scan

import "errors"

// Sentinel errors. Callers match them with errors.Is.
var (
	// ErrBudget means the request budget is spent; the check stops.
	ErrBudget = errors.New("request budget exhausted")
	// ErrBackoff means the server asked to wait longer than the Retry-After bound.
	ErrBackoff = errors.New("server asked to back off longer than the bound")
	// ErrUnreachable means the target did not answer at all.
	ErrUnreachable = errors.New("target unreachable")
	// ErrCertificate means the target's certificate does not verify; only the
	// transport checks ran, since credentials must not go to an unverified peer.
	ErrCertificate = errors.New("target certificate does not verify")
	// ErrForeignURL means a check tried to reach a host other than the target.
	ErrForeignURL = errors.New("url is not on the target host")
	// ErrBadSeverity is an unknown severity name.
	ErrBadSeverity = errors.New("unknown severity (want info, low, medium or high)")
	// ErrBadSuppression is an unusable suppression file entry.
	ErrBadSuppression = errors.New("invalid suppression")
	// ErrBadBaseline is an unreadable baseline report.
	ErrBadBaseline = errors.New("invalid baseline report")
)
