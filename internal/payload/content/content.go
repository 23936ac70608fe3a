// Package content finds the text a payload processor reads in a request or an answer, in
// each wire format the gateway speaks (OpenAI chat, completions, embeddings; Anthropic
// Messages; MCP's JSON-RPC), and writes changed text back in place. Text is located as spans of raw JSON
// strings in the body, so the body is scanned once and rewritten only where text changed.
package content

import (
	"errors"

	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/jsonscan"
)

// Part is what a text is, as a bit so a processor's interest is one mask.
type Part uint8

// Parts of a request, and the answer.
const (
	User Part = 1 << iota
	Tool      // tool results and documents (where indirect injection arrives)
	System
	Assistant
	Answer // the model's answer
)

// Segment is one raw JSON string value of a body that holds text.
type Segment struct {
	Part       Part
	Start, End int // the raw string's span in the body, quotes included
}

// Raw returns the raw JSON string (with quotes).
func (s Segment) Raw(body []byte) []byte { return body[s.Start:s.End] }

// ErrShape reports a body whose text fields have the wrong JSON types.
var ErrShape = errors.New("content: unexpected body shape")

// Request appends the text segments of a request body of endpoint ep to dst, in document
// order. Non-text values (images, token arrays) are skipped. An MCP request is one
// JSON-RPC request: the strings of tools/call and prompts/get arguments are its text.
func Request(ep exchange.Endpoint, body []byte, dst []Segment) ([]Segment, error) {
	if ep == exchange.EndpointMCP {
		return mcpRequest(body, dst)
	}
	var err error
	scanErr := jsonscan.Object(body, func(m jsonscan.Member) bool {
		v := m.Value(body)
		off := m.ValueStart
		switch ep {
		case exchange.EndpointChat:
			if string(m.Key(body)) == "messages" {
				dst, err = chatMessages(v, off, dst)
			}
		case exchange.EndpointCompletions:
			if string(m.Key(body)) == "prompt" {
				dst = stringOrStrings(v, off, User, dst)
			}
		case exchange.EndpointEmbeddings:
			if string(m.Key(body)) == "input" {
				dst = stringOrStrings(v, off, User, dst)
			}
		case exchange.EndpointMessages, exchange.EndpointCountTokens:
			switch string(m.Key(body)) {
			case "system":
				dst = anthropicContent(v, off, System, dst)
			case "messages":
				dst, err = anthropicMessages(v, off, dst)
			}
		}
		return err == nil
	})
	if err == nil {
		err = scanErr
	}
	return dst, err
}

// Response appends the text segments of a whole (non-streamed) answer in the wire of ep.
// An MCP answer is one JSON-RPC response: tool results, resources and prompts.
func Response(ep exchange.Endpoint, body []byte, dst []Segment) ([]Segment, error) {
	if ep == exchange.EndpointMCP {
		return mcpResponse(body, dst)
	}
	err := jsonscan.Object(body, func(m jsonscan.Member) bool {
		v := m.Value(body)
		off := m.ValueStart
		switch string(m.Key(body)) {
		case "choices":
			jsonscan.Array(v, func(s, e int) bool {
				jsonscan.Object(v[s:e], func(c jsonscan.Member) bool {
					cv := c.Value(v[s:e])
					coff := off + s + c.ValueStart
					switch string(c.Key(v[s:e])) {
					case "text":
						dst = str(cv, coff, Answer, dst)
					case "message":
						jsonscan.Object(cv, func(mm jsonscan.Member) bool {
							if string(mm.Key(cv)) == "content" {
								dst = str(mm.Value(cv), coff+mm.ValueStart, Answer, dst)
							}
							return true
						})
					}
					return true
				})
				return true
			})
		case "content":
			if ep == exchange.EndpointMessages {
				dst = anthropicContent(v, off, Answer, dst)
			}
		}
		return true
	})
	return dst, err
}

func str(v []byte, off int, p Part, dst []Segment) []Segment {
	if len(v) >= 2 && v[0] == '"' {
		dst = append(dst, Segment{Part: p, Start: off, End: off + len(v)})
	}
	return dst
}

func stringOrStrings(v []byte, off int, p Part, dst []Segment) []Segment {
	if len(v) > 0 && v[0] == '[' {
		jsonscan.Array(v, func(s, e int) bool {
			dst = str(v[s:e], off+s, p, dst)
			return true
		})
		return dst
	}
	return str(v, off, p, dst)
}

// messages reads an array of message objects: role names the part (role returns 0 for a
// message not read), and each reads the message's content.
func messages(v []byte, off int, dst []Segment, role func([]byte) Part,
	each func(content []byte, off int, part Part, dst []Segment) []Segment) ([]Segment, error) {
	if len(v) == 0 || v[0] != '[' {
		return dst, nil
	}
	var err error
	jsonscan.Array(v, func(s, e int) bool {
		msg := v[s:e]
		if len(msg) == 0 || msg[0] != '{' {
			err = ErrShape
			return false
		}
		var part Part
		var content []byte
		contentOff := 0
		jsonscan.Object(msg, func(m jsonscan.Member) bool {
			switch string(m.Key(msg)) {
			case "role":
				part = role(m.Value(msg))
			case "content":
				content, contentOff = m.Value(msg), off+s+m.ValueStart
			}
			return true
		})
		if part != 0 && len(content) > 0 {
			dst = each(content, contentOff, part, dst)
		}
		return true
	})
	return dst, err
}

// chatMessages reads OpenAI chat messages: content is a string or an array of parts.
func chatMessages(v []byte, off int, dst []Segment) ([]Segment, error) {
	return messages(v, off, dst, chatRole, chatContent)
}

func chatContent(content []byte, off int, part Part, dst []Segment) []Segment {
	if content[0] != '[' {
		return str(content, off, part, dst)
	}
	jsonscan.Array(content, func(ps, pe int) bool {
		item := content[ps:pe]
		if t, ok := jsonscan.Get(item, "type"); ok && string(t) == `"text"` {
			jsonscan.Object(item, func(m jsonscan.Member) bool {
				if string(m.Key(item)) == "text" {
					dst = str(m.Value(item), off+ps+m.ValueStart, part, dst)
				}
				return true
			})
		}
		return true
	})
	return dst
}

func chatRole(v []byte) Part {
	switch string(v) {
	case `"user"`:
		return User
	case `"tool"`, `"function"`:
		return Tool
	case `"system"`, `"developer"`:
		return System
	case `"assistant"`:
		return Assistant
	}
	return 0
}

// anthropicMessages reads Anthropic messages: user text blocks are User, tool_result
// blocks and text documents are Tool, assistant text is Assistant.
func anthropicMessages(v []byte, off int, dst []Segment) ([]Segment, error) {
	return messages(v, off, dst, anthropicRole, anthropicContent)
}

func anthropicRole(v []byte) Part {
	switch string(v) {
	case `"user"`:
		return User
	case `"assistant"`:
		return Assistant
	}
	return 0
}

// anthropicContent reads a string or an array of content blocks.
func anthropicContent(v []byte, off int, part Part, dst []Segment) []Segment {
	if len(v) == 0 {
		return dst
	}
	if v[0] != '[' {
		return str(v, off, part, dst)
	}
	jsonscan.Array(v, func(s, e int) bool {
		blk := v[s:e]
		t, _ := jsonscan.Get(blk, "type")
		jsonscan.Object(blk, func(m jsonscan.Member) bool {
			val := m.Value(blk)
			voff := off + s + m.ValueStart
			switch string(t) + "." + string(m.Key(blk)) {
			case `"text".text`:
				dst = str(val, voff, part, dst)
			case `"tool_result".content`:
				dst = anthropicContent(val, voff, Tool, dst)
			case `"document".source`:
				if st, _ := jsonscan.Get(val, "type"); string(st) == `"text"` {
					jsonscan.Object(val, func(sm jsonscan.Member) bool {
						if string(sm.Key(val)) == "data" {
							dst = str(sm.Value(val), voff+sm.ValueStart, Tool, dst)
						}
						return true
					})
				}
			}
			return true
		})
		return true
	})
	return dst
}

// Text appends the decoded text of s to dst.
func Text(dst, body []byte, s Segment) []byte {
	out, _ := jsonscan.AppendUnquoted(dst, body[s.Start:s.End])
	return out
}

// Edit replaces one segment's text.
type Edit struct {
	Segment Segment
	Text    []byte // decoded text; it is quoted when written
}

// Rewrite returns a copy of body with each edit's segment replaced by its quoted text.
// Edits must be in document order and not overlap.
func Rewrite(body []byte, edits []Edit) []byte {
	n := len(body)
	for _, e := range edits {
		n += len(e.Text) + 8 - (e.Segment.End - e.Segment.Start)
	}
	out := make([]byte, 0, max(n, 0))
	prev := 0
	for _, e := range edits {
		out = append(out, body[prev:e.Segment.Start]...)
		out = AppendQuoted(out, e.Text)
		prev = e.Segment.End
	}
	return append(out, body[prev:]...)
}

// AppendQuoted appends s as a JSON string (jsonscan.AppendQuoted).
func AppendQuoted(dst, s []byte) []byte { return jsonscan.AppendQuoted(dst, s) }
