// Package audit records security events: typed, structured, written as JSON log
// lines and kept in the store where they can be queried.
//
// It must never record a secret: events carry ids, addresses and outcomes, never a
// password, token, key or one-time code. Recording never fails a request: a store
// error is logged and counted, and the event still reaches the log.
package audit
