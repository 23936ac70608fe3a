package injection

import (
	"math"
	"slices"
)

// DefaultThreshold is the score at or above which callers should treat a
// text as an injection or jailbreak attempt.
const DefaultThreshold = 0.5

// Detector scores texts for prompt injection and jailbreak attempts. It is
// immutable and safe for concurrent use.
type Detector struct {
	w     []int8
	scale float64
	bias  float64
}

// Result is the outcome of scoring one text.
type Result struct {
	Score   float64  // in [0,1]; >= DefaultThreshold means "attack"
	Reasons []string // at most 3, strongest first, e.g. "rule:ignore-previous-instructions"
}

// New returns a Detector using the embedded model. It panics only if the
// embedded model file is corrupt.
func New() *Detector {
	m, err := ParseModel(embeddedModel)
	if err != nil {
		panic(err)
	}
	return NewWithModel(m)
}

// NewWithModel returns a Detector using m (for training and evaluation).
func NewWithModel(m *Model) *Detector {
	return &Detector{w: m.Weights, scale: float64(m.Scale), bias: float64(m.Bias)}
}

const (
	maxDepth = 2 // nested hidden payloads decoded at most this deep

	// A decoded payload scores its own logit plus concealBonus: hiding
	// text is itself suspicious, but not enough to flag harmless text.
	concealBonus = 0.5
	// Tag characters spelling text are invisible to a human reviewer; the
	// smuggling alone flags, whatever the hidden text says.
	tagBonus  = 2.5
	tagFloor  = 1.5
	minTagLen = 8 // emoji subdivision flags use up to 7 tag characters

	homoglyphBonus = 1 // two or more mixed-script words
	maxReasons     = 3
)

// Score scores text. Texts of any length are accepted; time grows linearly.
func (d *Detector) Score(text []byte) Result {
	logit, reasons := d.score(text, 0, nil)
	return Result{Score: sigmoid(logit), Reasons: reasons}
}

type reason struct {
	name string
	w    float64
}

// score returns the logit of text and appends its reasons (strongest
// first, at most maxReasons) to out.
func (d *Detector) score(text []byte, depth int, out []string) (float64, []string) {
	st := getScratch()
	defer putScratch(st)
	normalize(text, st, FeatureFlags, defaultVocab)
	ruleLogit := evalRules(st, &st.rules)
	clf := d.bias + d.scale*windowMax(st, d.w)
	logit := clf + ruleLogit

	var cand [maxReasons + 1]reason
	nc := 0
	push := func(name string, w float64) {
		if w <= 0 {
			return
		}
		// Keep the strongest few, in order (insertion into a tiny array).
		if nc < len(cand) {
			cand[nc] = reason{name, w}
			nc++
		} else if w > cand[nc-1].w {
			cand[nc-1] = reason{name, w}
		} else {
			return
		}
		for k := nc - 1; k > 0 && cand[k].w > cand[k-1].w; k-- {
			cand[k], cand[k-1] = cand[k-1], cand[k]
		}
	}
	for id, w := range st.rules.weights {
		push(ruleReasons[id], w)
	}
	push("classifier", clf)
	if st.info.homoglyphs >= 2 {
		logit += homoglyphBonus
		push("obfuscation:homoglyphs", homoglyphBonus)
	}

	// Hidden payloads: score the decoded text and keep the stronger.
	var hiddenReasons []string
	if depth < maxDepth {
		st.hidden, st.payloads = st.hidden[:0], st.payloads[:0]
		if st.ascii {
			findHidden(text, st)
		} else {
			findHidden(st.nfkc, st)
		}
		if len(st.tags) >= minTagLen && looksLikeText(st.tags) {
			addDecoded(st, pkTags, st.tags)
		}
		if len(st.vs) >= minTagLen && looksLikeText(st.vs) {
			addDecoded(st, pkVariation, st.vs)
		}
		if countConcept(st.hits, defaultVocab.rot13) >= 2 {
			addDecoded(st, pkRot13, rot13Bytes(st.norm))
		}
		if countConcept(st.hits, defaultVocab.reversed) >= 2 {
			addDecoded(st, pkReversed, reverseRunes(st.norm))
		}
		for _, p := range st.payloads {
			sub, subReasons := d.score(st.hidden[p.start:p.end], depth+1, nil)
			switch p.kind {
			case pkTags, pkVariation:
				sub = max(sub+tagBonus, tagFloor)
			default:
				sub += concealBonus
			}
			if sub > logit && sub > 0 {
				logit = sub
				hiddenReasons = append(append(hiddenReasons[:0], payloadReasons[p.kind]), subReasons...)
			}
		}
	}

	if len(hiddenReasons) > 0 {
		for _, r := range hiddenReasons {
			if len(out) < maxReasons && !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	for _, c := range cand[:nc] {
		if len(out) < maxReasons && !slices.Contains(out, c.name) {
			out = append(out, c.name)
		}
	}
	return logit, out
}

// addDecoded stores an already decoded payload (tags, rot13...).
func addDecoded(st *scratch, kind payloadKind, b []byte) {
	if len(st.payloads) >= maxPayloads+2 {
		return
	}
	start := len(st.hidden)
	st.hidden = append(st.hidden, b...)
	st.payloads = append(st.payloads, payload{kind: kind, start: int32(start), end: int32(len(st.hidden))})
}

func countConcept(hits []hit, c uint8) int {
	n := 0
	for _, h := range hits {
		n += int(h.mask >> c & 1)
	}
	return n
}

func rot13Bytes(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			c = 'a' + (c-'a'+13)%26
		case c >= 'A' && c <= 'Z':
			c = 'A' + (c-'A'+13)%26
		}
		out[i] = c
	}
	return out
}

// reverseRunes reverses UTF-8 text rune by rune.
func reverseRunes(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := len(b); i > 0; {
		j := i - 1
		for j > 0 && b[j]&0xC0 == 0x80 {
			j--
		}
		out = append(out, b[j:i]...)
		i = j
	}
	return out
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

func sqrtInt(n int) float64 { return math.Sqrt(float64(n)) }
