// Package pgtest gives tests a fresh PostgreSQL database.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
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
