package injection

import (
	"bytes"
	"fmt"
	"math/bits"
	"strings"
)

// A rule is a sequence of concepts (vocab.go) that must occur in order in
// the normalised text, with at most gap words between consecutive steps
// (CJK text counts one word per character). Rules carry a weight in logit
// units: about 4 is enough to flag a text on its own, 1-2 only tips a
// borderline classifier score. Only the strongest match per rule name
// counts, and the rule logit is capped (maxRuleLogit).
type ruleDef struct {
	name   string
	weight float64
	seq    string // steps separated by spaces; alternatives joined by '|'
	gap    int    // max words between steps; 0 means 5
	unless string // concepts that cancel a match found near it
}

var ruleDefs = []ruleDef{
	// "Ignore all previous instructions" and its translations; the verb
	// comes first in most languages, last in Japanese, Korean, Hindi and
	// Turkish (IGNORE_POST); Romance languages put "previous" after the
	// noun.
	{name: "ignore-previous-instructions", weight: 4.5, seq: "IGNORE PREV|ALL|YOUR INSTR"},
	{name: "ignore-previous-instructions", weight: 4.5, seq: "IGNORE INSTR PREV", gap: 3},
	{name: "ignore-previous-instructions", weight: 3, seq: "IGNORE INSTR", gap: 5},
	{name: "ignore-previous-instructions", weight: 4.5, seq: "PREV|ALL|YOUR INSTR IGNORE_POST", gap: 6},
	{name: "ignore-previous-instructions", weight: 3, seq: "INSTR IGNORE_POST", gap: 5},
	{name: "ignore-previous-instructions", weight: 3, seq: "IGNORE ABOVE", gap: 3},
	{name: "ignore-previous-instructions", weight: 3, seq: "ABOVE IGNORE_POST", gap: 3},
	{name: "ignore-previous-instructions", weight: 4, seq: "IGNORE EVERYTHING PREV|ABOVE", gap: 5},
	{name: "ignore-previous-instructions", weight: 2, seq: "IGNORE EVERYTHING", gap: 3},
	{name: "ignore-previous-instructions", weight: 3, seq: "PREV|ABOVE EVERYTHING IGNORE_POST", gap: 3},
	{name: "ignore-previous-instructions", weight: 2, seq: "EVERYTHING IGNORE_POST", gap: 3},
	{name: "ignore-previous-instructions", weight: 1.5, seq: "IGNORE_WEAK PREV|ALL|YOUR INSTR", gap: 4},
	{name: "ignore-previous-instructions", weight: 2.5, seq: "PREV|ALL|YOUR INSTR VOID", gap: 5},
	{name: "ignore-previous-instructions", weight: 2.5, seq: "INSTR PREV VOID", gap: 4},
	{name: "ignore-previous-instructions", weight: 2.5, seq: "IGNORE PREV|YOUR|ALL TASK", gap: 3},
	{name: "ignore-previous-instructions", weight: 1.5, seq: "IGNORE TASK", gap: 3},
	{name: "ignore-previous-instructions", weight: 2, seq: "PREV|YOUR|ALL TASK IGNORE_POST", gap: 4},
	{name: "instructions-changed", weight: 2, seq: "PREV|YOUR|ALL INSTR CHANGED", gap: 5},
	{name: "instructions-changed", weight: 1.5, seq: "INSTR CHANGED", gap: 3},
	{name: "new-instructions", weight: 1, seq: "NEW INSTR|TASK", gap: 2, unless: "RULES"},
	{name: "new-instructions", weight: 1, seq: "INSTR|TASK NEW", gap: 2, unless: "RULES"},

	// Persona switches and jailbreak personas.
	{name: "you-are-now", weight: 1.5, seq: "YOUARENOW", unless: "YOUARENOW_NEG"},
	{name: "you-are-now", weight: 0.5, seq: "FROMNOW"},
	{name: "developer-mode", weight: 1, seq: "DEVMODE"},
	{name: "developer-mode", weight: 2.5, seq: "YOUARENOW|FROMNOW|PRETEND|DISABLE DEVMODE", gap: 8},
	{name: "dan-persona", weight: 3, seq: "DAN"},
	{name: "no-restrictions", weight: 1, seq: "NORESTRICT"},
	{name: "no-restrictions", weight: 3, seq: "PRETEND|YOUARENOW|FROMNOW NORESTRICT", gap: 16},
	{name: "no-restrictions", weight: 3, seq: "NORESTRICT PRETEND|YOUARENOW", gap: 6},
	{name: "safety-bypass", weight: 1.5, seq: "DISABLE|IGNORE SAFETY", gap: 4},
	{name: "safety-bypass", weight: 2.5, seq: "DISABLE|IGNORE|IGNORE_WEAK YOUR|ALL SAFETY", gap: 4},
	{name: "refusal-suppression", weight: 1.5, seq: "REFUSAL"},
	{name: "stay-in-character", weight: 1, seq: "STAYCHAR"},
	{name: "claims-authority", weight: 2, seq: "IAMYOUR AUTHORITY", gap: 3},

	// Extraction of the system prompt or a secret.
	{name: "system-prompt-extraction", weight: 3.5, seq: "REVEAL SYSPROMPT", gap: 5},
	{name: "system-prompt-extraction", weight: 3.5, seq: "SYSPROMPT REVEAL_POST", gap: 5},
	{name: "system-prompt-extraction", weight: 3, seq: "REVEAL PREV INSTR", gap: 4},
	{name: "system-prompt-extraction", weight: 3, seq: "REVEAL INSTR PREV", gap: 3},
	{name: "system-prompt-extraction", weight: 2, seq: "REVEAL YOUR|ALL INSTR", gap: 3},
	{name: "system-prompt-extraction", weight: 3, seq: "PREV INSTR REVEAL_POST", gap: 5},
	{name: "system-prompt-extraction", weight: 2, seq: "YOUR|ALL INSTR REVEAL_POST", gap: 4},
	{name: "system-prompt-extraction", weight: 2, seq: "WHAT PREV|YOUR INSTR|SYSPROMPT", gap: 3},
	{name: "secret-extraction", weight: 2, seq: "REVEAL|WHAT SECRET", gap: 4, unless: "SECRET_NEG"},
	{name: "secret-extraction", weight: 2, seq: "SECRET REVEAL_POST|WHAT", gap: 6, unless: "SECRET_NEG"},
	{name: "secret-extraction", weight: 1.5, seq: "SAY SECRET", gap: 3, unless: "SECRET_NEG"},
	{name: "access-granted", weight: 2, seq: "ACCESSGRANTED"},
	{name: "access-granted", weight: 3, seq: "SAY ACCESSGRANTED", gap: 6},

	{name: "context-extraction", weight: 2, seq: "BEFORE_MSG"},
	{name: "addresses-the-model", weight: 2, seq: "AI_ADDRESS"},

	{name: "fake-delimiter", weight: 2, seq: "DELIM"},
	{name: "output-hijack", weight: 2.5, seq: "NOANSWER SAY", gap: 8},
	{name: "encoded-instructions", weight: 1, seq: "DECODE ENCODING FOLLOW", gap: 10},
}

// Rule names, also used for special detectors outside the table.
const (
	reasonChatTemplate = "chat-template-token"
	reasonFakeTurn     = "fake-role-turn"
	reasonFlood        = "repeated-token-flood"
)

// Weights of the special detectors.
const (
	weightChatTemplate = 3.5
	weightFakeSystem   = 2
	weightFakeOther    = 0.7
	weightFlood        = 2.5
	floodMin           = 16 // chunks dropped as repetition before it counts
	maxRuleLogit       = 8.0
)

type rule struct {
	name   int // index into ruleNames
	weight float64
	steps  []uint64 // concept bit masks
	gap    int32
	unless uint64
}

// ruleResult is the outcome of the rule layer for one text.
type ruleResult struct {
	weights []float64 // per rule name, strongest match (0 if none)
}

var (
	ruleNames   []string
	ruleReasons []string // "rule:" + name
	rules       []rule
	rulesFirst  [64][]int // rules whose first step accepts each concept
	firstMask   uint64    // concepts that start some rule
	nameIndex   = map[string]int{}
)

func nameID(name string) int {
	if id, ok := nameIndex[name]; ok {
		return id
	}
	id := len(ruleNames)
	nameIndex[name] = id
	ruleNames = append(ruleNames, name)
	ruleReasons = append(ruleReasons, "rule:"+name)
	return id
}

var (
	idChatTemplate = nameID(reasonChatTemplate)
	idFakeTurn     = nameID(reasonFakeTurn)
	idFlood        = nameID(reasonFlood)
)

func compileRules(concepts map[string]int) {
	mask := func(spec string) uint64 {
		var m uint64
		for _, name := range strings.Split(spec, "|") {
			id, ok := concepts[name]
			if !ok {
				panic(fmt.Sprintf("injection: rule uses unknown concept %q", name))
			}
			m |= 1 << id
		}
		return m
	}
	for _, d := range ruleDefs {
		r := rule{name: nameID(d.name), weight: d.weight, gap: int32(d.gap)}
		if r.gap == 0 {
			r.gap = 5
		}
		for _, step := range strings.Fields(d.seq) {
			r.steps = append(r.steps, mask(step))
		}
		if d.unless != "" {
			r.unless = mask(d.unless)
		}
		idx := len(rules)
		rules = append(rules, r)
		for c := 0; c < 64; c++ {
			if r.steps[0]&(1<<c) != 0 {
				rulesFirst[c] = append(rulesFirst[c], idx)
			}
		}
		firstMask |= r.steps[0]
	}
}

// hit is one occurrence of a concept in the normalised text.
type hit struct {
	mask       uint64 // concepts (one bit each)
	t0, t1     int32  // first and last token
	start, end int32  // bytes of the normalised text
}

// evalRules resolves vocabulary hits for st.toks, runs the rule table and
// the special detectors, fills rr and returns the rule logit.
func evalRules(st *scratch, rr *ruleResult) float64 {
	v := defaultVocab
	if cap(rr.weights) < len(ruleNames) {
		rr.weights = make([]float64, len(ruleNames))
	}
	rr.weights = rr.weights[:len(ruleNames)]
	clear(rr.weights)

	st.hits = v.resolve(st.norm, st.toks, st.lookups, st.hitToks, st.hits[:0])
	hits := st.hits
	for i := range hits {
		for m := hits[i].mask & firstMask; m != 0; m &= m - 1 {
			for _, ri := range rulesFirst[bits.TrailingZeros64(m)] {
				r := &rules[ri]
				if r.weight <= rr.weights[r.name] {
					continue
				}
				if end, ok := matchSteps(hits, r, 1, i+1, hits[i].t1); ok {
					if r.unless != 0 && nearby(hits, r.unless, hits[i].t0-r.gap, end+r.gap) {
						continue
					}
					rr.weights[r.name] = r.weight
				}
			}
		}
	}

	text := st.norm
	if w := specialTokens(text); w > 0 {
		rr.weights[idChatTemplate] = w
	}
	if w := fakeTurns(text, st.lines); w > 0 {
		rr.weights[idFakeTurn] = w
	}
	if st.info.flood >= floodMin {
		rr.weights[idFlood] = weightFlood
	}
	var sum float64
	for _, w := range rr.weights {
		sum += w
	}
	return min(sum, maxRuleLogit)
}

// matchSteps matches r.steps[k:] against hits[j:], each step starting
// after the token prevLast with at most r.gap tokens in between; it returns
// the last token of the match.
func matchSteps(hits []hit, r *rule, k, j int, prevLast int32) (int32, bool) {
	if k == len(r.steps) {
		return prevLast, true
	}
	for ; j < len(hits) && hits[j].t0 <= prevLast+1+r.gap; j++ {
		h := &hits[j]
		if h.t0 <= prevLast || r.steps[k]&h.mask == 0 {
			continue
		}
		if end, ok := matchSteps(hits, r, k+1, j+1, h.t1); ok {
			return end, true
		}
	}
	return 0, false
}

// nearby reports whether a hit of one of the concepts in mask starts at a
// token in [lo, hi].
func nearby(hits []hit, mask uint64, lo, hi int32) bool {
	for _, h := range hits {
		if h.t0 >= lo && h.t0 <= hi && mask&h.mask != 0 {
			return true
		}
	}
	return false
}

// chatTemplateTokens are the special tokens of common chat templates; in
// user text they try to open a fake system or assistant turn.
var chatTemplateTokens = [][]byte{
	[]byte("<|im_start|>"), []byte("<|im_end|>"), []byte("<|im_sep|>"), []byte("<|system|>"),
	[]byte("<|user|>"), []byte("<|assistant|>"), []byte("<|endoftext|>"), []byte("<|eot_id|>"),
	[]byte("<|start_header_id|>"), []byte("<|end_header_id|>"), []byte("<|begin_of_text|>"),
	[]byte("<|end|>"), []byte("<|start|>"), []byte("<|channel|>"), []byte("<|message|>"),
	[]byte("<start_of_turn>"), []byte("<end_of_turn>"), []byte("<<sys>>"), []byte("<</sys>>"),
	[]byte("[inst]"), []byte("[/inst]"), []byte("<|endofprompt|>"),
}

func specialTokens(text []byte) float64 {
	for _, open := range []byte{'<', '['} {
		for i := 0; ; {
			j := bytes.IndexByte(text[i:], open)
			if j < 0 {
				break
			}
			i += j
			for _, t := range chatTemplateTokens {
				if t[0] == open && bytes.HasPrefix(text[i:], t) {
					return weightChatTemplate
				}
			}
			i++
		}
	}
	return 0
}

// fakeTurns looks for lines that open a conversation turn ("System:",
// "### System", "[system]", "<system>"): a user message that contains one
// tries to speak with the system's voice. lines are the starts of the
// lines after the first (normalisation turned the line breaks into
// spaces).
func fakeTurns(text []byte, lines []int32) float64 {
	best := turnWeight(lineAt(text, 0, lines, -1))
	for k, start := range lines {
		if best >= weightFakeSystem {
			break
		}
		best = max(best, turnWeight(lineAt(text, int(start), lines, k)))
	}
	return best
}

// lineAt returns the line starting at start (line k of lines, -1 for the
// first), up to the next line start.
func lineAt(text []byte, start int, lines []int32, k int) []byte {
	end := len(text)
	if k+1 < len(lines) {
		end = int(lines[k+1]) - 1
	}
	if start > end {
		return nil
	}
	return text[start:end]
}

func turnWeight(line []byte) float64 {
	k := 0
	bracket := false
	for k < len(line) && strings.IndexByte(" #*>-|[<(=", line[k]) >= 0 {
		if line[k] == '[' || line[k] == '<' || line[k] == '(' || line[k] == '#' {
			bracket = true
		}
		k++
	}
	rest := line[k:]
	for _, r := range []struct {
		role string
		w    float64
	}{
		{"system", weightFakeSystem}, {"developer", weightFakeSystem}, {"admin", weightFakeOther},
		{"assistant", weightFakeOther}, {"human", weightFakeOther}, {"instruction", weightFakeOther},
		{"response", weightFakeOther},
	} {
		if !bytes.HasPrefix(rest, []byte(r.role)) {
			continue
		}
		after := rest[len(r.role):]
		if len(after) > 0 && after[0] == 's' && r.role != "system" {
			after = after[1:] // "instructions"
		}
		switch {
		case len(after) > 0 && (after[0] == ':' || after[0] == ']' || after[0] == '>' || after[0] == ')'):
			return r.w
		case bracket && len(bytes.TrimSpace(after)) == 0:
			return r.w // "### System" on its own line
		case bytes.HasPrefix(after, []byte(" message:")), bytes.HasPrefix(after, []byte(" prompt:")):
			return r.w
		}
	}
	return 0
}
