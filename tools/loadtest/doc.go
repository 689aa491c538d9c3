// Command loadtest measures the gateway's cost against a bare Go reverse
// proxy in one run on loopback, and prints the markdown tables that
// docs/benchmarks.md shows:
//
//	go run ./tools/loadtest [flags]            the whole comparison (a)–(d)
//	go run ./tools/loadtest upstream --listen 127.0.0.1:0
//	go run ./tools/loadtest bare --listen 127.0.0.1:0 --upstream URL --cert F --key F
//
// The comparison starts every piece as its own OS process so that each
// process's CPU time can be read from /proc: the trivial upstream and the bare
// proxy (this same program in another mode) and `gatehouse serve` (built once
// into a temporary directory). The load generator is this process.
//
// It owns starting, loading and stopping those processes. It must never send
// traffic anywhere but 127.0.0.1, never run without a bound on time and
// request count, and never leave a process it started or its temporary
// directory behind, on success, on error or on Ctrl-C.
package main
