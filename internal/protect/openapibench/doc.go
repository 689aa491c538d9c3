// Package openapibench holds only the benchmark that chose Gatehouse's OpenAPI
// validator (docs/decisions/0004-openapi-validator.md): the same requests validated
// by github.com/getkin/kin-openapi and github.com/pb33f/libopenapi-validator, on the
// demo's 3.1 document and on a larger 3.0 shop document with a 2 KB JSON body.
//
// It must never be imported: it has no exported API, and the production path uses
// only the library the decision record names.
package openapibench
