package auth

import (
	"encoding/json"
	"errors"
	"strings"

	"cel.dev/cel-go/cel"
)

// Condition is a compiled CEL condition over request and principal.
type Condition struct {
	prg      cel.Program
	usesBody bool
}

// celEnv declares the variables conditions may read.
var celEnv, celEnvErr = cel.NewEnv(
	cel.Variable("request", cel.MapType(cel.StringType, cel.DynType)),
	cel.Variable("principal", cel.MapType(cel.StringType, cel.DynType)),
	// m[?"key"].orValue(default) reads a header or claim that may be absent.
	cel.OptionalTypes(),
)

// CompileCondition compiles expr; it must yield a bool. Its error is for the operator.
func CompileCondition(expr string) (*Condition, error) {
	if celEnvErr != nil {
		return nil, celEnvErr
	}
	ast, iss := celEnv.Compile(expr)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	if ast.OutputType() != cel.BoolType && ast.OutputType() != cel.DynType {
		return nil, errors.New("must be a bool expression, not " + ast.OutputType().String())
	}
	prg, err := celEnv.Program(ast, cel.CostLimit(100000), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, err
	}
	return &Condition{prg: prg, usesBody: strings.Contains(expr, "body")}, nil
}

// Eval runs the condition; an evaluation error (a missing claim, a type mismatch) is false.
func (c *Condition) Eval(p *Principal, r *Request) bool {
	headers := make(map[string]string, len(r.Header))
	for k, v := range r.Header {
		if len(v) > 0 && !credentialHeader(k) {
			headers[strings.ToLower(k)] = v[0]
		}
	}
	req := map[string]any{
		"model":      r.Model,
		"endpoint":   r.Endpoint,
		"stream":     r.Stream,
		"max_tokens": r.MaxTokens,
		"headers":    headers,
	}
	if c.usesBody && len(r.Body) > 0 {
		var body any
		if json.Unmarshal(r.Body, &body) == nil {
			req["body"] = body
		}
	}
	roles := p.Roles
	if roles == nil {
		roles = []string{}
	}
	claims := p.Claims
	if claims == nil {
		claims = map[string]any{}
	}
	out, _, err := c.prg.Eval(map[string]any{
		"request":   req,
		"principal": map[string]any{"subject": p.Subject, "team": p.Team, "roles": roles, "claims": claims},
	})
	if err != nil {
		return false
	}
	b, ok := out.Value().(bool)
	return ok && b
}

// credentialHeader keeps credentials out of conditions (and so out of anything they log).
func credentialHeader(k string) bool {
	switch k {
	case "Authorization", "X-Api-Key", "Api-Key", "X-Goog-Api-Key", "Cookie", "Proxy-Authorization":
		return true
	}
	return false
}
