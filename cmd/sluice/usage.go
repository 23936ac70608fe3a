package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-gateway/sluice/internal/usage"
)

// envUsagePostgres holds the usage database's DSN: an environment variable keeps its
// password out of the process list and the shell history.
const envUsagePostgres = "SLUICE_USAGE_POSTGRES"

func newUsageCmd() *cobra.Command {
	var (
		since  string
		by     string
		file   string
		dsn    string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "usage [--since 24h] [--by team|model|subject|backend|route] [--file PATH | --postgres DSN] [--json]",
		Short: "Sum recorded usage (requests, errors, tokens, cost) by team, model, subject, backend or route",
		Long: "Reads the usage records of the usage JSONL file (and its rotated files PATH.1, PATH.2, ...)\n" +
			"or of the PostgreSQL table sluice_usage, and prints one line per group, most expensive\n" +
			"first, then the total. The DSN may come from $" + envUsagePostgres + " instead of --postgres.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			window, err := parseSince(since)
			if err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			var from time.Time // zero: everything
			if window > 0 {
				from = time.Now().Add(-window).UTC()
			}
			fromFile := cmd.Flags().Changed("file") // an explicit file wins over the environment
			if dsn == "" {
				dsn = os.Getenv(envUsagePostgres)
			}
			var groups []usage.Group
			switch {
			case dsn != "" && fromFile && cmd.Flags().Changed("postgres"):
				return errors.New("--file and --postgres: choose one")
			case dsn != "" && !fromFile:
				groups, err = usage.SummarizePostgres(cmd.Context(), dsn, from, by)
			default:
				groups, err = usage.SummarizeFile(file, from, by)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeUsageJSON(cmd.OutOrStdout(), by, from, groups)
			}
			writeUsageTable(cmd.OutOrStdout(), by, groups)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "24h", "how far back: a Go duration (90m, 24h) or days (7d); 0 for all")
	f.StringVar(&by, "by", "team", "group by: "+strings.Join(usage.Groupings, ", "))
	f.StringVar(&file, "file", "usage.jsonl", "the usage JSONL file")
	f.StringVar(&dsn, "postgres", "", "PostgreSQL DSN to read the sluice_usage table from (default $"+envUsagePostgres+")")
	f.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}

// parseSince takes a Go duration or a whole number of days ("7d"), which time.ParseDuration
// lacks and usage reports often want.
func parseSince(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

func usageTotal(groups []usage.Group) usage.Group {
	t := usage.Group{Key: "TOTAL"}
	for _, g := range groups {
		t.Requests += g.Requests
		t.Errors += g.Errors
		t.InputTokens += g.InputTokens
		t.OutputTokens += g.OutputTokens
		t.CachedInputTokens += g.CachedInputTokens
		t.CostUSD += g.CostUSD
	}
	return t
}

// writeUsageTable prints the groups under a header, names left-aligned and numbers
// right-aligned, then the total.
func writeUsageTable(w io.Writer, by string, groups []usage.Group) {
	rows := [][]string{{strings.ToUpper(by), "REQUESTS", "ERRORS", "INPUT", "OUTPUT", "CACHED", "COST_USD"}}
	row := func(g usage.Group) []string {
		key := g.Key
		if key == "" {
			key = "(none)"
		}
		return []string{key, strconv.FormatInt(g.Requests, 10), strconv.FormatInt(g.Errors, 10),
			strconv.FormatInt(g.InputTokens, 10), strconv.FormatInt(g.OutputTokens, 10),
			strconv.FormatInt(g.CachedInputTokens, 10), strconv.FormatFloat(g.CostUSD, 'f', 4, 64)}
	}
	for _, g := range groups {
		rows = append(rows, row(g))
	}
	rows = append(rows, row(usageTotal(groups)))
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			switch {
			case i == 0:
				b.WriteString(c + pad)
			default:
				b.WriteString("  " + pad + c)
			}
		}
		fmt.Fprintln(w, b.String())
	}
}

func writeUsageJSON(w io.Writer, by string, since time.Time, groups []usage.Group) error {
	if groups == nil {
		groups = []usage.Group{} // [] rather than null
	}
	out := struct {
		By     string        `json:"by"`
		Since  *time.Time    `json:"since,omitempty"`
		Groups []usage.Group `json:"groups"`
		Total  usage.Group   `json:"total"`
	}{By: by, Groups: groups, Total: usageTotal(groups)}
	if !since.IsZero() {
		out.Since = &since
	}
	out.Total.Key = ""
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
