package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/sluice-gateway/sluice/internal/pgtest"
	"github.com/sluice-gateway/sluice/internal/server"
	"github.com/sluice-gateway/sluice/internal/usage"
)

// sdkTraffic sends a whole and a streamed chat through the SDK and returns the usage the
// SDK saw, by request id.
func sdkTraffic(t *testing.T, base string) map[string]openai.CompletionUsage {
	t.Helper()
	c := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	seen := map[string]openai.CompletionUsage{}
	for i, q := range []string{"How many moons has Mars?", "Name three rivers in Africa."} {
		ctx := context.Background()
		id := "req-usage-" + string(rune('a'+i))
		if i == 0 {
			resp, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "demo", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(q)}},
				option.WithHeader("X-Request-Id", id))
			if err != nil {
				t.Fatal(err)
			}
			seen[id] = resp.Usage
			continue
		}
		stream := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "demo", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(q)},
			StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}}, option.WithHeader("X-Request-Id", id))
		acc := openai.ChatCompletionAccumulator{}
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		seen[id] = acc.Usage
	}
	return seen
}

func checkRecords(t *testing.T, recs []usage.Record, seen map[string]openai.CompletionUsage) {
	t.Helper()
	if len(recs) != len(seen) {
		t.Fatalf("%d records for %d requests", len(recs), len(seen))
	}
	for _, r := range recs {
		u, ok := seen[r.RequestID]
		if !ok {
			t.Fatalf("record for an unknown request %q", r.RequestID)
		}
		if r.InputTokens != u.PromptTokens || r.OutputTokens != u.CompletionTokens || r.Estimated || r.Status != 200 ||
			r.Model != "demo" || r.Backend != "Backend/default/mock" || r.Route != "ModelRoute/default/m1" || r.Endpoint != "chat" {
			t.Errorf("record %+v, SDK saw %d in / %d out", r, u.PromptTokens, u.CompletionTokens)
		}
	}
}

// TestUsageRecordsToFile: one JSONL record per request, with exactly the usage the SDK saw.
func TestUsageRecordsToFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "sluice.yaml"), mockBackend+routeFor("m1", "demo"))
	path := filepath.Join(t.TempDir(), "usage.jsonl")
	sink, err := usage.NewFileSink(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec := usage.NewRecorder(sink, usage.RecorderOptions{})
	r := start(t, server.Config{Paths: []string{dir}, Usage: rec})
	seen := sdkTraffic(t, r.addr)
	r.cancel()
	<-r.done
	r.done <- nil // for the cleanup
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []usage.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var u usage.Record
		if err := json.Unmarshal(sc.Bytes(), &u); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, u)
	}
	checkRecords(t, recs, seen)
}

// TestUsageRecordsToPostgres: the same, into a real PostgreSQL server.
func TestUsageRecordsToPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "sluice.yaml"), mockBackend+routeFor("m1", "demo"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sink, err := usage.NewPostgresSink(ctx, pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	rec := usage.NewRecorder(sink, usage.RecorderOptions{})
	r := start(t, server.Config{Paths: []string{dir}, Usage: rec})
	seen := sdkTraffic(t, r.addr)
	r.cancel()
	<-r.done
	r.done <- nil
	if err := rec.Close(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT request_id, model, route, backend, endpoint, status, input_tokens, output_tokens, estimated FROM sluice_usage`)
	if err != nil {
		t.Fatal(err)
	}
	var recs []usage.Record
	for rows.Next() {
		var u usage.Record
		if err := rows.Scan(&u.RequestID, &u.Model, &u.Route, &u.Backend, &u.Endpoint, &u.Status, &u.InputTokens, &u.OutputTokens, &u.Estimated); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, u)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	checkRecords(t, recs, seen)
}
