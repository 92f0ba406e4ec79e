package hub

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// sessionCount counts the stored dashboard sessions.
func sessionCount(t *testing.T, h *Hub) int {
	t.Helper()
	var n int
	if err := h.db.Read.QueryRow(`SELECT count(*) FROM sessions`).Scan(&n); err != nil {
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
	h := New(Config{Dir: t.TempDir(), Durability: "normal", Now: clock})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)

	id, s, err := h.CreateSession(ctx, "b1", time.Hour)
	if err != nil || !s.ExpiresAt.Equal(clock().Add(time.Hour)) {
		t.Fatalf("CreateSession = %+v, %v; want an expiry in 1h", s, err)
	}
	var stored string
	if err := h.db.Read.QueryRow(`SELECT id_hash FROM sessions`).Scan(&stored); err != nil || stored == id || stored != hashToken(id) {
		t.Fatalf("stored %q (%v), want the SHA-256 of the id, not the id", stored, err)
	}
	if got, err := h.LookupSession(ctx, id); err != nil || got.Binding != "b1" {
		t.Fatalf("LookupSession = %+v, %v; want binding b1", got, err)
	}
	advance(time.Hour)
	if _, err := h.LookupSession(ctx, id); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("LookupSession at expiry: %v, want ErrUnauthorized", err)
	}
	if n := sessionCount(t, h); n != 0 {
		t.Fatalf("%d sessions stored after the expired one was looked up, want 0", n)
	}

	id2, _, err := h.CreateSession(ctx, "b1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteSession(ctx, id2); err != nil {
		t.Fatal(err)
	}
	if _, err := h.LookupSession(ctx, id2); !errors.Is(err, ErrUnauthorized) {
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
	defer func(n int) { maxSessions = n }(maxSessions)
	maxSessions = 20
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	h := New(Config{Dir: t.TempDir(), Durability: "normal", Now: clock})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)

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
	if n := sessionCount(t, h); n != 1 {
		t.Fatalf("%d sessions after the expired ones were purged, want 1", n)
	}
	for range maxSessions {
		advance(time.Millisecond)
		if _, _, err := h.CreateSession(ctx, "b", 24*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if n := sessionCount(t, h); n != maxSessions {
		t.Fatalf("%d sessions, want at most %d", n, maxSessions)
	}
	if _, err := h.LookupSession(ctx, first); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("the oldest session past the bound: %v, want ErrUnauthorized", err)
	}
}
