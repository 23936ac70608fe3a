package payload

import (
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sluice-gateway/sluice/internal/auth"
	"github.com/sluice-gateway/sluice/internal/egress"
	"github.com/sluice-gateway/sluice/internal/payload/content"
)

// HeaderValue is a header and the CEL expression of its value.
type HeaderValue struct {
	Name string
	Expr *auth.Expression
}

// BodyValue is a body path and the CEL expression of its value.
type BodyValue struct {
	Path []string
	Expr *auth.Expression
}

// Mutations are the header and body changes of one processor.
type Mutations struct {
	SetHeaders       []HeaderValue
	SetBodyFields    []BodyValue
	RemoveHeaders    []string
	RemoveBodyFields [][]string
}

// mutateStep applies Mutations. Every value is computed before anything changes, so a
// failing expression leaves the request as it was.
type mutateStep struct{ m Mutations }

var structValue = reflect.TypeOf(&structpb.Value{})

func (m *mutateStep) request(_ *Step, r *Run) (verdict, error) {
	ex := r.Ex
	req := &auth.Request{Model: ex.Model, Endpoint: ex.IngressEndpoint.RuleName(), Stream: ex.Stream,
		MaxTokens: ex.MaxTokens, Header: ex.Header, Body: ex.Body, MCP: ex.MCP}
	headers := make([]string, len(m.m.SetHeaders))
	for i, h := range m.m.SetHeaders {
		v, err := h.Expr.Eval(ex.Principal, req)
		if err != nil {
			return verdict{}, errors.New("setHeaders " + h.Name + ": " + err.Error())
		}
		s, err := headerValue(v)
		if err != nil {
			return verdict{}, errors.New("setHeaders " + h.Name + ": " + err.Error())
		}
		headers[i] = s
	}
	values := make([][]byte, len(m.m.SetBodyFields))
	for i, f := range m.m.SetBodyFields {
		v, err := f.Expr.Eval(ex.Principal, req)
		if err != nil {
			return verdict{}, errors.New("setBodyFields " + strings.Join(f.Path, ".") + ": " + err.Error())
		}
		js, err := jsonValue(v)
		if err != nil {
			return verdict{}, errors.New("setBodyFields " + strings.Join(f.Path, ".") + ": " + err.Error())
		}
		values[i] = js
	}
	if r.expired() {
		return verdict{}, errTimeout
	}
	body := ex.Body
	var err error
	for i, f := range m.m.SetBodyFields {
		if body, err = content.SetField(body, f.Path, values[i]); err != nil {
			return verdict{}, errors.New("setBodyFields " + strings.Join(f.Path, ".") + ": " + err.Error())
		}
	}
	for _, p := range m.m.RemoveBodyFields {
		if body, err = content.RemoveField(body, p); err != nil {
			return verdict{}, errors.New("removeBodyFields " + strings.Join(p, ".") + ": " + err.Error())
		}
	}
	if len(m.m.SetBodyFields)+len(m.m.RemoveBodyFields) > 0 {
		if err := r.setBody(body); err != nil {
			return verdict{}, err
		}
	}
	for _, name := range m.m.RemoveHeaders {
		ex.Header.Del(name)
	}
	for i, h := range m.m.SetHeaders {
		ex.Header.Set(h.Name, headers[i])
	}
	return verdict{}, nil
}

// headerValue renders a CEL value as a header value: strings as they are, numbers and
// booleans in their usual form.
func headerValue(v ref.Val) (string, error) {
	switch x := v.(type) {
	case types.String:
		s := string(x)
		if strings.ContainsAny(s, "\r\n\x00") {
			return "", errors.New("the value contains a line break")
		}
		return s, nil
	case types.Int:
		return strconv.FormatInt(int64(x), 10), nil
	case types.Uint:
		return strconv.FormatUint(uint64(x), 10), nil
	case types.Double:
		return strconv.FormatFloat(float64(x), 'g', -1, 64), nil
	case types.Bool:
		return strconv.FormatBool(bool(x)), nil
	}
	return "", errors.New("a header value must be a string, number or bool, not " + v.Type().TypeName())
}

// jsonValue renders a CEL value as JSON.
func jsonValue(v ref.Val) ([]byte, error) {
	native, err := v.ConvertToNative(structValue)
	if err != nil {
		return nil, err
	}
	return protojson.Marshal(native.(*structpb.Value))
}

// protectedHeader is what no processor may set: credentials (the client's never go
// upstream; the gateway's come from the Backend) and the headers that frame the exchange.
func protectedHeader(name string) bool {
	if egress.IsCredentialHeader(http.CanonicalHeaderKey(name)) {
		return true
	}
	switch http.CanonicalHeaderKey(name) {
	case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Te", "Upgrade", "Content-Encoding":
		return true
	}
	return false
}

// ProtectedHeader reports whether a setHeaders name is refused (for the translator).
func ProtectedHeader(name string) bool { return protectedHeader(name) }
