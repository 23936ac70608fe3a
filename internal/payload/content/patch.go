package content

import (
	"errors"

	"github.com/sluice-gateway/sluice/internal/jsonscan"
)

// ErrNotObject reports a path that runs through a value that is not an object.
var ErrNotObject = errors.New("content: path runs through a non-object value")

type splice struct {
	start, end int
	text       []byte
}

// SetField returns body with the member at path (object keys, outermost first) set to the
// raw JSON value. Missing objects on the way are created; every duplicate of a key on the
// way is changed alike, so no parser downstream can read an old value.
func SetField(body []byte, path []string, value []byte) ([]byte, error) {
	var sp []splice
	if err := setIn(body, 0, len(body), path, value, &sp); err != nil {
		return nil, err
	}
	return apply(body, sp), nil
}

func setIn(body []byte, start, end int, path []string, value []byte, sp *[]splice) error {
	obj := body[start:end]
	found := false
	var err error
	last, members := 0, 0
	scanErr := jsonscan.Object(obj, func(m jsonscan.Member) bool {
		members++
		last = m.ValueEnd
		if string(m.Key(obj)) != path[0] {
			return true
		}
		found = true
		vs, ve := start+m.ValueStart, start+m.ValueEnd
		if len(path) == 1 {
			*sp = append(*sp, splice{vs, ve, value})
			return true
		}
		if body[vs] != '{' {
			err = ErrNotObject
			return false
		}
		err = setIn(body, vs, ve, path[1:], value, sp)
		return err == nil
	})
	if scanErr != nil {
		return scanErr
	}
	if err != nil || found {
		return err
	}
	// insert before the closing brace
	closing := start + last
	if members == 0 {
		closing = start + 1
	}
	for closing < end && body[closing] != '}' {
		closing++
	}
	var text []byte
	if members > 0 {
		text = append(text, ',')
	}
	text = AppendQuoted(text, []byte(path[0]))
	text = append(text, ':')
	for _, k := range path[1:] {
		text = append(text, '{')
		text = AppendQuoted(text, []byte(k))
		text = append(text, ':')
	}
	text = append(text, value...)
	for range path[1:] {
		text = append(text, '}')
	}
	*sp = append(*sp, splice{closing, closing, text})
	return nil
}

// RemoveField returns body without the member at path (every duplicate); a missing
// member is no change.
func RemoveField(body []byte, path []string) ([]byte, error) {
	var sp []splice
	if err := removeIn(body, 0, len(body), path, &sp); err != nil {
		return nil, err
	}
	return apply(body, sp), nil
}

func removeIn(body []byte, start, end int, path []string, sp *[]splice) error {
	obj := body[start:end]
	var err error
	var kept [][2]int // spans of members kept, relative to obj
	removed := false
	scanErr := jsonscan.Object(obj, func(m jsonscan.Member) bool {
		if string(m.Key(obj)) == path[0] {
			if len(path) == 1 {
				removed = true
				return true
			}
			if obj[m.ValueStart] == '{' {
				err = removeIn(body, start+m.ValueStart, start+m.ValueEnd, path[1:], sp)
			}
		}
		kept = append(kept, [2]int{m.KeyStart, m.ValueEnd})
		return err == nil
	})
	if scanErr != nil {
		return scanErr
	}
	if err != nil || !removed {
		return err
	}
	// Rebuild the object from the members kept: simpler than mending commas, and
	// nested splices never fall inside a rebuilt object (they are only made for paths
	// that go deeper than this one).
	text := []byte{'{'}
	for i, k := range kept {
		if i > 0 {
			text = append(text, ',')
		}
		text = append(text, obj[k[0]:k[1]]...)
	}
	text = append(text, '}')
	*sp = append(*sp, splice{start, end, text})
	return nil
}

// apply performs splices on a copy of body, in position order.
func apply(body []byte, sp []splice) []byte {
	if len(sp) == 0 {
		return body
	}
	for i := 1; i < len(sp); i++ {
		for j := i; j > 0 && sp[j].start < sp[j-1].start; j-- {
			sp[j], sp[j-1] = sp[j-1], sp[j]
		}
	}
	out := make([]byte, 0, len(body)+64)
	prev := 0
	for _, s := range sp {
		if s.start < prev {
			continue // overlapping (a duplicate inside a removed member)
		}
		out = append(out, body[prev:s.start]...)
		out = append(out, s.text...)
		prev = s.end
	}
	return append(out, body[prev:]...)
}
