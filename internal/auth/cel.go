package auth

import (
	"encoding/json"
	"errors"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types/ref"

	"github.com/sluice-gateway/sluice/internal/egress"
	"github.com/sluice-gateway/sluice/internal/exchange"
)

// Condition is a compiled CEL condition over request, principal and mcp.
type Condition struct {
	prg      cel.Program
	usesBody bool
}

// celEnv declares the variables conditions may read.
// m[?"key"].orValue(default) reads a header or claim that may be absent.
var celEnv, celEnvErr = cel.NewEnv(EnvOptions()...)

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
	return &Condition{prg: prg, usesBody: ReadsBody(expr)}, nil
}

// Eval runs the condition; an evaluation error (a missing claim, a type mismatch) is false.
func (c *Condition) Eval(p *Principal, r *Request) bool {
	out, _, err := c.prg.Eval(Activation(p, r, c.usesBody))
	if err != nil {
		return false
	}
	b, ok := out.Value().(bool)
	return ok && b
}

// Activation is the CEL variables request, principal and mcp for one request. The body and
// an MCP call's arguments are decoded only when withBody is set.
func Activation(p *Principal, r *Request, withBody bool) map[string]any {
	headers := make(map[string]string, len(r.Header))
	for k, v := range r.Header {
		if len(v) > 0 && !egress.IsCredentialHeader(k) {
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
	if withBody && len(r.Body) > 0 {
		var body any
		if json.Unmarshal(r.Body, &body) == nil {
			req["body"] = body
		}
	}
	principal := map[string]any{"subject": "", "team": "", "roles": []string{}, "claims": map[string]any{}}
	if p != nil {
		principal["subject"], principal["team"] = p.Subject, p.Team
		if p.Roles != nil {
			principal["roles"] = p.Roles
		}
		if p.Claims != nil {
			principal["claims"] = p.Claims
		}
	}
	return map[string]any{"request": req, "principal": principal, "mcp": mcpActivation(r.MCP, withBody)}
}

// mcpActivation is the mcp variable: always set, with empty fields for a model request,
// so mcp.tool is "" there rather than an error.
// ReadsBody reports whether an expression may read what is costly to decode: the request
// body, or an MCP call's arguments. Only then does its activation decode them.
func ReadsBody(expr string) bool {
	return strings.Contains(expr, "body") || strings.Contains(expr, "arguments")
}

func mcpActivation(c *exchange.MCPCall, withArgs bool) map[string]any {
	m := map[string]any{"method": "", "tool": "", "prompt": "", "server": "", "arguments": map[string]any{}}
	if c == nil {
		return m
	}
	m["method"], m["tool"], m["prompt"], m["server"] = c.Method, c.Tool, c.Prompt, c.Server
	if withArgs && len(c.Arguments) > 0 {
		var args any
		if json.Unmarshal(c.Arguments, &args) == nil && args != nil {
			m["arguments"] = args
		}
	}
	return m
}

// EnvOptions declare request, principal and mcp (and optional values) for other stages'
// expressions, so every CEL expression in Sluice sees the same variables.
func EnvOptions() []cel.EnvOption {
	return []cel.EnvOption{
		cel.Variable("request", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("principal", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("mcp", cel.MapType(cel.StringType, cel.DynType)),
		cel.OptionalTypes(),
	}
}

// Expression is a compiled CEL expression of any type over request and principal (a
// header value or a body field a payload processor sets).
type Expression struct {
	prg      cel.Program
	usesBody bool
}

// CompileExpression compiles expr; its error is for the operator.
func CompileExpression(expr string) (*Expression, error) {
	if celEnvErr != nil {
		return nil, celEnvErr
	}
	ast, iss := celEnv.Compile(expr)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	prg, err := celEnv.Program(ast, cel.CostLimit(100000), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, err
	}
	return &Expression{prg: prg, usesBody: ReadsBody(expr)}, nil
}

// Eval runs the expression.
func (e *Expression) Eval(p *Principal, r *Request) (ref.Val, error) {
	out, _, err := e.prg.Eval(Activation(p, r, e.usesBody))
	return out, err
}
