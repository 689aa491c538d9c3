package policy

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// Access is a route's access mode.
type Access string

// Access modes. Any other value, including "", denies every request.
const (
	// Public admits anyone, with or without a token.
	Public Access = "public"
	// Authenticated requires a valid token.
	Authenticated Access = "authenticated"
)

// Reasons say in one word why a decision denied; they label logs and metrics.
const (
	ReasonNoPolicy     = "no_policy"     // the rule has no known access mode (zero Rule)
	ReasonNoToken      = "no_token"      // a token is required and none was valid
	ReasonMissingRole  = "missing_role"  // the token has none of the route's roles
	ReasonMissingScope = "missing_scope" // the token lacks one of the route's scopes
	ReasonMFARequired  = "mfa_required"  // the token's amr has no second factor
	ReasonMFAStale     = "mfa_stale"     // the sign-in is older than MFAMaxAge
	ReasonRuleDenied   = "rule_denied"   // the CEL rule returned false
	ReasonRuleError    = "rule_error"    // the CEL rule failed to evaluate
)

// Rule is a route's compiled policy. Its zero value denies everything. A Rule
// is immutable after construction and safe for concurrent use.
type Rule struct {
	// Access is Public or Authenticated; anything else denies every request.
	Access Access
	// Roles, when not empty, require a token whose roles claim holds at least one.
	Roles []string
	// Scopes, when not empty, require a token whose scope claim holds all of them.
	Scopes []string
	// MFA requires a token whose amr claim holds a second factor.
	MFA bool
	// MFAMaxAge, when positive, also requires the token's auth_time to be at most
	// this long before Input.Now. 0 means no freshness requirement.
	MFAMaxAge time.Duration
	// Allow, when not nil, must return true after the checks above pass.
	Allow *Program
	// ResponseAllow, when not nil, must return true for the upstream's response.
	ResponseAllow *Program
}

// CompileRoute compiles a route's policy. An empty access means Authenticated.
func (e *Env) CompileRoute(r config.Route) (*Rule, error) {
	// Copies, so the Rule stays immutable whatever happens to the config.
	rule := &Rule{
		Roles:  slices.Clone(r.Roles),
		Scopes: slices.Clone(r.Scopes),
	}
	switch r.Access {
	case "", config.AccessAuthenticated:
		rule.Access = Authenticated
	case config.AccessPublic:
		rule.Access = Public
	default:
		return nil, fmt.Errorf("policy: compile route: %w: unknown access %q", ErrInvalidRule, r.Access)
	}
	switch r.MFA {
	case "":
	case "required":
		rule.MFA = true
		rule.MFAMaxAge = r.MFAMaxAge.D()
	default:
		return nil, fmt.Errorf("policy: compile route: %w: unknown mfa %q", ErrInvalidRule, r.MFA)
	}
	var err error
	if r.Allow != "" {
		if rule.Allow, err = e.CompileRequest(r.Allow); err != nil {
			return nil, err
		}
	}
	if r.ResponseAllow != "" {
		if rule.ResponseAllow, err = e.CompileResponse(r.ResponseAllow); err != nil {
			return nil, err
		}
	}
	return rule, nil
}

// Input is what a decision looks at. The caller owns it; policy never changes it.
type Input struct {
	// Method is the request method, e.g. "GET".
	Method string
	// PathParams are the route's named path parameters; nil means none.
	PathParams map[string]string
	// Query is the parsed query string; nil means none.
	Query url.Values
	// Header is the request header with canonical names; nil means none.
	Header http.Header
	// Claims are the verified access token's claims; nil when the request had no
	// valid token. Policy trusts them as given.
	Claims *token.Claims
	// Now is the time MFAMaxAge is measured against. The zero time fails every
	// freshness check.
	Now time.Time
}

// Decision is the outcome of a policy check. The zero Decision denies.
type Decision struct {
	// Allow is true only when every requirement held.
	Allow bool
	// Status is 0 when allowed; otherwise the HTTP status to answer: 401 when a
	// token is needed and there is none, 403 when the token is not enough or a
	// request rule denies, 404 when a response rule denies.
	Status int
	// Reason is one of the Reason constants when denied, "" when allowed.
	Reason string
}

func deny(status int, reason string) Decision {
	return Decision{Status: status, Reason: reason}
}

// Decide checks a request against the rule: access mode, roles, scopes, MFA,
// then the allow rule. ctx interrupts a long rule evaluation (e.g. when the
// client goes away); it may be nil.
func (r *Rule) Decide(ctx context.Context, in *Input) Decision {
	if in == nil {
		in = &Input{}
	}
	if r == nil {
		return deny(http.StatusForbidden, ReasonNoPolicy)
	}
	switch r.Access {
	case Public, Authenticated:
	default:
		return deny(http.StatusForbidden, ReasonNoPolicy)
	}
	// Roles, scopes and MFA ask about the caller, so they need a token even on a
	// public route: config rejects that combination, and a Rule built in code
	// that has it fails closed rather than waving the requirement through.
	needToken := r.Access != Public || len(r.Roles) > 0 || len(r.Scopes) > 0 || r.MFA
	c := in.Claims
	if c == nil {
		if needToken {
			return deny(http.StatusUnauthorized, ReasonNoToken)
		}
	} else {
		if len(r.Roles) > 0 && !hasAnyRole(c.Roles, r.Roles) {
			return deny(http.StatusForbidden, ReasonMissingRole)
		}
		if len(r.Scopes) > 0 && !hasAllScopes(c.Scope, r.Scopes) {
			return deny(http.StatusForbidden, ReasonMissingScope)
		}
		if r.MFA {
			if !HasSecondFactor(c.AMR) {
				return deny(http.StatusForbidden, ReasonMFARequired)
			}
			if r.MFAMaxAge > 0 && !fresh(c.AuthTime, in.Now, r.MFAMaxAge) {
				return deny(http.StatusForbidden, ReasonMFAStale)
			}
		}
	}
	if r.Allow != nil {
		ok, err := r.Allow.eval(ctx, &activation{in: in})
		switch {
		case err != nil:
			return deny(http.StatusForbidden, ReasonRuleError)
		case !ok:
			return deny(http.StatusForbidden, ReasonRuleDenied)
		}
	}
	return Decision{Allow: true}
}

// DecideResponse checks the upstream's response against the ResponseAllow rule;
// body is the response JSON as decoded by encoding/json (nil for no body). With
// no ResponseAllow the response is allowed. A denial has Status 404 so that a
// caller who may not see a resource cannot learn that it exists.
func (r *Rule) DecideResponse(ctx context.Context, in *Input, status int, body any) Decision {
	if r == nil || (r.Access != Public && r.Access != Authenticated) {
		return deny(http.StatusNotFound, ReasonNoPolicy)
	}
	if r.ResponseAllow == nil {
		return Decision{Allow: true}
	}
	if in == nil {
		in = &Input{}
	}
	ok, err := r.ResponseAllow.eval(ctx, &activation{in: in, hasResponse: true, status: status, body: body})
	switch {
	case err != nil:
		return deny(http.StatusNotFound, ReasonRuleError)
	case !ok:
		return deny(http.StatusNotFound, ReasonRuleDenied)
	}
	return Decision{Allow: true}
}

func hasAnyRole(have, want []string) bool {
	for _, w := range want {
		for _, h := range have {
			if h == w {
				return true
			}
		}
	}
	return false
}

// hasAllScopes reports whether the space-separated scope claim holds every
// wanted scope.
func hasAllScopes(scope string, want []string) bool {
	for _, w := range want {
		found := false
		for s := range strings.FieldsSeq(scope) {
			if s == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// HasSecondFactor reports whether amr (RFC 8176 values) shows at least two
// factors: an explicit "mfa", or methods from two different kinds — something
// known (pwd, pin, kba), something held (otp, hwk, swk, sms, tel, sc, and the
// informal webauthn and passkey) or something the user is (fpt, face, iris,
// retina, vbm). A passkey used without user verification ("hwk" alone) is one
// factor, as is a password however often it appears.
func HasSecondFactor(amr []string) bool {
	var known, held, is bool
	for _, m := range amr {
		switch m {
		case "mfa":
			return true
		case "pwd", "pin", "kba":
			known = true
		case "otp", "hwk", "swk", "sms", "tel", "sc", "webauthn", "passkey":
			held = true
		case "fpt", "face", "iris", "retina", "vbm":
			is = true
		}
	}
	n := 0
	for _, b := range []bool{known, held, is} {
		if b {
			n++
		}
	}
	return n >= 2
}

// fresh reports whether the sign-in at authTime (Unix seconds) is at most
// maxAge before now. A token without auth_time, or a zero now, cannot show
// freshness and so is not fresh.
func fresh(authTime int64, now time.Time, maxAge time.Duration) bool {
	if authTime <= 0 || now.IsZero() {
		return false
	}
	return now.Sub(time.Unix(authTime, 0)) <= maxAge
}
