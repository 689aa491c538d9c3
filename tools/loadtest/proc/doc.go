// Package proc reads the CPU time a process has used from Linux's
// /proc/<pid>/stat, so a benchmark can report CPU per request for each
// process it started.
//
// It owns reading and parsing that file only. It must never signal, trace or
// otherwise touch the process it reads.
package proc
