// Package monitor is what Gatehouse tells its operators: Prometheus metrics on
// its own registry (never the global one), served on the admin listener.
//
// It must never label a metric with a value an attacker controls without bound
// (user ids, paths, tokens): labels are route names, decisions, status classes
// and limit names, all from the config or a closed set.
package monitor
