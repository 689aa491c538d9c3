// Package demo is the sample upstream API ("notes") that `gatehouse demo` runs behind
// the gateway to show what Gatehouse adds.
//
// It is deliberately naive and must stay that way: it trusts the Gatehouse-User-Id
// header it receives, lets anyone read any note by its enumerable id, returns internal
// fields (owner e-mail, moderation flags, a password hash), and leaks a database-style
// error that echoes the query. Each of these is a hole the gateway's ownership rules,
// schema validation, response filtering or WAF is there to close; fixing them here
// would hide what the demo exists to show.
//
// What it must never do: listen on anything but the address it is given (the caller
// owns the listener), persist anything (all state is in memory and bounded by
// MaxNotes), or contain a real secret — the password hash it serves is a fixed fake.
package demo
