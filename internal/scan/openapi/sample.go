package openapi

import "sort"

// Sample builds a small value that satisfies s well enough for a create call:
// examples and enums first, then required properties (all properties when none
// are required), strings set to marker. Depth is bounded for recursive schemas.
func Sample(s *Schema, marker string) any {
	return sample(s, marker, 0)
}

func sample(s *Schema, marker string, depth int) any {
	if s == nil || depth > 6 {
		return marker
	}
	if s.Example != nil {
		// A free-form string example is replaced by the marker, so the scan can
		// recognise its own objects in responses.
		if _, ok := s.Example.(string); ok && s.Type == "string" && s.Format == "" && s.Pattern == "" {
			return marker
		}
		return s.Example
	}
	if len(s.Enum) > 0 {
		return s.Enum[0]
	}
	for _, sub := range s.AllOf {
		if sub != nil && (sub.Type == "object" || sub.Properties != nil) {
			merged := &Schema{Type: "object", Properties: map[string]*Schema{}}
			for _, a := range s.AllOf {
				if a == nil {
					continue
				}
				for k, v := range a.Properties {
					merged.Properties[k] = v
				}
				merged.Required = append(merged.Required, a.Required...)
			}
			return sample(merged, marker, depth+1)
		}
	}
	if len(s.OneOf) > 0 {
		return sample(s.OneOf[0], marker, depth+1)
	}
	if len(s.AnyOf) > 0 {
		return sample(s.AnyOf[0], marker, depth+1)
	}
	switch s.Type {
	case "object":
		out := map[string]any{}
		names := s.Required
		if len(names) == 0 {
			for k := range s.Properties {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		for _, k := range names {
			out[k] = sample(s.Properties[k], marker, depth+1)
		}
		return out
	case "array":
		return []any{sample(s.Items, marker, depth+1)}
	case "integer":
		return 1
	case "number":
		return 1.5
	case "boolean":
		return false
	case "string":
		switch s.Format {
		case "email":
			return "scan@gatehouse.invalid"
		case "date-time":
			return "2024-01-01T00:00:00Z"
		case "date":
			return "2024-01-01"
		case "uuid":
			return "00000000-0000-4000-8000-000000000000"
		}
		return marker
	}
	return marker
}
