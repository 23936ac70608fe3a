package content

import (
	"bytes"

	"github.com/sluice-gateway/sluice/internal/jsonscan"
)

// mcpRequest reads one JSON-RPC request to an MCP server: every string inside the
// arguments of tools/call and prompts/get is User text, however deeply nested (a tool's
// arguments have no fixed shape). Other methods carry no text.
func mcpRequest(body []byte, dst []Segment) ([]Segment, error) {
	var method []byte
	var buf [2]span
	params := buf[:0] // a params given twice is read each time: parsers differ on which wins
	err := jsonscan.Object(body, func(m jsonscan.Member) bool {
		switch {
		case keyIs(body, m, "method"):
			method = m.Value(body) // the last one, as encoding/json
		case keyIs(body, m, "params"):
			params = append(params, span{m.ValueStart, m.ValueEnd})
		}
		return true
	})
	if err != nil {
		return dst, err
	}
	if !textMethod(method) {
		return dst, nil
	}
	for _, p := range params {
		v := body[p.start:p.end]
		jsonscan.Object(v, func(m jsonscan.Member) bool {
			if keyIs(v, m, "arguments") {
				dst = allStrings(m.Value(v), p.start+m.ValueStart, User, dst)
			}
			return true
		})
	}
	return dst, nil
}

type span struct{ start, end int }

// keyIs reports whether member m of data is named want (ASCII) as a lenient
// parser reads it: escapes decoded and case ignored (encoding/json matches struct fields
// so), so a server cannot be sent text under a spelling this scanner skips.
func keyIs(data []byte, m jsonscan.Member, want string) bool {
	k := m.Key(data)
	if string(k) == want {
		return true
	}
	if bytes.IndexByte(k, '\\') >= 0 {
		var buf [64]byte
		k, _ = jsonscan.AppendUnquoted(buf[:0], data[m.KeyStart:m.KeyEnd])
	}
	return bytes.EqualFold(k, []byte(want))
}

// textMethod reports whether the raw method is tools/call or prompts/get, escapes decoded
// ("tools\/call" is tools/call to the server too).
func textMethod(raw []byte) bool {
	switch string(raw) {
	case `"tools/call"`, `"prompts/get"`:
		return true
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return false
	}
	name, _ := jsonscan.String(raw)
	return name == "tools/call" || name == "prompts/get"
}

// mcpResponse reads one JSON-RPC response from an MCP server: the text of tool results
// (content items and embedded resources, and every string of structuredContent), of
// resources/read and of prompts/get. An error response has none.
func mcpResponse(body []byte, dst []Segment) ([]Segment, error) {
	err := jsonscan.Object(body, func(m jsonscan.Member) bool {
		if !keyIs(body, m, "result") {
			return true
		}
		res, off := m.Value(body), m.ValueStart
		jsonscan.Object(res, func(rm jsonscan.Member) bool {
			v, voff := rm.Value(res), off+rm.ValueStart
			switch {
			case keyIs(res, rm, "content"): // tools/call
				each(v, voff, func(item []byte, ioff int) { dst = mcpContent(item, ioff, dst) })
			case keyIs(res, rm, "structuredContent"):
				dst = allStrings(v, voff, Answer, dst)
			case keyIs(res, rm, "contents"): // resources/read
				each(v, voff, func(item []byte, ioff int) { dst = member(item, ioff, "text", dst) })
			case keyIs(res, rm, "messages"): // prompts/get
				each(v, voff, func(msg []byte, moff int) {
					jsonscan.Object(msg, func(mm jsonscan.Member) bool {
						if keyIs(msg, mm, "content") {
							dst = mcpContent(mm.Value(msg), moff+mm.ValueStart, dst)
						}
						return true
					})
				})
			}
			return true
		})
		return true
	})
	return dst, err
}

// mcpContent reads one content item: the text of a text item, and of an embedded
// resource. Any item's text is read, whatever its type says, so an odd type hides nothing.
func mcpContent(item []byte, off int, dst []Segment) []Segment {
	jsonscan.Object(item, func(m jsonscan.Member) bool {
		switch {
		case keyIs(item, m, "text"):
			dst = str(m.Value(item), off+m.ValueStart, Answer, dst)
		case keyIs(item, m, "resource"):
			dst = member(m.Value(item), off+m.ValueStart, "text", dst)
		}
		return true
	})
	return dst
}

// member appends the string value of every member key of object v.
func member(v []byte, off int, key string, dst []Segment) []Segment {
	jsonscan.Object(v, func(m jsonscan.Member) bool {
		if keyIs(v, m, key) {
			dst = str(m.Value(v), off+m.ValueStart, Answer, dst)
		}
		return true
	})
	return dst
}

// each calls fn with every element of the array v that is an object.
func each(v []byte, off int, fn func(item []byte, off int)) {
	if len(v) == 0 || v[0] != '[' {
		return
	}
	jsonscan.Array(v, func(s, e int) bool {
		if v[s] == '{' {
			fn(v[s:e], off+s)
		}
		return true
	})
}

// allStrings appends every string value in v, at any depth, as part p; object keys are
// not text. v is a value jsonscan has validated; it is walked once, without recursion, so
// deep nesting costs no more than its bytes. On bytes that are not JSON it stops quietly.
func allStrings(v []byte, off int, p Part, dst []Segment) []Segment {
	var buf [64]bool
	inObject := buf[:0] // per open container: is it an object
	key := false        // the next string is an object key
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '{':
			inObject = append(inObject, true)
			key = true
		case '[':
			inObject = append(inObject, false)
			key = false
		case '}', ']':
			if len(inObject) == 0 {
				return dst
			}
			inObject = inObject[:len(inObject)-1]
			key = false
		case ',':
			key = len(inObject) > 0 && inObject[len(inObject)-1]
		case ':':
			key = false
		case '"':
			end := stringEnd(v, i)
			if end < 0 {
				return dst
			}
			if !key {
				dst = append(dst, Segment{Part: p, Start: off + i, End: off + end})
			}
			i = end - 1
		}
	}
	return dst
}

// stringEnd returns the index just past the raw string that starts at v[i], or -1.
func stringEnd(v []byte, i int) int {
	for j := i + 1; j < len(v); j++ {
		switch v[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}
