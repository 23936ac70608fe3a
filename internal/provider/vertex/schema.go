package vertex

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/sluice-gateway/sluice/internal/jsonscan"
)

// Vertex takes schemas (function parameters, responseSchema) as its Schema message, a
// subset of OpenAPI 3.0, and refuses members it does not know. convertSchema rewrites a
// JSON Schema into that subset:
//   - type names are upper-cased; a type list with "null" becomes nullable, and a list of
//     several types becomes anyOf;
//   - oneOf becomes anyOf, const becomes a one-value enum;
//   - string formats other than date-time and enum are dropped (Vertex refuses the rest);
//   - members Vertex lacks are dropped: additionalProperties, $schema, $id, allOf, not,
//     patternProperties, uniqueItems, exclusive bounds, examples, definitions (use $defs),
//     tuple items, and any other keyword not listed in keepVerbatim;
//   - propertyOrdering is added from the declaration order, since Gemini otherwise orders
//     generated properties alphabetically.
//
// $ref and $defs pass through; models that predate them refuse such schemas upstream.
// Dropped keywords are not enforced by anyone, so a schema relying on them is weaker.

var (
	errNotObject = errors.New("expected a JSON object")
	errTooDeep   = errors.New("the schema is nested too deeply")
)

const maxSchemaDepth = 64

// keepVerbatim are Schema members copied as they are.
var keepVerbatim = map[string]bool{
	"title": true, "description": true, "nullable": true, "default": true, "enum": true,
	"required": true, "minItems": true, "maxItems": true, "minProperties": true,
	"maxProperties": true, "minimum": true, "maximum": true, "minLength": true,
	"maxLength": true, "pattern": true, "example": true, "propertyOrdering": true, "$ref": true,
}

// convertSchema converts one schema. For function parameters (params) an object schema
// without properties converts to nil: Vertex refuses an OBJECT without properties there,
// and no parameters means the same thing.
func convertSchema(raw []byte, params bool) (json.RawMessage, error) {
	out, props, typ, err := appendSchema(nil, raw, 0)
	if err != nil {
		return nil, err
	}
	if params && typ == "OBJECT" && props == 0 {
		return nil, nil
	}
	return out, nil
}

// appendSchema appends the converted schema raw to dst, returning how many properties it
// declares and its (single) type.
func appendSchema(dst, raw []byte, depth int) (out []byte, props int, typ string, err error) {
	if depth > maxSchemaDepth {
		return dst, 0, "", errTooDeep
	}
	if len(raw) == 0 || raw[0] != '{' {
		return dst, 0, "", errNotObject
	}
	// First pass: the type (format depends on it) and which members are present.
	var types []string
	nullable, hasEnum, hasOrdering, hasAnyOf, hasType := false, false, false, false, false
	stringValues := false // enum or const holds strings
	err = jsonscan.Object(raw, func(m jsonscan.Member) bool {
		v := m.Value(raw)
		switch string(m.Key(raw)) {
		case "type":
			hasType = true
			types, nullable = schemaTypes(v)
		case "enum":
			hasEnum = true
			if e, ok := firstElement(v); ok && e[0] == '"' {
				stringValues = true
			}
		case "const":
			stringValues = stringValues || v[0] == '"'
		case "propertyOrdering":
			hasOrdering = true
		case "anyOf":
			hasAnyOf = true
		case "nullable":
			if b, _ := jsonscan.Bool(v); b {
				nullable = true
			}
		}
		return true
	})
	if err != nil {
		return dst, 0, "", errNotObject
	}
	if len(types) == 1 {
		typ = types[0]
	}
	dst = append(dst, '{')
	first := true
	key := func(k string) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, k...)
		dst = append(dst, '"', ':')
	}
	var names [][]byte // property keys, raw with quotes
	var cerr error     // conversion error; a stopped walk itself reports none
	jsonscan.Object(raw, func(m jsonscan.Member) bool {
		k, v := string(m.Key(raw)), m.Value(raw)
		switch {
		case k == "type":
			if typ != "" {
				key("type")
				dst = append(dst, '"')
				dst = append(dst, typ...)
				dst = append(dst, '"')
			}
		case k == "nullable":
			// written once below
		case k == "properties":
			key("properties")
			dst, props, cerr = appendSchemaMap(dst, v, depth, &names)
		case k == "items":
			if len(v) > 0 && v[0] == '{' {
				key("items")
				dst, _, _, cerr = appendSchema(dst, v, depth+1)
			}
		case k == "anyOf" || (k == "oneOf" && !hasAnyOf):
			key("anyOf")
			var sawNull bool
			dst, sawNull, cerr = appendSchemaList(dst, v, depth)
			nullable = nullable || sawNull
		case k == "$defs":
			key("$defs")
			dst, _, cerr = appendSchemaMap(dst, v, depth, nil)
		case k == "const":
			if !hasEnum {
				key("enum")
				dst = append(dst, '[')
				dst = append(dst, v...)
				dst = append(dst, ']')
			}
		case k == "format":
			f, _ := jsonscan.String(v)
			if typ != "STRING" || f == "date-time" || f == "enum" {
				key("format")
				dst = append(dst, v...)
			}
		case keepVerbatim[k]:
			key(k)
			dst = append(dst, v...)
		}
		return cerr == nil
	})
	if cerr != nil {
		return dst, 0, "", cerr
	}
	if len(types) > 1 && !hasAnyOf {
		key("anyOf")
		dst = append(dst, '[')
		for i, t := range types {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"type":"`...)
			dst = append(dst, t...)
			dst = append(dst, `"}`...)
		}
		dst = append(dst, ']')
	}
	if !hasType && stringValues {
		key("type") // Vertex enums are STRING-typed
		dst = append(dst, `"STRING"`...)
		typ = "STRING"
	}
	if nullable {
		key("nullable")
		dst = append(dst, "true"...)
	}
	if len(names) > 1 && !hasOrdering {
		key("propertyOrdering")
		dst = append(dst, '[')
		for i, n := range names {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, n...)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}'), props, typ, nil
}

// appendSchemaList converts anyOf. A {"type":"null"} alternative is left out and reported,
// so the parent becomes nullable instead: Vertex has no null type.
func appendSchemaList(dst, v []byte, depth int) (out []byte, sawNull bool, err error) {
	if len(v) == 0 || v[0] != '[' {
		return dst, false, errors.New("anyOf must be an array")
	}
	dst = append(dst, '[')
	n := 0
	jsonscan.Array(v, func(s, e int) bool {
		elem := v[s:e]
		if t, ok := jsonscan.Get(elem, "type"); ok {
			if types, null := schemaTypes(t); len(types) == 0 && null {
				sawNull = true
				return true
			}
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst, _, _, err = appendSchema(dst, elem, depth+1)
		return err == nil
	})
	if err != nil {
		return dst, false, err
	}
	return append(dst, ']'), sawNull, nil
}

// appendSchemaMap converts an object of named schemas (properties, $defs), collecting the
// raw names into names when it is not nil.
func appendSchemaMap(dst, v []byte, depth int, names *[][]byte) ([]byte, int, error) {
	if len(v) == 0 || v[0] != '{' {
		return dst, 0, errNotObject
	}
	dst = append(dst, '{')
	n := 0
	var err error
	jsonscan.Object(v, func(m jsonscan.Member) bool {
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		name := v[m.KeyStart:m.KeyEnd]
		if names != nil {
			*names = append(*names, name)
		}
		dst = append(dst, name...)
		dst = append(dst, ':')
		dst, _, _, err = appendSchema(dst, m.Value(v), depth+1)
		return err == nil
	})
	return append(dst, '}'), n, err
}

// firstElement returns an array's first element.
func firstElement(v []byte) (elem []byte, ok bool) {
	jsonscan.Array(v, func(s, e int) bool {
		elem, ok = v[s:e], true
		return false
	})
	return elem, ok
}

// schemaTypes reads "type": a name or a list of names, upper-cased, "null" taken out as
// nullable.
func schemaTypes(v []byte) (types []string, nullable bool) {
	add := func(raw []byte) {
		s, ok := jsonscan.String(raw)
		if !ok || s == "" || strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			return // not a type name; written out unquoted below, so never kept
		}
		if strings.EqualFold(s, "null") {
			nullable = true
			return
		}
		types = append(types, strings.ToUpper(s))
	}
	if len(v) > 0 && v[0] == '[' {
		jsonscan.Array(v, func(s, e int) bool { add(v[s:e]); return true })
	} else {
		add(v)
	}
	return types, nullable
}
