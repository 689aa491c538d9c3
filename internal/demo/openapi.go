package demo

import (
	"bytes"
	_ "embed"
)

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of the notes API, written the safe way:
// notes without owner_email or internal_flags, users without password_hash, and a
// create-note body of only title (≤ 200) and body (≤ 10000), every record closed with
// additionalProperties false. Gatehouse validates and filters against it. The caller
// gets its own copy.
func OpenAPI() []byte {
	return bytes.Clone(openAPI)
}
