package usage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-gateway/sluice/internal/pgtest"
)

// readTable reads every row back into Records, times in UTC.
func readTable(t *testing.T, dsn string) []Record {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT "`+strings.Join(columns, `", "`)+`" FROM `+Table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		if err := rows.Scan(r.pointers()...); err != nil {
			t.Fatal(err)
		}
		r.Time = r.Time.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPostgres(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	sink, err := NewPostgresSink(ctx, srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	rs := testRecords(3000)
	rs[7].Model = "nul\x00and\xffbad" // cleaned on the way in, as the file sink does
	r := NewRecorder(sink, RecorderOptions{Logger: quiet, FlushInterval: 10 * time.Millisecond})
	for _, rec := range rs {
		r.Add(rec)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkStats(t, r, RecorderStats{Written: uint64(len(rs))})
	want := append([]Record(nil), rs...)
	want[7] = rs[7].clean()
	if want[7].Model != "nul\uFFFDand\uFFFDbad" {
		t.Fatalf("clean: %q", want[7].Model)
	}
	sameRecords(t, readTable(t, srv.DSN()), want)

	// The same records in a file summarise identically.
	path := filepath.Join(t.TempDir(), "usage.jsonl")
	writeFile(t, path, 0, rs)
	for _, by := range Groupings {
		for _, since := range []time.Time{{}, rs[1500].Time} {
			fromFile, err := SummarizeFile(path, since, by)
			if err != nil {
				t.Fatal(err)
			}
			fromPG, err := SummarizePostgres(ctx, srv.DSN(), since, by)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fromFile, fromPG) {
				t.Fatalf("by %s since %v:\nfile %+v\n  pg %+v", by, since, fromFile, fromPG)
			}
			if len(fromPG) < 2 {
				t.Fatalf("by %s: %d groups", by, len(fromPG))
			}
		}
	}
	if _, err := SummarizePostgres(ctx, srv.DSN(), time.Time{}, `team"; DROP TABLE sluice_usage; --`); err == nil {
		t.Fatal("an unknown grouping was accepted")
	}
}

func TestPostgresSinkConcurrentCreate(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 { // gateways starting together must not race on CREATE TABLE
		wg.Go(func() {
			s, err := NewPostgresSink(ctx, srv.DSN())
			if err == nil {
				err = s.Write(ctx, testRecords(5))
				s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(readTable(t, srv.DSN())); n != 20 {
		t.Fatalf("%d rows", n)
	}
}

func TestPostgresErrorsHidePassword(t *testing.T) {
	pgtest.SkipWithout(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	const pw = "hunter2secret"
	for _, dsn := range []string{
		"postgres://u:" + pw + "@127.0.0.1:bad/db",       // does not parse
		"postgres://u:" + pw + "@127.0.0.1:1/db",         // nothing listens
		"host=127.0.0.1 port=1 user=u password=" + pw,    // key=value form
		"postgres://u:" + pw + "@[::1:1/db?sslmode=nope", // garbled
	} {
		_, err := NewPostgresSink(ctx, dsn)
		if err == nil || strings.Contains(err.Error(), pw) {
			t.Errorf("NewPostgresSink: %v", err)
		}
		_, err = SummarizePostgres(ctx, dsn, time.Time{}, "team")
		if err == nil || strings.Contains(err.Error(), pw) {
			t.Errorf("SummarizePostgres: %v", err)
		}
	}
}

func TestPostgresErrorClasses(t *testing.T) {
	for code, permanent := range map[string]bool{"22021": true, "23505": true, "08006": false, "57P01": false, "53300": false} {
		err := classify(fmt.Errorf("usage: postgres: %w", &pgconn.PgError{Code: code}))
		if isPermanent(err) != permanent {
			t.Errorf("SQLSTATE %s: permanent %v", code, isPermanent(err))
		}
	}
	if isPermanent(classify(errors.New("connection reset"))) {
		t.Error("a network error is permanent")
	}
}

func TestPostgresClampsIntegers(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	sink, err := NewPostgresSink(ctx, srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	rec := testRecords(1)[0]
	rec.Status, rec.Attempts = 1<<40, -1<<40
	if err := sink.Write(ctx, []Record{rec}); err != nil {
		t.Fatal(err)
	}
	sink.Close()
	if got := readTable(t, srv.DSN()); got[0].Status != math.MaxInt32 || got[0].Attempts != math.MinInt32 {
		t.Fatalf("status %d, attempts %d", got[0].Status, got[0].Attempts)
	}
}
