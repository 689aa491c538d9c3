package policy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// MaxRuleBytes is the longest rule accepted. Rules are a line or two of config;
// the bound keeps parsing and checking cost small whatever the file holds.
const MaxRuleBytes = 4 << 10

// DefaultCostLimit is the CEL runtime cost a rule may spend per evaluation when
// Options.CostLimit is 0. The ownership rule costs 8; an all() over a
// 10,000-item response list costs about 80,000 and takes about 9 ms on a
// 2-core development box (roughly 100 ns a unit), so the limit caps one
// evaluation at around 10 ms.
const DefaultCostLimit = 100_000

// interruptEvery is how many comprehension iterations pass between checks of the
// caller's context.
const interruptEvery = 100

// ErrInvalidRule is wrapped by every compile error.
var ErrInvalidRule = errors.New("invalid rule")

// Options configure an Env.
type Options struct {
	// CostLimit bounds the CEL runtime cost of one evaluation; beyond it the
	// evaluation fails and the request is denied. 0 → DefaultCostLimit.
	CostLimit uint64
}

// Env holds the CEL environments rules are compiled in. It is built once and is
// safe for concurrent use.
type Env struct {
	request   *cel.Env
	response  *cel.Env
	costLimit uint64
}

// NewEnv builds the request and response environments.
func NewEnv(opts Options) (*Env, error) {
	if opts.CostLimit == 0 {
		opts.CostLimit = DefaultCostLimit
	}
	strMap := cel.MapType(cel.StringType, cel.StringType)
	base := []cel.EnvOption{
		cel.Variable("request.method", cel.StringType),
		cel.Variable("request.path", strMap),
		cel.Variable("request.query", strMap),
		cel.Variable("request.headers", strMap),
		cel.Variable("token", cel.MapType(cel.StringType, cel.DynType)),
		// Only macros that fold into a bool: map and filter build lists whose
		// size follows the input, which the cost limit charges for only roughly.
		// An authorisation rule is a predicate and needs none of them.
		cel.ClearMacros(),
		cel.Macros(cel.HasMacro, cel.AllMacro, cel.ExistsMacro, cel.ExistsOneMacro),
		cel.ASTValidators(cel.ValidateComprehensionNestingLimit(2)),
		cel.ParserExpressionSizeLimit(MaxRuleBytes),
		cel.ParserRecursionLimit(64),
		cel.RegexProgramSizeLimit(1000),
		cel.CrossTypeNumericComparisons(true),
		cel.CustomTypeAdapter(jsonAdapter{next: types.DefaultTypeAdapter}),
	}
	req, err := cel.NewEnv(base...)
	if err != nil {
		return nil, fmt.Errorf("policy: request environment: %w", err)
	}
	resp, err := req.Extend(
		cel.Variable("response.status", cel.IntType),
		cel.Variable("response.body", cel.DynType),
	)
	if err != nil {
		return nil, fmt.Errorf("policy: response environment: %w", err)
	}
	return &Env{request: req, response: resp, costLimit: opts.CostLimit}, nil
}

// Program is a compiled rule. It is safe for concurrent use.
type Program struct {
	src string
	prg cel.Program
	// loops is true when the rule has a comprehension (all, exists,
	// exists_one), the only place CEL checks for interruption.
	loops bool
}

// String returns the rule's source.
func (p *Program) String() string { return p.src }

// CompileRequest compiles an allow rule. The error wraps ErrInvalidRule and says
// what is wrong, with CEL's line and column.
func (e *Env) CompileRequest(expr string) (*Program, error) {
	p, problem := e.compile(e.request, expr)
	if problem != "" {
		return nil, fmt.Errorf("policy: compile allow rule: %w: %s", ErrInvalidRule, problem)
	}
	return p, nil
}

// CompileResponse compiles a response_allow rule. The error wraps ErrInvalidRule
// and says what is wrong, with CEL's line and column.
func (e *Env) CompileResponse(expr string) (*Program, error) {
	p, problem := e.compile(e.response, expr)
	if problem != "" {
		return nil, fmt.Errorf("policy: compile response_allow rule: %w: %s", ErrInvalidRule, problem)
	}
	return p, nil
}

// compile returns the program, or a one-line description of what is wrong with
// expr suitable for a config problem.
func (e *Env) compile(env *cel.Env, expr string) (*Program, string) {
	switch {
	case len(expr) > MaxRuleBytes:
		return nil, fmt.Sprintf("is %d bytes long; rules may be at most %d", len(expr), MaxRuleBytes)
	case !utf8.ValidString(expr):
		return nil, "is not valid UTF-8"
	case strings.TrimSpace(expr) == "":
		return nil, "is empty"
	}
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, describeIssues(iss)
	}
	out := ast.OutputType()
	// dyn is accepted because response.body fields and token claims are dyn; a
	// non-bool result at run time is an evaluation error, which denies.
	if !out.IsExactType(cel.BoolType) && !out.IsExactType(cel.DynType) {
		return nil, fmt.Sprintf("must be a bool expression (this one is %s)", cel.FormatCELType(out))
	}
	prg, err := env.Program(ast,
		cel.CostLimit(e.costLimit),
		cel.InterruptCheckFrequency(interruptEvery),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		return nil, err.Error()
	}
	loops := len(celast.MatchDescendants(celast.NavigateAST(ast.NativeRep()), celast.KindMatcher(celast.ComprehensionKind))) > 0
	return &Program{src: expr, prg: prg, loops: loops}, ""
}

// describeIssues turns CEL issues into one line: "column 12: undeclared
// reference to 'x'; ...", with the line as well for multi-line rules.
func describeIssues(iss *cel.Issues) string {
	errs := iss.Errors()
	if len(errs) == 0 {
		return iss.Err().Error()
	}
	const maxShown = 3
	parts := make([]string, 0, min(len(errs), maxShown)+1)
	for i, e := range errs {
		if i == maxShown {
			parts = append(parts, "and "+strconv.Itoa(len(errs)-maxShown)+" more")
			break
		}
		var pos string
		if loc := e.Location; loc != nil && loc.Line() > 0 {
			pos = "column " + strconv.Itoa(loc.Column()+1) + ": "
			if loc.Line() > 1 {
				pos = "line " + strconv.Itoa(loc.Line()) + ", " + pos
			}
		}
		parts = append(parts, pos+e.Message)
	}
	for _, e := range errs {
		if strings.Contains(e.Message, "undeclared reference to 'map'") || strings.Contains(e.Message, "undeclared reference to 'filter'") {
			parts = append(parts, "(map and filter are not available in rules; use all, exists or exists_one)")
			break
		}
	}
	return strings.Join(parts, "; ")
}

// eval runs p and reports whether it returned true. A non-bool result or an
// evaluation error (missing key, wrong type, cost limit, cancelled context) is
// returned as an error.
func (p *Program) eval(ctx context.Context, act *activation) (bool, error) {
	var (
		out ref.Val
		err error
	)
	// CEL checks for interruption only inside comprehensions; without one, or
	// with a context that can never end, watching the context would only cost
	// a cancel context per evaluation (about 1 µs). The cost limit bounds
	// every evaluation either way.
	if !p.loops || ctx == nil || ctx.Done() == nil {
		out, _, err = p.prg.Eval(act)
	} else {
		out, _, err = p.prg.ContextEval(ctx, act)
	}
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("rule returned %s, not bool", out.Type().TypeName())
	}
	return bool(b), nil
}
