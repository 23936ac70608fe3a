// Command train-injection trains the classifier of the prompt-injection
// detector (internal/payload/injection) and writes its weights.
//
//	go run ./tools/train-injection [--data ../shared/evaldata] [--out internal/payload/injection/model.bin]
//	go run ./tools/train-injection --cv --fold 0..4 [--sections] [-v]   # tuning: never look at held-out rows
//
// Training data:
//
//   - the public evaluation sets (see internal/payload/evaldata), only the
//     rows evaldata.Heldout leaves for training; XSTest's unsafe prompts are
//     left out entirely (harmful requests, not injections: neither label
//     fits);
//   - the examples in corpus/ (attack_*.txt are attacks, benign_*.txt are
//     not), written for this project: attacks in eighteen languages and
//     everyday prompts of all lengths, including security questions and
//     role-play requests that are not attacks;
//   - synthetic documents built from those training rows: several benign
//     texts concatenated (long benign documents) and benign documents with
//     a short attack buried inside (indirect injection).
//
// Model: logistic regression over the detector's hashed features, with the
// detector's rule logit as a fixed offset (the classifier learns what the
// rules miss) and a text's score taken as its highest window, as in the
// detector. Plain SGD with L2 regularisation, weights averaged over the
// last epochs, then quantised to int8. The classes are balanced, the benign
// one weighted a little more (--benign-weight: most real traffic is benign)
// and each authored example counts three data-set rows
// (--authored-weight: they carry the languages and everyday wording the
// data sets lack). The defaults are the ones the committed model was
// trained with, chosen by cross-validation on the training rows (--cv with
// --fold 0-4, --sections for per-language figures), not on the held-out
// rows. Everything is
// deterministic (fixed seeds, epochs and order), so the same inputs give
// the same bytes; training takes a few seconds.
//
// After training it prints training statistics and then the figures on the
// held-out rows, per file and overall, at the detector's DefaultThreshold.
// With --cv it also holds back a validation fold of the training rows
// (for tuning without looking at the held-out rows).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gateway/sluice/internal/payload/evaldata"
	"github.com/sluice-gateway/sluice/internal/payload/injection"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("train-injection: ")
	dataDir := flag.String("data", "", "evaluation data folder (default ../shared/evaldata next to the module)")
	out := flag.String("out", "", "model file to write (default internal/payload/injection/model.bin in the module)")
	corpusDir := flag.String("corpus", "", "authored examples (default tools/train-injection/corpus in the module)")
	cv := flag.Bool("cv", false, "hold back a validation fold of the training rows and report it")
	fold := flag.Int("fold", 0, "with --cv, which fifth of the training rows to hold back (0-4)")
	sections := flag.Bool("sections", false, "report authored examples per section (a one-word comment line such as \"# German\" starts one)")
	epochs := flag.Int("epochs", 16, "training epochs")
	lambda := flag.Float64("l2", 1e-4, "L2 regularisation per example")
	lr := flag.Float64("lr", 1.0, "initial learning rate")
	benignWeight := flag.Float64("benign-weight", 1.25, "weight of the benign class relative to the attacks")
	authoredWeight := flag.Float64("authored-weight", 3, "weight of an authored example relative to a data-set row")
	verbose := flag.Bool("v", false, "print misclassified held-out rows")
	flag.Parse()

	root, err := moduleRoot()
	if err != nil {
		log.Fatal(err)
	}
	if *dataDir == "" {
		*dataDir = filepath.Join(root, "..", "shared", "evaldata")
	}
	if *out == "" {
		*out = filepath.Join(root, "internal", "payload", "injection", "model.bin")
	}
	if *corpusDir == "" {
		*corpusDir = filepath.Join(root, "tools", "train-injection", "corpus")
	}

	start := time.Now()
	sets, err := evaldata.LoadInjection(*dataDir)
	if errors.Is(err, evaldata.ErrNoData) {
		log.Fatalf("%v\n(the evaluation data is needed for training; pass --data)", err)
	}
	if err != nil {
		log.Fatal(err)
	}
	if *fold < 0 || *fold > 4 {
		log.Fatal("--fold must be 0-4")
	}
	corpus, err := loadCorpus(*corpusDir, *sections)
	if err != nil {
		log.Fatal(err)
	}

	cfg := config{epochs: *epochs, lambda: *lambda, lr: *lr, cv: *cv, fold: uint64(*fold), benignWeight: *benignWeight, authoredWeight: *authoredWeight}
	tr := buildTraining(sets, corpus, cfg)
	fmt.Printf("training examples: %d attack, %d benign (%d from data sets, %d authored, %d synthetic); validation: %d\n",
		tr.pos, tr.neg, tr.fromData, tr.authored, tr.synthetic, len(tr.valid))

	m := train(tr.examples, cfg)
	model := quantise(m)
	data, err := model.MarshalBinary()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("wrote %s (%d bytes, %d non-zero weights, scale %.5f, bias %.3f) in %s\n",
		*out, len(data), nonZero(model.Weights), model.Scale, model.Bias, time.Since(start).Round(time.Millisecond))

	d := injection.NewWithModel(model)
	fmt.Println("\ntraining rows (in-sample):")
	report(d, tr.trainRows, false)
	if *cv {
		fmt.Println("\nvalidation fold (training rows held back by --cv):")
		report(d, tr.valid, *verbose)
	}
	fmt.Printf("\nheld-out rows (evaldata.Heldout: FNV-64a of the text %% 5 == 0, never trained on), threshold %.2f:\n", injection.DefaultThreshold)
	report(d, tr.heldout, *verbose && !*cv)
}

type config struct {
	epochs         int
	lambda         float64
	lr             float64
	cv             bool
	fold           uint64
	benignWeight   float64
	authoredWeight float64
}

// row is a labelled text for evaluation, grouped by set.
type row struct {
	set           string
	malicious     bool
	informational bool
	text          string
}

// example is a training text turned into the detector's windows.
type example struct {
	windows [][]uint32
	offset  float64 // rule logit
	label   float64
	weight  float64
}

type training struct {
	examples                                []example
	trainRows, valid, heldout               []row
	pos, neg, fromData, authored, synthetic int
}

// validFold picks the --cv validation rows: another fifth of the training
// rows, by a differently salted hash (--fold picks which fifth, so five
// runs validate on every training row once).
func validFold(text string, fold uint64) bool {
	h := fnv.New64a()
	io.WriteString(h, "validation:")
	io.WriteString(h, text)
	return h.Sum64()%5 == fold
}

func buildTraining(sets []evaldata.Set, corpus []corpusFile, cfg config) *training {
	tr := &training{}
	var benign []string // training texts, for synthetic documents
	var shortAttacks []string
	type labelled struct {
		text      string
		malicious bool
		authored  bool
	}
	var texts []labelled
	for _, s := range sets {
		for _, t := range s.Texts {
			r := row{set: s.Name, malicious: s.Malicious, informational: s.Informational, text: t}
			switch {
			case evaldata.Heldout(t):
				tr.heldout = append(tr.heldout, r)
			case s.Informational:
				// Not trained on (see the package comment).
			case cfg.cv && validFold(t, cfg.fold):
				tr.valid = append(tr.valid, r)
			default:
				tr.trainRows = append(tr.trainRows, r)
				texts = append(texts, labelled{t, s.Malicious, false})
				tr.fromData++
			}
		}
	}
	for _, f := range corpus {
		for i, t := range f.texts {
			set := "corpus/" + f.name
			if f.sections != nil && f.sections[i] != "" {
				set += "#" + f.sections[i]
			}
			r := row{set: set, malicious: f.malicious, text: t}
			if cfg.cv && validFold(t, cfg.fold) {
				tr.valid = append(tr.valid, r)
				continue
			}
			tr.trainRows = append(tr.trainRows, r)
			texts = append(texts, labelled{t, f.malicious, true})
			tr.authored++
		}
	}
	for _, t := range texts {
		if t.malicious {
			if len(t.text) <= 300 {
				shortAttacks = append(shortAttacks, t.text)
			}
		} else {
			benign = append(benign, t.text)
		}
	}

	// Synthetic documents (training rows only).
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	const nLong, nBuried = 800, 800
	for range nLong {
		k := 3 + rng.IntN(8)
		parts := make([]string, k)
		for i := range parts {
			parts[i] = pick(benign)
		}
		texts = append(texts, labelled{strings.Join(parts, "\n\n"), false, false})
		tr.synthetic++
	}
	for range nBuried {
		k := 1 + rng.IntN(6)
		parts := make([]string, k)
		for i := range parts {
			parts[i] = pick(benign)
		}
		at := rng.IntN(k + 1)
		parts = slices.Insert(parts, at, pick(shortAttacks))
		sep := []string{"\n\n", " ", "\n"}[rng.IntN(3)]
		texts = append(texts, labelled{strings.Join(parts, sep), true, false})
		tr.synthetic++
	}

	// Features, in parallel but stored by index (deterministic).
	tr.examples = make([]example, len(texts))
	var wg sync.WaitGroup
	workers := 2
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(texts); i += workers {
				win, off := injection.Windows([]byte(texts[i].text))
				label := 0.0
				if texts[i].malicious {
					label = 1
				}
				wt := 1.0
				if texts[i].authored {
					wt = cfg.authoredWeight
				}
				tr.examples[i] = example{windows: win, offset: off, label: label, weight: wt}
			}
		}()
	}
	wg.Wait()
	for _, e := range tr.examples {
		if e.label == 1 {
			tr.pos++
		} else {
			tr.neg++
		}
	}
	// Balance the classes (each carries half the total weight, times
	// --benign-weight for the benign one).
	for i := range tr.examples {
		e := &tr.examples[i]
		if e.label == 1 {
			e.weight *= float64(len(tr.examples)) / (2 * float64(tr.pos))
		} else {
			e.weight *= cfg.benignWeight * float64(len(tr.examples)) / (2 * float64(tr.neg))
		}
	}
	return tr
}

// floatModel is the classifier before quantisation.
type floatModel struct {
	w    []float64
	bias float64
}

// windowScore is the classifier margin of one window: the sum of its
// features' weights over the square root of their number.
func windowScore(w []float64, win []uint32) float64 {
	if len(win) == 0 {
		return 0
	}
	var s float64
	for _, f := range win {
		s += w[f]
	}
	return s / math.Sqrt(float64(len(win)))
}

// train fits the model by SGD on the logistic loss of offset + bias + the
// best window's score (multiple-instance learning: only the window that
// decides the text's score gets the gradient). The learning rate decays
// as 1/sqrt(epoch); weights are averaged over the second half of training.
func train(examples []example, cfg config) floatModel {
	const buckets = 1 << injection.FeatureBits
	w := make([]float64, buckets)
	avg := make([]float64, buckets)
	var bias, avgBias float64
	avgN := 0
	order := make([]int, len(examples))
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(3, 4))
	// Lazy L2: each weight decays by (1 - lr*lambda) per step; applied on
	// touch using the step counter.
	last := make([]int32, buckets)
	decay := make([]float64, 0, len(examples)*cfg.epochs+1)
	decay = append(decay, 1) // decay[t] = prod_{s<t} (1 - lr_s*lambda)
	step := int32(0)
	catchUp := func(f uint32) {
		if last[f] != step {
			w[f] *= decay[step] / decay[last[f]]
			last[f] = step
		}
	}
	for epoch := range cfg.epochs {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		lr := cfg.lr / math.Sqrt(float64(epoch+1))
		var loss float64
		for _, i := range order {
			e := &examples[i]
			best, bestScore := 0, math.Inf(-1)
			for k, win := range e.windows {
				for _, f := range win {
					catchUp(f)
				}
				if s := windowScore(w, win); s > bestScore {
					best, bestScore = k, s
				}
			}
			z := e.offset + bias + bestScore
			p := 1 / (1 + math.Exp(-z))
			loss += e.weight * logLoss(p, e.label)
			g := e.weight * (p - e.label)
			win := e.windows[best]
			if len(win) > 0 {
				x := 1 / math.Sqrt(float64(len(win)))
				for _, f := range win {
					w[f] -= lr * g * x
				}
			}
			bias -= lr * g
			step++
			decay = append(decay, decay[len(decay)-1]*(1-lr*cfg.lambda))
		}
		if epoch >= cfg.epochs/2 {
			for f := range w {
				catchUp(uint32(f))
				avg[f] += w[f]
			}
			avgBias += bias
			avgN++
		}
		fmt.Printf("epoch %2d: loss %.4f\n", epoch+1, loss/float64(len(examples)))
	}
	for f := range avg {
		avg[f] /= float64(avgN)
	}
	return floatModel{w: avg, bias: avgBias / float64(avgN)}
}

func logLoss(p, y float64) float64 {
	const eps = 1e-12
	if y == 1 {
		return -math.Log(p + eps)
	}
	return -math.Log(1 - p + eps)
}

// quantise maps the weights to int8 with one scale (the largest weight
// becomes ±127).
func quantise(m floatModel) *injection.Model {
	var maxAbs float64
	for _, v := range m.w {
		maxAbs = max(maxAbs, math.Abs(v))
	}
	scale := maxAbs / 127
	if scale == 0 {
		scale = 1
	}
	q := make([]int8, len(m.w))
	for i, v := range m.w {
		q[i] = int8(max(-127, min(127, math.Round(v/scale))))
	}
	return &injection.Model{Flags: injection.FeatureFlags, Scale: float32(scale), Bias: float32(m.bias), Weights: q}
}

func nonZero(w []int8) int {
	n := 0
	for _, v := range w {
		if v != 0 {
			n++
		}
	}
	return n
}

// report prints detection figures per set and overall.
func report(d *injection.Detector, rows []row, verbose bool) {
	type stat struct {
		n, flagged    int
		malicious     bool
		informational bool
	}
	stats := map[string]*stat{}
	var scored, scoredData []scoredRow
	var names []string
	for _, r := range rows {
		s := stats[r.set]
		if s == nil {
			s = &stat{malicious: r.malicious, informational: r.informational}
			stats[r.set] = s
			names = append(names, r.set)
		}
		s.n++
		res := d.Score([]byte(r.text))
		if !r.informational {
			scored = append(scored, scoredRow{res.Score, r.malicious})
			if !strings.HasPrefix(r.set, "corpus/") {
				scoredData = append(scoredData, scoredRow{res.Score, r.malicious})
			}
		}
		hit := res.Score >= injection.DefaultThreshold
		if hit {
			s.flagged++
		}
		if verbose && hit != r.malicious && !r.informational {
			t := r.text
			if len(t) > 300 {
				t = t[:300] + "…"
			}
			fmt.Printf("   %s %.2f %v [%s] %q\n", map[bool]string{true: "MISS", false: "FP  "}[r.malicious], res.Score, res.Reasons, r.set, t)
		}
	}
	sort.Strings(names)
	defer func() {
		fmt.Printf("  %-46s %.4f (threshold-free ranking quality)\n", "AUC", auc(scored))
		if len(scoredData) < len(scored) {
			fmt.Printf("  %-46s %.4f\n", "AUC (data-set rows only)", auc(scoredData))
		}
		fmt.Printf("  %-46s", "recall / false positives at threshold")
		for _, th := range []float64{0.3, 0.4, 0.5, 0.6, 0.7} {
			var p, tp, n, fp int
			for _, r := range scored {
				if r.malicious {
					p++
					if r.score >= th {
						tp++
					}
				} else {
					n++
					if r.score >= th {
						fp++
					}
				}
			}
			fmt.Printf("  %.1f: %.1f%%/%.1f%%", th, pct(tp, p), pct(fp, n))
		}
		fmt.Println()
	}()
	var mal, malHit, ben, benHit int
	for _, name := range names {
		s := stats[name]
		switch {
		case s.informational:
			fmt.Printf("  %-46s %4d rows  flagged %5.1f%% (informational, not counted)\n", name, s.n, pct(s.flagged, s.n))
		case s.malicious:
			fmt.Printf("  %-46s %4d rows  recall %5.1f%%\n", name, s.n, pct(s.flagged, s.n))
			mal += s.n
			malHit += s.flagged
		default:
			fmt.Printf("  %-46s %4d rows  false positives %5.1f%% (%d)\n", name, s.n, pct(s.flagged, s.n), s.flagged)
			ben += s.n
			benHit += s.flagged
		}
	}
	fmt.Printf("  %-46s %4d rows  recall %5.1f%%\n", "ALL MALICIOUS", mal, pct(malHit, mal))
	fmt.Printf("  %-46s %4d rows  false positives %5.1f%% (%d)\n", "ALL BENIGN", ben, pct(benHit, ben), benHit)
}

type scoredRow struct {
	score     float64
	malicious bool
}

// auc is the probability that a random attack scores above a random
// benign row (ties count half).
func auc(rows []scoredRow) float64 {
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].score < rows[j].score })
	var pos, neg, sum float64
	for i := 0; i < len(rows); {
		j := i
		var p, n float64
		for j < len(rows) && rows[j].score == rows[i].score {
			if rows[j].malicious {
				p++
			} else {
				n++
			}
			j++
		}
		sum += p * (neg + n/2)
		pos += p
		neg += n
		i = j
	}
	if pos == 0 || neg == 0 {
		return 0
	}
	return sum / (pos * neg)
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// corpusFile is one authored file: attack_*.txt or benign_*.txt, one
// example per line; '#' starts a comment line; "\n" in a line is a line
// break inside the example.
type corpusFile struct {
	name      string
	malicious bool
	texts     []string
	sections  []string // per text, with --sections
}

func loadCorpus(dir string, sections bool) ([]corpusFile, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no corpus files in %s", dir)
	}
	sort.Strings(paths)
	var files []corpusFile
	for _, p := range paths {
		base := filepath.Base(p)
		var f corpusFile
		switch {
		case strings.HasPrefix(base, "attack_"):
			f.malicious = true
		case strings.HasPrefix(base, "benign_"):
		default:
			return nil, fmt.Errorf("%s: corpus files are attack_*.txt or benign_*.txt", p)
		}
		f.name = base
		fh, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		section := ""
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if c, ok := strings.CutPrefix(line, "#"); ok {
				if c = strings.TrimSpace(c); c != "" && !strings.ContainsAny(c, " ,.:") {
					section = c
				}
				continue
			}
			if line == "" {
				continue
			}
			f.texts = append(f.texts, strings.ReplaceAll(line, `\n`, "\n"))
			if sections {
				f.sections = append(f.sections, section)
			}
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		files = append(files, f)
	}
	return files, nil
}

// moduleRoot walks up from the working directory to the go.mod.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("not inside the module (no go.mod found)")
		}
	}
}
