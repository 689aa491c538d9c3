// Package gateway is the enforcing reverse proxy: the route table, the edge
// limits, and the per-route chain every proxied request passes — route →
// authenticate → authorise → limit → proxy → response check. The chain is
// compiled once from the config at start-up and reads top to bottom in
// chain.go.
//
// Invariants it must never break: nothing reaches an upstream without passing
// the whole chain; inbound Gatehouse-* headers never reach an upstream; identity
// headers come only from a verified token; forwarding headers are rebuilt, never
// passed through; a response that fails its response rule sends no byte of its
// body to the client.
package gateway
