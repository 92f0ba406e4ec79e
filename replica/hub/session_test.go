package hub_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/sqlitehub"
)

// openSessionHub opens a hub in dir on clock, and a read-only connection to
// its database to look at what it stores.
func openSessionHub(t *testing.T, clock func() time.Time) (*hub.Hub, *sql.DB) {
	t.Helper()
	skipOnPostgres(t)
	ctx := context.Background()
	dir := t.TempDir()
	h := hub.New(hub.Config{Store: sqlitehub.New(sqlitehub.Config{Dir: dir, Durability: "normal"}), Now: clock})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(ctx) })
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "query_only(1)")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlitehub.DBFile)+"?"+q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return h, db
}

// sessionCount counts the stored dashboard sessions.
func sessionCount(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sessions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestHub_SessionLifecycle: a session is found until it expires; an expired
// one is refused and deleted; a deleted one is refused; only the hash of the
// id is stored.
func TestHub_SessionLifecycle(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	h, db := openSessionHub(t, clock)

	id, s, err := h.CreateSession(ctx, "b1", time.Hour)
	if err != nil || !s.ExpiresAt.Equal(clock().Add(time.Hour)) {
		t.Fatalf("CreateSession = %+v, %v; want an expiry in 1h", s, err)
	}
	var stored string
	if err := db.QueryRow(`SELECT id_hash FROM sessions`).Scan(&stored); err != nil || stored == id || stored != hub.HashToken(id) {
		t.Fatalf("stored %q (%v), want the SHA-256 of the id, not the id", stored, err)
	}
	if got, err := h.LookupSession(ctx, id); err != nil || got.Binding != "b1" {
		t.Fatalf("LookupSession = %+v, %v; want binding b1", got, err)
	}
	advance(time.Hour)
	if _, err := h.LookupSession(ctx, id); !errors.Is(err, hub.ErrUnauthorized) {
		t.Fatalf("LookupSession at expiry: %v, want ErrUnauthorized", err)
	}
	if n := sessionCount(t, db); n != 0 {
		t.Fatalf("%d sessions stored after the expired one was looked up, want 0", n)
	}

	id2, _, err := h.CreateSession(ctx, "b1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteSession(ctx, id2); err != nil {
		t.Fatal(err)
	}
	if _, err := h.LookupSession(ctx, id2); !errors.Is(err, hub.ErrUnauthorized) {
		t.Fatalf("LookupSession after DeleteSession: %v, want ErrUnauthorized", err)
	}
	if _, _, err := h.CreateSession(ctx, "b1", 0); err == nil {
		t.Fatalf("CreateSession with no lifetime succeeded")
	}
}

// TestHub_SessionBound: expired sessions are purged when one opens, and no
// more than MaxSessions live at once (the oldest go). The bound is lowered
// to 20 here.
func TestHub_SessionBound(t *testing.T) {
	const maxSessions = 20
	defer hub.SetMaxSessions(maxSessions)()
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	h, db := openSessionHub(t, clock)

	for range 3 {
		if _, _, err := h.CreateSession(ctx, "b", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	advance(time.Minute)
	first, _, err := h.CreateSession(ctx, "b", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n := sessionCount(t, db); n != 1 {
		t.Fatalf("%d sessions after the expired ones were purged, want 1", n)
	}
	for range maxSessions {
		advance(time.Millisecond)
		if _, _, err := h.CreateSession(ctx, "b", 24*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if n := sessionCount(t, db); n != maxSessions {
		t.Fatalf("%d sessions, want at most %d", n, maxSessions)
	}
	if _, err := h.LookupSession(ctx, first); !errors.Is(err, hub.ErrUnauthorized) {
		t.Fatalf("the oldest session past the bound: %v, want ErrUnauthorized", err)
	}
}
