// Package pgtest gives tests a fresh PostgreSQL database.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Database returns the URL of a new, empty database on the server that
// EDGESYNC_TEST_POSTGRES names (a role that may create databases), dropped
// when the test ends. Without the variable, or without a server answering
// it, the test is skipped, unless EDGESYNC_REQUIRE_POSTGRES=1 (as in CI)
// makes that a failure.
func Database(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("EDGESYNC_TEST_POSTGRES")
	skip := t.Skipf
	if os.Getenv("EDGESYNC_REQUIRE_POSTGRES") == "1" {
		skip = t.Fatalf
	}
	if admin == "" {
		skip("EDGESYNC_TEST_POSTGRES is not set: set it to a PostgreSQL URL whose role may create databases " +
			"(postgres://edgesync:edgesync@127.0.0.1:5432/edgesync) to run the PostgreSQL tests")
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		skip("PostgreSQL at EDGESYNC_TEST_POSTGRES does not answer: %v", err)
		return ""
	}
	defer conn.Close(ctx)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "edgesync_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if err := drop(ctx, conn, name); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("EDGESYNC_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// drop drops the test database, ending its sessions. A role that is not a
// member of pg_signal_backend may not end a session it does not own, and
// the server's autovacuum workers own theirs: DROP ... WITH (FORCE) then
// fails (SQLSTATE 42501) while a worker vacuums the test database, which
// it does for seconds at most. drop tries again until ctx ends.
func drop(ctx context.Context, conn *pgx.Conn, name string) error {
	for {
		_, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
		var pe *pgconn.PgError
		if err == nil || !errors.As(err, &pe) || (pe.Code != "42501" && pe.Code != "55006") {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}
