package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gateway/sluice/internal/pgtest"
	"github.com/sluice-gateway/sluice/internal/usage"
)

func runUsage(args ...string) (string, error) {
	var out bytes.Buffer
	cmd := newUsageCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestUsageCommand(t *testing.T) {
	t.Setenv(envUsagePostgres, "")
	path := filepath.Join(t.TempDir(), "usage.jsonl")
	sink, err := usage.NewFileSink(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	rec := func(ago time.Duration, team, model string, status int, in, out, cached int64, cost float64) usage.Record {
		return usage.Record{Time: now.Add(-ago), RequestID: "r", Team: team, Model: model, Endpoint: "chat",
			Status: status, InputTokens: in, OutputTokens: out, CachedInputTokens: cached, CostUSD: cost, Attempts: 1}
	}
	err = sink.Write(context.Background(), []usage.Record{
		rec(time.Hour, "search", "gpt-4o", 200, 1000, 200, 100, 0.0125),
		rec(2*time.Hour, "search", "gpt-4o", 502, 10, 0, 0, 0),
		rec(3*time.Hour, "ads", "claude", 200, 50000, 1000, 0, 0.25),
		rec(30*time.Minute, "", "gpt-4o", 429, 5, 0, 0, 0.00001),
		rec(48*time.Hour, "old", "gpt-4o", 200, 1, 1, 1, 99), // outside the default 24h
	})
	if err != nil {
		t.Fatal(err)
	}
	sink.Close()

	out, err := runUsage("--file", path)
	if err != nil {
		t.Fatal(err)
	}
	want := "" +
		"TEAM    REQUESTS  ERRORS  INPUT  OUTPUT  CACHED  COST_USD\n" +
		"ads            1       0  50000    1000       0    0.2500\n" +
		"search         2       1   1010     200     100    0.0125\n" +
		"(none)         1       1      5       0       0    0.0000\n" +
		"TOTAL          4       2  51015    1200     100    0.2625\n"
	if out != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}

	out, err = runUsage("--file", path, "--since", "7d", "--by", "model", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		By     string
		Since  time.Time
		Groups []usage.Group
		Total  usage.Group
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if got.By != "model" || len(got.Groups) != 2 || got.Groups[0].Key != "gpt-4o" || got.Groups[0].Requests != 4 ||
		got.Groups[0].CostUSD != 99.01251 || got.Total.Requests != 5 || got.Total.Errors != 2 ||
		now.Sub(got.Since) < 7*24*time.Hour-time.Minute {
		t.Fatalf("json: %+v\n%s", got, out)
	}

	for _, args := range [][]string{
		{"--file", path, "--by", "colour"},
		{"--file", path, "--since", "yesterday"},
		{"--file", filepath.Join(t.TempDir(), "absent.jsonl")},
		{"--file", path, "--postgres", "postgres://x@127.0.0.1:1/db"},
	} {
		if out, err := runUsage(args...); err == nil {
			t.Errorf("%v: no error\n%s", args, out)
		}
	}
	if _, err := runUsage("--since", "0", "--file", path); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(newUsageCmd().Flags().Lookup("postgres").Usage, envUsagePostgres) {
		t.Error("--postgres does not name the environment variable")
	}
}

func TestUsageCommandPostgres(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	recs := []usage.Record{
		{Time: time.Now().UTC().Add(-time.Hour), RequestID: "a", Team: "search", Model: "m", Endpoint: "chat", Status: 200, InputTokens: 7, CostUSD: 0.5},
		{Time: time.Now().UTC().Add(-time.Hour), RequestID: "b", Team: "ads", Model: "m", Endpoint: "chat", Status: 500, InputTokens: 3, CostUSD: 0.25},
	}
	pg, err := usage.NewPostgresSink(ctx, srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	pg.Close()
	path := filepath.Join(t.TempDir(), "usage.jsonl")
	fs, _ := usage.NewFileSink(path, 0, 0)
	fs.Write(ctx, recs)
	fs.Close()

	t.Setenv(envUsagePostgres, srv.DSN()) // the DSN from the environment
	fromPG, err := runUsage()
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := runUsage("--file", path) // an explicit file wins over the environment
	if err != nil {
		t.Fatal(err)
	}
	if fromPG != fromFile || !strings.Contains(fromPG, "search         1       0      7       0       0    0.5000") {
		t.Fatalf("postgres:\n%s\nfile:\n%s", fromPG, fromFile)
	}
}
