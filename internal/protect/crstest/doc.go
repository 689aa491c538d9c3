// Package crstest measures Gatehouse's WAF (protect.WAF) against two corpora: the
// OWASP CRS regression tests that github.com/corazawaf/coraza-coreruleset/v4
// ships in its tests package (go-ftw YAML, the same CRS version as the rules),
// and a benign corpus of realistic API requests for false positives.
//
// It runs only the request-side tests it can express as one *http.Request:
// single-stage tests with a method, URI, headers and body whose outcome is a
// log expectation (expect_ids / no_expect_ids). Raw or encoded requests, multi-
// stage tests and response-side tests are counted as not runnable, never as
// passed.
//
// It must never be imported by production code: it exists for tests and the
// figures in docs/protection.md.
package crstest
