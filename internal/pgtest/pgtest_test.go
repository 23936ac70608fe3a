package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestStart(t *testing.T) {
	SkipWithout(t)
	began := time.Now()
	s := Start(t)
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("Start took %v, want < 3s", took)
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT 1 + 1").Scan(&n); err != nil || n != 2 {
		t.Fatalf("SELECT 1 + 1 = %d, %v", n, err)
	}
	var addr string
	if err := c.QueryRow(ctx, "SHOW listen_addresses").Scan(&addr); err != nil || addr != "127.0.0.1" {
		t.Fatalf("listen_addresses = %q, %v", addr, err)
	}

	s.Stop()
	if _, err := pgx.Connect(ctx, s.DSN()); err == nil {
		t.Fatal("connected after Stop")
	}
}

func TestTwoServers(t *testing.T) {
	SkipWithout(t)
	a, b := Start(t), Start(t)
	if a.DSN() == b.DSN() {
		t.Fatalf("two servers share %s", a.DSN())
	}
}
