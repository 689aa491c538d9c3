// Package policy makes the gateway's per-route allow/deny decisions: the access
// mode (public or authenticated), required roles and scopes, MFA, and the route's
// CEL rules over the request (allow) and the upstream's response (response_allow).
//
// It owns the CEL environments that rules are compiled in, the compiled form of a
// route's policy (Rule), and the decision functions. Rules are compiled once at
// start-up (and by "config check" through Check) and evaluated on every request.
//
// It must never do I/O, log, read the clock or hold global state: a Decision is a
// function of the Rule and the Input alone (the caller supplies Input.Now). It
// never verifies tokens either: Input.Claims is nil unless the caller has already
// verified the token, and policy trusts it.
//
// # Deny by default
//
// The zero Rule denies every request, a nil *Rule denies, an unknown access mode
// denies, a rule that errors denies, and the zero Decision is a denial. A request
// is allowed only when every configured requirement holds.
//
// # What rules see
//
// Request rules (allow) see:
//
//	request.method    string, e.g. "GET"
//	request.path      map(string, string): the route's named path parameters
//	request.query     map(string, string): the first value of each query parameter
//	request.headers   map(string, string): lower-case header name → first value;
//	                  Authorization, Proxy-Authorization and Cookie are left out
//	token             map(string, dyn): the verified token's claims, or an empty map
//
// token holds sub, sid, iss, jti, exp, iat and the lists aud, roles, amr and scopes
// (the "scope" claim split at spaces) whenever there is a token; scope, plan,
// client_id, auth_time and nbf only when the token carries them. So
// has(token.plan) tells whether the claim is there, and token.plan on a token
// without one is an evaluation error, which denies.
//
// Response rules (response_allow) see the same plus:
//
//	response.status   int
//	response.body     dyn: the upstream's JSON body as decoded by the caller
//
// JSON numbers decoded into float64 are CEL doubles; CEL compares doubles and
// ints by value (response.body.n == 3 holds for 3.0), and string(3.0) is "3".
// Numbers decoded as json.Number become ints when they are integers, else doubles.
//
// # Bounds
//
// Rules are at most MaxRuleBytes long, type-checked at compile, and must have type
// bool (or dyn, checked at run time). Only the has, all, exists and exists_one
// macros are available: each folds into a bool, so no rule can build a collection
// that grows with its input. Comprehensions nest at most two deep. Evaluation
// stops with an error (and so a denial) beyond a cost limit, and when the caller's
// context ends.
//
// # Type errors: compile time or run time
//
// request.method, request.path, request.query and request.headers are typed, so
// request.path.id == 1 or request.method > 3 fail at compile. token and
// response.body are dyn: token.sub == 1, int(token.sub), a missing claim or field,
// and a wrong-typed JSON field surface only at run time, as a rule_error denial.
package policy
