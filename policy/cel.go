package policy

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/parser"
)

// costLimit bounds the work of one evaluation of one condition, in CEL
// cost units (roughly one per operation or element visited). A million
// allows comprehensions over tens of thousands of files or attestations yet
// stops a runaway expression within milliseconds; the same policy runs in
// latency-bound init containers.
const costLimit = 1_000_000

// celEnv is a CEL environment and the names of the variables it declares.
type celEnv struct {
	env  *cel.Env
	vars map[string]bool
}

// evidenceVars declares the evidence document's top-level fields, typed as
// they read after a JSON round trip of [Evidence]: numbers are doubles,
// objects are maps.
func evidenceVars() []cel.EnvOption {
	entries := cel.ListType(cel.MapType(cel.StringType, cel.DynType))
	return []cel.EnvOption{
		cel.Variable("repository", cel.StringType),
		cel.Variable("reference", cel.StringType),
		cel.Variable("digest", cel.StringType),
		cel.Variable("alias", cel.StringType),
		cel.Variable("artifactType", cel.StringType),
		cel.Variable("annotations", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("config", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("files", entries),
		cel.Variable("signatures", entries),
		cel.Variable("attestations", entries),
		cel.Variable("approvals", entries),
		cel.Variable("aliases", cel.MapType(cel.StringType, cel.ListType(cel.StringType))),
	}
}

// newCELEnv builds an environment over the evidence variables plus extra.
//
// Choices, each tested:
//   - CrossTypeNumericComparisons: JSON numbers are doubles, and a policy
//     writer who types `>= 1` means the number one; without it a statically
//     typed double compared with an int literal does not compile.
//   - HomogeneousAggregateLiterals stays off (the default), so [1, 2.5]
//     is a valid list.
//   - has() also accepts a map index with a string literal key, see hasMacro.
func newCELEnv(extra ...cel.EnvOption) (*celEnv, error) {
	opts := append(evidenceVars(), extra...)
	opts = append(opts,
		ext.Lists(),
		ext.Strings(),
		cel.CrossTypeNumericComparisons(true),
		cel.Macros(cel.GlobalMacro(operators.Has, 1, hasMacro)),
	)
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, err
	}
	vars := map[string]bool{}
	for _, v := range env.Variables() {
		vars[v.Name()] = true
	}
	return &celEnv{env: env, vars: vars}, nil
}

var (
	// evidenceEnv compiles alias conditions: the evidence variables.
	evidenceEnv = sync.OnceValues(func() (*celEnv, error) { return newCELEnv() })
	// attestationEnv compiles attestation conditions: the evidence
	// variables plus `predicate`, the decoded predicate of the attestation
	// being judged.
	attestationEnv = sync.OnceValues(func() (*celEnv, error) {
		return newCELEnv(cel.Variable("predicate", cel.DynType))
	})
)

// hasMacro is CEL's has() macro, extended so that has(m['key']) with a
// string literal key means 'key' in m. Standard CEL accepts only has(m.f),
// yet annotation keys are full of dots and dashes, so the field form cannot
// name them and DESIGN.md writes has(annotations['org.opencontainers.image.revision']).
func hasMacro(eh parser.ExprHelper, target ast.Expr, args []ast.Expr) (ast.Expr, *common.Error) {
	if a := args[0]; a.Kind() == ast.CallKind && a.AsCall().FunctionName() == operators.Index {
		operand, key := a.AsCall().Args()[0], a.AsCall().Args()[1]
		if key.Kind() == ast.LiteralKind {
			if _, ok := key.AsLiteral().(types.String); ok {
				return eh.NewCall(operators.In, key, operand), nil
			}
		}
		return nil, eh.NewError(a.ID(), "has() takes a field (has(m.f)) or a map key in quotes (has(m['k'])); for other keys write k in m")
	}
	return parser.MakeHas(eh, target, args)
}

// condition is a compiled CEL condition.
type condition struct {
	src   string
	prg   cel.Program
	paths []refPath // values the expression reads, reported when it fails
}

// celIssue is one compile error, located within the expression.
type celIssue struct {
	line, column int // 1-based
	msg          string
}

// compile parses and type-checks src, which must yield a boolean.
func (e *celEnv) compile(src string) (*condition, []celIssue, error) {
	checked, iss := e.env.Compile(src)
	if iss.Err() != nil {
		var out []celIssue
		for _, is := range iss.Errors() {
			out = append(out, celIssue{line: is.Location.Line(), column: is.Location.Column() + 1, msg: is.Message})
		}
		return nil, out, nil
	}
	if k := checked.OutputType().Kind(); k != types.BoolKind && k != types.DynKind {
		return nil, nil, fmt.Errorf("must be a true/false expression, but %q yields %s", src, checked.OutputType())
	}
	prg, err := e.env.Program(checked, cel.CostLimit(costLimit))
	if err != nil {
		return nil, nil, fmt.Errorf("cannot be prepared for evaluation: %v", err)
	}
	return &condition{src: src, prg: prg, paths: readPaths(checked.NativeRep().Expr(), e.vars)}, nil, nil
}

// eval runs the condition over vars. It returns an error for anything other
// than a plain true or false: a runtime error (a missing key, a type
// mismatch, the cost limit) or a non-boolean result.
func (c *condition) eval(vars map[string]any) (bool, error) {
	out, _, err := c.prg.Eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("yields %v (%s), not true or false", out.Value(), out.Type().TypeName())
	}
	return b, nil
}

// describeValues says what the values the condition reads were, e.g.
// "accuracy was 0.81", so a release owner sees why it failed without
// reading the evidence. Only scalars and missing values are reported.
func (c *condition) describeValues(vars map[string]any) string {
	var parts []string
	for _, p := range c.paths {
		v, found := p.lookup(vars)
		switch v.(type) {
		case map[string]any, []any:
			continue
		}
		val := "missing"
		if found {
			val = formatValue(v)
		}
		parts = append(parts, p.label+" was "+val)
	}
	return strings.Join(parts, ", ")
}

// refPath is a chain of field selections and constant indexes from a
// variable, such as predicate.metrics.accuracy or annotations['k'].
type refPath struct {
	root  string
	steps []any // string (field or map key) or int64 (list index)
	text  string
	label string // short name for messages: the last step, or text if ambiguous
}

func (p refPath) lookup(vars map[string]any) (any, bool) {
	v, ok := vars[p.root]
	for _, s := range p.steps {
		if !ok {
			return nil, false
		}
		switch s := s.(type) {
		case string:
			m, isMap := v.(map[string]any)
			if !isMap {
				return nil, false
			}
			v, ok = m[s]
		case int64:
			l, isList := v.([]any)
			if !isList || s < 0 || s >= int64(len(l)) {
				return nil, false
			}
			v = l[s]
		}
	}
	return v, ok
}

// readPaths returns the maximal variable paths that e reads, with at least
// one step, in order of first appearance.
func readPaths(e ast.Expr, vars map[string]bool) []refPath {
	var out []refPath
	seen := map[string]bool{}
	var walk func(e ast.Expr, shadow map[string]bool)
	walk = func(e ast.Expr, shadow map[string]bool) {
		if p, ok := pathOf(e, vars, shadow); ok {
			if len(p.steps) > 0 && !seen[p.text] {
				seen[p.text] = true
				out = append(out, p)
			}
			return
		}
		switch e.Kind() {
		case ast.SelectKind:
			walk(e.AsSelect().Operand(), shadow)
		case ast.CallKind:
			c := e.AsCall()
			if c.IsMemberFunction() {
				walk(c.Target(), shadow)
			}
			for _, a := range c.Args() {
				walk(a, shadow)
			}
		case ast.ListKind:
			for _, el := range e.AsList().Elements() {
				walk(el, shadow)
			}
		case ast.MapKind:
			for _, en := range e.AsMap().Entries() {
				walk(en.AsMapEntry().Key(), shadow)
				walk(en.AsMapEntry().Value(), shadow)
			}
		case ast.ComprehensionKind:
			c := e.AsComprehension()
			walk(c.IterRange(), shadow)
			walk(c.AccuInit(), shadow)
			inner := map[string]bool{c.IterVar(): true, c.AccuVar(): true}
			if v2 := c.IterVar2(); v2 != "" {
				inner[v2] = true
			}
			for k := range shadow {
				inner[k] = true
			}
			walk(c.LoopCondition(), inner)
			walk(c.LoopStep(), inner)
			walk(c.Result(), inner)
		}
	}
	walk(e, nil)

	// Label each path by its last step unless two paths share it.
	count := map[string]int{}
	for i := range out {
		out[i].label = lastStep(out[i])
		count[out[i].label]++
	}
	for i := range out {
		if count[out[i].label] > 1 {
			out[i].label = out[i].text
		}
	}
	return out
}

// pathOf returns e as a variable path if it is one.
func pathOf(e ast.Expr, vars, shadow map[string]bool) (refPath, bool) {
	switch e.Kind() {
	case ast.IdentKind:
		name := e.AsIdent()
		if !vars[name] || shadow[name] {
			return refPath{}, false
		}
		return refPath{root: name, text: name}, true
	case ast.SelectKind:
		s := e.AsSelect()
		p, ok := pathOf(s.Operand(), vars, shadow)
		if !ok {
			return refPath{}, false
		}
		return p.with(s.FieldName(), "."+s.FieldName()), true
	case ast.CallKind:
		c := e.AsCall()
		if c.FunctionName() != operators.Index || len(c.Args()) != 2 || c.Args()[1].Kind() != ast.LiteralKind {
			return refPath{}, false
		}
		p, ok := pathOf(c.Args()[0], vars, shadow)
		if !ok {
			return refPath{}, false
		}
		switch k := c.Args()[1].AsLiteral().(type) {
		case types.String:
			return p.with(string(k), "["+strconv.Quote(string(k))+"]"), true
		case types.Int:
			return p.with(int64(k), "["+strconv.FormatInt(int64(k), 10)+"]"), true
		}
	}
	return refPath{}, false
}

func (p refPath) with(step any, text string) refPath {
	return refPath{root: p.root, steps: append(append([]any(nil), p.steps...), step), text: p.text + text}
}

func lastStep(p refPath) string {
	if s, ok := p.steps[len(p.steps)-1].(string); ok {
		return s
	}
	return p.text
}

// formatValue prints a JSON-decoded scalar as a policy writer would write it.
func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprint(v)
}
