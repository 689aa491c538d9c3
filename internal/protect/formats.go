package protect

import (
	"errors"
	"net/mail"
	"net/url"
	"regexp"

	"github.com/getkin/kin-openapi/openapi3"
)

var errFormat = errors.New("invalid format")

// formatOptions turns on format assertions for the formats APIs rely on. They
// are passed per validation, never registered globally in kin-openapi, so two
// routers in one process cannot change each other's rules.
func formatOptions() []openapi3.SchemaValidationOption {
	uuid := regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	return []openapi3.SchemaValidationOption{
		openapi3.EnableFormatValidation(),
		openapi3.WithStringFormatValidator("uuid", openapi3.NewCallbackValidator(func(s string) error {
			if !uuid.MatchString(s) {
				return errFormat
			}
			return nil
		})),
		openapi3.WithStringFormatValidator("email", openapi3.NewCallbackValidator(func(s string) error {
			a, err := mail.ParseAddress(s)
			if err != nil || a.Address != s {
				return errFormat
			}
			return nil
		})),
		openapi3.WithStringFormatValidator("uri", openapi3.NewCallbackValidator(func(s string) error {
			u, err := url.Parse(s)
			if err != nil || u.Scheme == "" {
				return errFormat
			}
			return nil
		})),
	}
}
