package policy

import (
	"encoding/json"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"

	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// activation resolves a rule's variables on demand, so a rule that reads only
// request.path.id and token.sub never builds the header, query or claims maps.
type activation struct {
	in          *Input
	hasResponse bool
	status      int
	body        any
}

var _ interpreter.Activation = (*activation)(nil)

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "request.method":
		return a.in.Method, true
	case "request.path":
		return a.in.PathParams, true
	case "request.query":
		return lazyMap[queryView]{queryView(a.in.Query)}, true
	case "request.headers":
		return lazyMap[headerView]{headerView(a.in.Header)}, true
	case "token":
		return lazyMap[tokenView]{tokenView{a.in.Claims}}, true
	case "response.status":
		if a.hasResponse {
			return types.Int(a.status), true
		}
	case "response.body":
		if a.hasResponse {
			return a.body, true
		}
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

// view is a string-keyed map whose entries are computed on demand.
type view interface {
	// FindStringKey returns the native value for key.
	FindStringKey(key string) (any, bool)
	// materialize builds the whole map, for the rare rule that iterates, sizes
	// or compares it.
	materialize() traits.Mapper
}

// lazyMap is a CEL map over a view. The interpreter looks single keys up
// through FindStringKey (its fast path for field selection) or Find; only
// whole-map operations materialize the view.
type lazyMap[V view] struct{ v V }

var _ traits.Mapper = lazyMap[tokenView]{}

// FindStringKey is the interpreter's fast path for request.query.limit.
func (m lazyMap[V]) FindStringKey(key string) (any, bool) { return m.v.FindStringKey(key) }

// Find implements traits.Mapper.
func (m lazyMap[V]) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return types.ValOrErr(key, "unsupported key type: %s", key.Type().TypeName()), false
	}
	v, found := m.v.FindStringKey(string(k))
	if !found {
		return nil, false
	}
	return types.DefaultTypeAdapter.NativeToValue(v), true
}

// Get implements traits.Indexer.
func (m lazyMap[V]) Get(key ref.Val) ref.Val {
	v, found := m.Find(key)
	switch {
	case found:
		return v
	case v != nil:
		return v
	default:
		return types.NewErr("no such key: %v", key)
	}
}

// Contains implements traits.Container.
func (m lazyMap[V]) Contains(key ref.Val) ref.Val {
	v, found := m.Find(key)
	switch {
	case found:
		return types.True
	case v != nil:
		return v
	default:
		return types.False
	}
}

// Size implements traits.Sizer.
func (m lazyMap[V]) Size() ref.Val { return m.v.materialize().Size() }

// Iterator implements traits.Iterable.
func (m lazyMap[V]) Iterator() traits.Iterator { return m.v.materialize().Iterator() }

// ConvertToNative implements ref.Val.
func (m lazyMap[V]) ConvertToNative(t reflect.Type) (any, error) {
	return m.v.materialize().ConvertToNative(t)
}

// ConvertToType implements ref.Val.
func (m lazyMap[V]) ConvertToType(t ref.Type) ref.Val { return m.v.materialize().ConvertToType(t) }

// Equal implements ref.Val.
func (m lazyMap[V]) Equal(other ref.Val) ref.Val { return m.v.materialize().Equal(other) }

// Type implements ref.Val.
func (m lazyMap[V]) Type() ref.Type { return types.MapType }

// Value implements ref.Val.
func (m lazyMap[V]) Value() any { return m.v.materialize().Value() }

// queryView shows the first value of each query parameter.
type queryView url.Values

func (q queryView) FindStringKey(key string) (any, bool) {
	vs := q[key]
	if len(vs) == 0 {
		return nil, false
	}
	return vs[0], true
}

func (q queryView) materialize() traits.Mapper {
	m := make(map[string]string, len(q))
	for k, vs := range q {
		if len(vs) > 0 {
			m[k] = vs[0]
		}
	}
	return types.NewStringStringMap(types.DefaultTypeAdapter, m)
}

// headerView shows the first value of each header under its lower-case name.
type headerView http.Header

// hiddenHeader reports the headers rules never see. Credentials belong to the
// authentication step: a rule decides on the verified claims in token, and
// keeping raw bearer tokens and cookies out of the rule engine keeps them out of
// anything that might one day record evaluation state.
func hiddenHeader(lower string) bool {
	switch lower {
	case "authorization", "proxy-authorization", "cookie":
		return true
	}
	return false
}

func (h headerView) FindStringKey(key string) (any, bool) {
	// Names are exposed in lower case only, so "X-Api-Key" is absent just as it
	// is from the materialized map.
	if key == "" || strings.ToLower(key) != key || hiddenHeader(key) {
		return nil, false
	}
	vs := h[textproto.CanonicalMIMEHeaderKey(key)]
	if len(vs) == 0 {
		// Names the canonical form leaves alone (e.g. with a space) are stored
		// as sent.
		vs = h[key]
	}
	if len(vs) == 0 {
		return nil, false
	}
	return vs[0], true
}

func (h headerView) materialize() traits.Mapper {
	m := make(map[string]string, len(h))
	for k, vs := range h {
		lower := strings.ToLower(k)
		if len(vs) == 0 || hiddenHeader(lower) {
			continue
		}
		if _, dup := m[lower]; !dup {
			m[lower] = vs[0]
		}
	}
	return types.NewStringStringMap(types.DefaultTypeAdapter, m)
}

// tokenView shows a verified token's claims; with no token it is empty.
type tokenView struct{ c *token.Claims }

// tokenKeys lists every claim tokenView can show.
func tokenKeys() []string {
	return []string{
		"sub", "sid", "iss", "jti", "aud", "exp", "iat", "roles", "amr", "scopes",
		"scope", "plan", "client_id", "auth_time", "nbf",
	}
}

func (t tokenView) FindStringKey(key string) (any, bool) {
	c := t.c
	if c == nil {
		return nil, false
	}
	switch key {
	case "sub":
		return c.Subject, true
	case "sid":
		return c.SessionID, true
	case "iss":
		return c.Issuer, true
	case "jti":
		return c.ID, true
	case "aud":
		return nonNil([]string(c.Audience)), true
	case "exp":
		return c.Expiry, true
	case "iat":
		return c.IssuedAt, true
	case "roles":
		return nonNil(c.Roles), true
	case "amr":
		return nonNil(c.AMR), true
	case "scopes":
		return strings.Fields(c.Scope), true
	case "scope":
		return c.Scope, c.Scope != ""
	case "plan":
		return c.Plan, c.Plan != ""
	case "client_id":
		return c.ClientID, c.ClientID != ""
	case "auth_time":
		return c.AuthTime, c.AuthTime != 0
	case "nbf":
		return c.NotBefore, c.NotBefore != 0
	}
	return nil, false
}

func (t tokenView) materialize() traits.Mapper {
	m := make(map[string]any)
	for _, k := range tokenKeys() {
		if v, ok := t.FindStringKey(k); ok {
			m[k] = v
		}
	}
	return types.NewStringInterfaceMap(types.DefaultTypeAdapter, m)
}

// nonNil turns a missing list claim into an empty list, so "admin" in
// token.roles is false rather than an error for a token without roles.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// jsonAdapter converts values decoded by encoding/json into CEL values,
// including json.Number, and keeps doing so inside nested objects and arrays.
type jsonAdapter struct{ next types.Adapter }

// NativeToValue implements types.Adapter.
func (a jsonAdapter) NativeToValue(v any) ref.Val {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return types.Int(i)
		}
		if f, err := x.Float64(); err == nil {
			return types.Double(f)
		}
		return types.NewErr("invalid JSON number")
	case map[string]any:
		return types.NewStringInterfaceMap(a, x)
	case []any:
		return types.NewDynamicList(a, x)
	}
	return a.next.NativeToValue(v)
}
