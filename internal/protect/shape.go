package protect

import (
	"regexp"
	"slices"

	"github.com/getkin/kin-openapi/openapi3"
)

// shape is a schema compiled down to what property filtering and mass-assignment
// checks need: which properties an object declares, whether it is closed, and
// the shapes below. Compiled once per schema at start-up; cycles share nodes.
type shape struct {
	props map[string]*prop
	// closed: additionalProperties (or unevaluatedProperties) is false, so the
	// schema itself forbids other properties. Requests carrying one are refused.
	closed bool
	// open: additionalProperties is true, or the object declares nothing at all
	// (a free-form object). Responses keep undeclared properties only then.
	open     bool
	extra    *shape // additionalProperties schema
	patterns []patternShape
	items    *shape
	prefix   []*shape
}

type prop struct {
	shape    *shape
	readOnly bool
}

type patternShape struct {
	re    *regexp.Regexp
	shape *shape
}

type shapeCompiler struct {
	memo map[*openapi3.Schema]*shape
}

func newShapeCompiler() *shapeCompiler {
	return &shapeCompiler{memo: map[*openapi3.Schema]*shape{}}
}

// compile turns ref into a shape. allOf, anyOf and oneOf are merged as the union
// of what their branches declare: a response is never stripped of a property
// that some branch allows, at the cost of not choosing the branch that matched.
func (c *shapeCompiler) compile(ref *openapi3.SchemaRef) *shape {
	if ref == nil || ref.Value == nil {
		return nil
	}
	s := ref.Value
	if sh, ok := c.memo[s]; ok {
		return sh
	}
	sh := &shape{}
	c.memo[s] = sh
	c.merge(sh, s, true)
	if len(sh.props) == 0 && !sh.closed && sh.extra == nil && len(sh.patterns) == 0 {
		sh.open = true
	}
	return sh
}

func (c *shapeCompiler) merge(sh *shape, s *openapi3.Schema, top bool) {
	for name, pr := range s.Properties {
		if sh.props == nil {
			sh.props = map[string]*prop{}
		}
		p := sh.props[name]
		if p == nil {
			p = &prop{}
			sh.props[name] = p
		}
		if pr != nil && pr.Value != nil {
			p.readOnly = p.readOnly || pr.Value.ReadOnly
			if p.shape == nil {
				p.shape = c.compile(pr)
			}
		}
	}
	ap := s.AdditionalProperties
	switch {
	case ap.Has != nil && !*ap.Has:
		// Only the schema itself closes: a closed allOf/oneOf branch speaks for
		// its own properties, and the union of branches decides.
		sh.closed = sh.closed || top
	case ap.Has != nil && *ap.Has:
		sh.open = true
	case ap.Schema != nil:
		sh.extra = c.compile(ap.Schema)
	}
	if up := s.UnevaluatedProperties; up.Has != nil && !*up.Has && top {
		sh.closed = true
	}
	for pat, ps := range s.PatternProperties {
		if re, err := regexp.Compile(pat); err == nil {
			sh.patterns = append(sh.patterns, patternShape{re: re, shape: c.compile(ps)})
		} else {
			// A pattern Go cannot compile must not make us drop data it allows.
			sh.open = true
		}
	}
	if s.Items != nil && sh.items == nil {
		sh.items = c.compile(s.Items)
	}
	for _, pi := range s.PrefixItems {
		sh.prefix = append(sh.prefix, c.compile(pi))
	}
	for _, group := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, sub := range group {
			if sub == nil || sub.Value == nil {
				continue
			}
			c.merge(sh, sub.Value, false)
		}
	}
}

// lookup returns the shape of property name under sh, whether name is
// declared (or allowed) at all, and whether it is readOnly.
func (sh *shape) lookup(name string) (*shape, bool, bool) {
	if p, ok := sh.props[name]; ok {
		return p.shape, true, p.readOnly
	}
	for _, ps := range sh.patterns {
		if ps.re.MatchString(name) {
			return ps.shape, true, false
		}
	}
	if sh.extra != nil {
		return sh.extra, true, false
	}
	return nil, false, false
}

func (sh *shape) itemShape(i int) *shape {
	if i < len(sh.prefix) {
		return sh.prefix[i]
	}
	return sh.items
}

// checkWrite walks a decoded request body and reports unknown properties where
// the schema is closed and readOnly properties anywhere (mass assignment).
func (sh *shape) checkWrite(v any, path string, fs *findings) {
	if sh == nil {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			sub, declared, ro := sh.lookup(k)
			field := joinField(path, k)
			switch {
			case ro:
				fs.add(Finding{Kind: KindReadOnlyProperty, Field: field, Reason: "read-only property"})
			case !declared && sh.closed:
				fs.add(Finding{Kind: KindUnknownProperty, Field: field, Reason: "unknown property"})
			case declared:
				sub.checkWrite(x[k], field, fs)
			}
		}
	case []any:
		for i, e := range x {
			sh.itemShape(i).checkWrite(e, indexField(path, i), fs)
		}
	}
}

// filter removes from v every property its shape does not declare, in place,
// and reports each. An object whose shape is open keeps everything.
func (sh *shape) filter(v any, path string, fs *findings) {
	if sh == nil {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		var drop []string
		for k, e := range x {
			sub, declared, _ := sh.lookup(k)
			if !declared {
				if !sh.open {
					drop = append(drop, k)
				}
				continue
			}
			sub.filter(e, joinField(path, k), fs)
		}
		slices.Sort(drop)
		for _, k := range drop {
			delete(x, k)
			fs.add(Finding{Kind: KindUndeclaredProperty, Field: joinField(path, k), Reason: "not in the response schema"})
		}
	case []any:
		for i, e := range x {
			sh.itemShape(i).filter(e, indexField(path, i), fs)
		}
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
