// Package openapi reads just enough of an OpenAPI 3.0 or 3.1 document (YAML or
// JSON) for the scanner: the operations with their parameters, security,
// request schema and JSON response schemas, with local $refs resolved.
//
// It must never: fetch a remote $ref, loop on a cyclic $ref, or accept a
// document larger than MaxSize.
package openapi
