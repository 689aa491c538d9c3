// Package config is Gatehouse's configuration tree: defaults, strict YAML loading
// (unknown keys are errors), environment overrides for secrets, and a pure Validate
// that reports every problem at once with its YAML path and line.
//
// The order is always defaults → file → environment → Validate (Load, Parse).
// Problems carry the YAML path ("routes[2].path") and, when loaded from a file,
// the line, so `gatehouse config check` can print them all in one go. Other
// packages add their own rules (CEL compilation, OpenAPI loading) as a Check
// passed to LoadWith/ParseWith, and their problems get lines the same way.
//
// It owns: the Config types and their documented defaults, Duration and rate
// syntax ("30d", "100/h"), the validation rules, and the redacted view used for
// printing and logging.
//
// It must never read files other than the one it is given, open network connections,
// or log: it only describes what the operator asked for. It reads the environment
// only through the getenv function it is handed. Problem messages never echo the
// store, cache or KEK values, which may hold credentials.
package config
