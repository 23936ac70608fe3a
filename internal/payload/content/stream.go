package content

import (
	"bytes"

	"github.com/sluice-gateway/sluice/internal/jsonscan"
)

// Delta finds the answer text of one streamed event (an SSE event as the client receives
// it): an OpenAI chunk's choices[].delta.content or choices[].text, or an Anthropic
// content_block_delta's text. It returns the choice or content-block index and the text's
// span within ev; ok is false for events without text (role, usage, stop, [DONE]).
// An event whose data spans several lines is reported as not ok with multiLine set, so
// the caller can join the lines and look again rather than let text pass unread.
func Delta(ev []byte) (index int, seg Segment, ok, multiLine bool) {
	data, off := dataLine(ev)
	if data == nil {
		return 0, Segment{}, false, false
	}
	if rest := ev[off+len(data):]; bytes.Contains(rest, []byte("\ndata:")) {
		return 0, Segment{}, false, true
	}
	if len(data) == 0 || data[0] != '{' {
		return 0, Segment{}, false, false
	}
	index, seg, ok = deltaIn(data)
	seg.Start += off
	seg.End += off
	return index, seg, ok, false
}

// JoinData returns the data of a multi-line event as one JSON document, and Delta's
// answer on it (spans are within the returned document).
func JoinData(ev []byte) (doc []byte, index int, seg Segment, ok bool) {
	for line := range bytes.Lines(ev) {
		if d, found := bytes.CutPrefix(line, []byte("data:")); found {
			d = bytes.TrimPrefix(d, []byte(" "))
			d = bytes.TrimRight(d, "\r\n")
			if doc != nil {
				doc = append(doc, '\n')
			}
			doc = append(doc, d...)
		}
	}
	if len(doc) == 0 || doc[0] != '{' {
		return doc, 0, Segment{}, false
	}
	index, seg, ok = deltaIn(doc)
	return doc, index, seg, ok
}

// dataLine returns the first data line's value and its offset in ev.
func dataLine(ev []byte) ([]byte, int) {
	i := 0
	for i < len(ev) {
		end := bytes.IndexByte(ev[i:], '\n')
		if end < 0 {
			end = len(ev)
		} else {
			end += i
		}
		line := ev[i:end]
		if v, found := bytes.CutPrefix(line, []byte("data:")); found {
			start := i + 5
			if len(v) > 0 && v[0] == ' ' {
				v, start = v[1:], start+1
			}
			return bytes.TrimSuffix(v, []byte("\r")), start
		}
		i = end + 1
	}
	return nil, 0
}

func deltaIn(data []byte) (index int, seg Segment, ok bool) {
	jsonscan.Object(data, func(m jsonscan.Member) bool {
		v := m.Value(data)
		switch string(m.Key(data)) {
		case "choices": // OpenAI
			jsonscan.Array(v, func(s, e int) bool {
				c := v[s:e]
				jsonscan.Object(c, func(cm jsonscan.Member) bool {
					cv := cm.Value(c)
					switch string(cm.Key(c)) {
					case "index":
						n, _ := jsonscan.Int(cv)
						index = int(n)
					case "text":
						if len(cv) > 0 && cv[0] == '"' {
							seg, ok = Segment{Part: Answer, Start: m.ValueStart + s + cm.ValueStart, End: m.ValueStart + s + cm.ValueEnd}, true
						}
					case "delta":
						jsonscan.Object(cv, func(dm jsonscan.Member) bool {
							if string(dm.Key(cv)) == "content" {
								if dv := dm.Value(cv); len(dv) > 0 && dv[0] == '"' {
									start := m.ValueStart + s + cm.ValueStart + dm.ValueStart
									seg, ok = Segment{Part: Answer, Start: start, End: start + len(dv)}, true
								}
							}
							return true
						})
					}
					return true
				})
				return false // one choice per chunk is what providers send
			})
			return false
		case "index": // Anthropic
			n, _ := jsonscan.Int(v)
			index = int(n)
		case "delta":
			if t, _ := jsonscan.Get(v, "type"); string(t) == `"text_delta"` {
				jsonscan.Object(v, func(dm jsonscan.Member) bool {
					if string(dm.Key(v)) == "text" {
						seg, ok = Segment{Part: Answer, Start: m.ValueStart + dm.ValueStart, End: m.ValueStart + dm.ValueEnd}, true
					}
					return true
				})
			}
		}
		return true
	})
	return index, seg, ok
}
