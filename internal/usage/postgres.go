package usage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Table is the PostgreSQL table the records go to.
const Table = "sluice_usage"

// columns are the table's columns in the order of Record's fields; values and pointers
// follow the same order.
var columns = []string{
	"time", "request_id", "subject", "team", "key", "route", "backend", "model",
	"upstream_model", "endpoint", "status", "code", "stream", "input_tokens", "output_tokens",
	"cached_input_tokens", "cache_creation_tokens", "reasoning_tokens", "estimated", "cache",
	"cost_usd", "duration_ms", "ttfb_ms", "attempts", "mcp_method", "mcp_name",
}

// createTable is idempotent. Strings are NOT NULL with an empty default rather than
// NULL, so a record reads back exactly and GROUP BY puts "none" in one group. Identifiers are quoted:
// time and key are keywords.
const createTable = `CREATE TABLE IF NOT EXISTS ` + Table + ` (
	"time" timestamptz NOT NULL,
	"request_id" text NOT NULL DEFAULT '',
	"subject" text NOT NULL DEFAULT '',
	"team" text NOT NULL DEFAULT '',
	"key" text NOT NULL DEFAULT '',
	"route" text NOT NULL DEFAULT '',
	"backend" text NOT NULL DEFAULT '',
	"model" text NOT NULL DEFAULT '',
	"upstream_model" text NOT NULL DEFAULT '',
	"endpoint" text NOT NULL DEFAULT '',
	"status" integer NOT NULL DEFAULT 0,
	"code" text NOT NULL DEFAULT '',
	"stream" boolean NOT NULL DEFAULT false,
	"input_tokens" bigint NOT NULL DEFAULT 0,
	"output_tokens" bigint NOT NULL DEFAULT 0,
	"cached_input_tokens" bigint NOT NULL DEFAULT 0,
	"cache_creation_tokens" bigint NOT NULL DEFAULT 0,
	"reasoning_tokens" bigint NOT NULL DEFAULT 0,
	"estimated" boolean NOT NULL DEFAULT false,
	"cache" text NOT NULL DEFAULT '',
	"cost_usd" double precision NOT NULL DEFAULT 0,
	"duration_ms" double precision NOT NULL DEFAULT 0,
	"ttfb_ms" double precision NOT NULL DEFAULT 0,
	"attempts" integer NOT NULL DEFAULT 0,
	"mcp_method" text NOT NULL DEFAULT '',
	"mcp_name" text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS ` + Table + `_time_idx ON ` + Table + ` ("time");
ALTER TABLE ` + Table + ` ADD COLUMN IF NOT EXISTS "mcp_method" text NOT NULL DEFAULT '';
ALTER TABLE ` + Table + ` ADD COLUMN IF NOT EXISTS "mcp_name" text NOT NULL DEFAULT ''`

// schemaLock is the advisory lock key taken while creating the table: two gateways
// starting together would otherwise race in CREATE TABLE IF NOT EXISTS (a unique
// violation on the catalog).
const schemaLock = 0x736c7569636575 // "sluiceu"

func (r *Record) values() []any {
	return []any{
		r.Time, r.RequestID, r.Subject, r.Team, r.Key, r.Route, r.Backend, r.Model,
		r.UpstreamModel, r.Endpoint, r.Status, r.Code, r.Stream, r.InputTokens, r.OutputTokens,
		r.CachedInputTokens, r.CacheCreationTokens, r.ReasoningTokens, r.Estimated, r.Cache,
		r.CostUSD, r.DurationMS, r.TTFBMS, r.Attempts, r.MCPMethod, r.MCPName,
	}
}

func (r *Record) pointers() []any {
	return []any{
		&r.Time, &r.RequestID, &r.Subject, &r.Team, &r.Key, &r.Route, &r.Backend, &r.Model,
		&r.UpstreamModel, &r.Endpoint, &r.Status, &r.Code, &r.Stream, &r.InputTokens, &r.OutputTokens,
		&r.CachedInputTokens, &r.CacheCreationTokens, &r.ReasoningTokens, &r.Estimated, &r.Cache,
		&r.CostUSD, &r.DurationMS, &r.TTFBMS, &r.Attempts, &r.MCPMethod, &r.MCPName,
	}
}

// PostgresSink writes records to the sluice_usage table through a connection pool, one
// COPY per batch. Its errors never contain the DSN's password.
type PostgresSink struct {
	pool     *pgxpool.Pool
	password string // to redact from errors
}

// NewPostgresSink connects to dsn (a URL or key=value string, as libpq takes) and creates
// the table and its index on time when they are absent.
func NewPostgresSink(ctx context.Context, dsn string) (*PostgresSink, error) {
	cfg, password, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, redact(fmt.Errorf("usage: postgres: %w", err), password)
	}
	s := &PostgresSink{pool: pool, password: password}
	if err := s.createTable(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func (s *PostgresSink) createTable(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(schemaLock)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, createTable)
		return err
	})
	if err != nil {
		return redact(fmt.Errorf("usage: postgres: creating table %s: %w", Table, err), s.password)
	}
	return nil
}

// Write copies batch into the table in one round trip. A batch the server rejects for its
// content (a data exception) is reported as permanent, so the Recorder does not retry it.
func (s *PostgresSink) Write(ctx context.Context, batch []Record) error {
	if len(batch) == 0 {
		return nil
	}
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{Table}, columns,
		pgx.CopyFromSlice(len(batch), func(i int) ([]any, error) {
			r := batch[i].clean()
			return r.values(), nil
		}))
	if err == nil {
		return nil
	}
	return classify(redact(fmt.Errorf("usage: postgres: writing %d records: %w", len(batch), err), s.password))
}

// classify marks the server's data exceptions (SQLSTATE class 22) and integrity violations
// (23) permanent: the same rows would fail again.
func classify(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23")) {
		return permanentError{err}
	}
	return err
}

// Close closes the pool, waiting for connections in use.
func (s *PostgresSink) Close() error {
	s.pool.Close()
	return nil
}

// parseDSN parses dsn without letting it into an error: pgx's own parse errors redact
// passwords only on a best-effort basis.
func parseDSN(dsn string) (*pgxpool.Config, string, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, "", errors.New("usage: the PostgreSQL DSN does not parse (not shown: it may hold a password)")
	}
	return cfg, cfg.ConnConfig.Password, nil
}

// redact removes password from err's text; the error chain stays reachable for errors.As.
func redact(err error, password string) error {
	if err == nil || password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return redactedError{msg: strings.ReplaceAll(err.Error(), password, "xxxxx"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

// connect opens one connection for a query, its errors redacted like the sink's.
func connect(ctx context.Context, dsn string) (*pgx.Conn, string, error) {
	cfg, password, err := parseDSN(dsn)
	if err != nil {
		return nil, "", err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return nil, "", redact(fmt.Errorf("usage: postgres: %w", err), password)
	}
	return conn, password, nil
}

// SummarizePostgres sums the table's records since since, grouped by the field by (see
// Groupings), ordered like SummarizeFile. Costs are summed in whole nano-dollars on both
// sides, so the two agree exactly whatever order the rows are added in.
func SummarizePostgres(ctx context.Context, dsn string, since time.Time, by string) ([]Group, error) {
	col, err := groupColumn(by) // a whitelisted column name: the only text put into the SQL
	if err != nil {
		return nil, err
	}
	conn, password, err := connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	// round() on double precision rounds half to even, like math.RoundToEven in costUnits.
	q := `SELECT "` + col + `", count(*), sum("input_tokens")::bigint, sum("output_tokens")::bigint,
		sum("cached_input_tokens")::bigint, sum(round("cost_usd" * 1e9::float8))::bigint,
		count(*) FILTER (WHERE "status" >= 400)
		FROM ` + Table + ` WHERE "time" >= $1 GROUP BY 1`
	rows, err := conn.Query(ctx, q, since)
	if err != nil {
		return nil, redact(fmt.Errorf("usage: postgres: %w", err), password)
	}
	var groups []Group
	for rows.Next() {
		var g Group
		var nanos int64
		if err := rows.Scan(&g.Key, &g.Requests, &g.InputTokens, &g.OutputTokens,
			&g.CachedInputTokens, &nanos, &g.Errors); err != nil {
			rows.Close()
			return nil, redact(fmt.Errorf("usage: postgres: %w", err), password)
		}
		g.CostUSD = float64(nanos) / nanosPerUSD
		groups = append(groups, g)
	}
	if err := rows.Err(); err != nil {
		return nil, redact(fmt.Errorf("usage: postgres: %w", err), password)
	}
	sortGroups(groups)
	return groups, nil
}
