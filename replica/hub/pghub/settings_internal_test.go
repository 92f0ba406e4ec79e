package pghub

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
)

// TestStore_SynchronousCommit: the store's connections wait for each
// commit to be durable even where the database's default says not to, and
// a URL that turns that off is refused.
func TestStore_SynchronousCommit(t *testing.T) {
	ctx := context.Background()
	dbURL := pgtest.Database(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `ALTER DATABASE `+strings.TrimPrefix(u.Path, "/")+` SET synchronous_commit = off`)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}

	s := New(Config{URL: dbURL})
	if err := s.Open(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	var got string
	if err := s.pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "on" {
		t.Errorf("synchronous_commit = %q on the store's connections, want on", got)
	}

	q := u.Query()
	q.Set("synchronous_commit", "off")
	u.RawQuery = q.Encode()
	off := New(Config{URL: u.String()})
	if err := off.Open(ctx, nil); !errors.Is(err, replica.ErrInvalid) {
		off.Close(ctx)
		t.Fatalf("Open with synchronous_commit=off: %v, want %v", err, replica.ErrInvalid)
	}
}
