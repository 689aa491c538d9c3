// Package load generates HTTP/1.1 load over TLS against one loopback address:
// a closed loop (N connections, each sends its next request as soon as the
// previous answer is read) to find peak throughput, and an open loop (requests
// scheduled at a fixed rate, latency measured from the scheduled time so a
// stalled server cannot hide its stall — no coordinated omission).
//
// It speaks HTTP/1.1 itself on pre-dialled keep-alive connections, writing one
// prepared request and parsing the answer with net/http's reader, because the
// full net/http client costs several times more CPU per request and on a
// 2-core machine that CPU is taken from the server being measured.
//
// It owns generating load and measuring it. It must never send to anything
// but the one address it was given, and every run is bounded both in time and
// in number of requests.
package load
