package usage

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Group is the sum of the records sharing one value of the grouping field.
type Group struct {
	Key               string  `json:"key"`
	Requests          int64   `json:"requests"`
	InputTokens       int64   `json:"input_tokens"`
	OutputTokens      int64   `json:"output_tokens"`
	CachedInputTokens int64   `json:"cached_input_tokens"`
	CostUSD           float64 `json:"cost_usd"`
	Errors            int64   `json:"errors"` // status >= 400
}

// Groupings are the fields a summary can group by.
var Groupings = []string{"team", "model", "subject", "backend", "route"}

// groupColumn maps by to its column; the whitelist is what keeps user input out of SQL.
func groupColumn(by string) (string, error) {
	if slices.Contains(Groupings, by) {
		return by, nil
	}
	return "", fmt.Errorf("usage: cannot group by %q (one of %s)", by, strings.Join(Groupings, ", "))
}

func groupKey(r *Record, by string) string {
	switch by {
	case "team":
		return r.Team
	case "model":
		return r.Model
	case "subject":
		return r.Subject
	case "backend":
		return r.Backend
	default: // route: by is validated first
		return r.Route
	}
}

// nanosPerUSD is the unit costs are summed in: integers add up the same in any order, so
// a file and a table holding the same records give the same totals, to the last bit.
const nanosPerUSD = 1e9

func costUnits(usd float64) int64 { return int64(math.RoundToEven(usd * nanosPerUSD)) }

// sortGroups orders by cost, then requests, both descending, then by key.
func sortGroups(gs []Group) {
	slices.SortFunc(gs, func(a, b Group) int {
		if c := cmp.Compare(b.CostUSD, a.CostUSD); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Requests, a.Requests); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
}

// SummarizeFile sums the records at or after since in the usage file path and its rotated
// files (path.1, path.2, ...), grouped by the field by (one of Groupings). It reads line by
// line; lines that do not parse (a line cut short by a crash, say) are skipped, and are an
// error only when no line parsed at all.
func SummarizeFile(path string, since time.Time, by string) ([]Group, error) {
	if _, err := groupColumn(by); err != nil {
		return nil, err
	}
	files, err := usageFiles(path)
	if err != nil {
		return nil, err
	}
	type sum struct {
		g     Group
		nanos int64
	}
	sums := map[string]*sum{}
	var parsed, bad int
	for _, name := range files {
		err := eachLine(name, func(line []byte) {
			var r Record
			if err := json.Unmarshal(line, &r); err != nil {
				bad++
				return
			}
			parsed++
			if r.Time.Before(since) {
				return
			}
			// Written lines are clean already; a hand-made line is cleaned like the
			// PostgreSQL sink would, so both summaries see the same key.
			k := cleanText(groupKey(&r, by))
			s := sums[k]
			if s == nil {
				s = &sum{g: Group{Key: k}}
				sums[k] = s
			}
			s.g.Requests++
			s.g.InputTokens += r.InputTokens
			s.g.OutputTokens += r.OutputTokens
			s.g.CachedInputTokens += r.CachedInputTokens
			s.nanos += costUnits(r.clean().CostUSD)
			if r.Status >= 400 {
				s.g.Errors++
			}
		})
		if err != nil {
			return nil, err
		}
	}
	if parsed == 0 && bad > 0 {
		return nil, fmt.Errorf("usage: %s: none of %d lines is a usage record", path, bad)
	}
	groups := make([]Group, 0, len(sums))
	for _, s := range sums {
		s.g.CostUSD = float64(s.nanos) / nanosPerUSD
		groups = append(groups, s.g)
	}
	sortGroups(groups)
	return groups, nil
}

// usageFiles lists path and its rotated files that exist, oldest first; none is an error.
func usageFiles(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	type rotated struct {
		n    int
		name string
	}
	var found []rotated
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasPrefix(name, base) {
			continue
		}
		if name == base {
			found = append(found, rotated{0, name})
		} else if n, err := strconv.Atoi(strings.TrimPrefix(name, base+".")); err == nil && n > 0 && name == base+"."+strconv.Itoa(n) {
			found = append(found, rotated{n, name})
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("usage: %w", &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist})
	}
	slices.SortFunc(found, func(a, b rotated) int { return b.n - a.n })
	files := make([]string, len(found))
	for i, f := range found {
		files[i] = filepath.Join(dir, f.name)
	}
	return files, nil
}

// eachLine calls fn with each line of the file (without its newline), in a buffer that is
// reused: fn must not keep it.
func eachLine(name string, fn func(line []byte)) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	var long []byte // a line longer than the reader's buffer, gathered
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 {
			if line = trimNewline(line); len(line) > 0 {
				fn(line)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("usage: %s: %w", name, err)
		}
	}
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}
