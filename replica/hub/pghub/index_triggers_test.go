package pghub_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/pghub"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
	"github.com/edgesync/edgesync/replica/wire"
)

// indexTriggers counts the index triggers on items and versions.
func indexTriggers(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_trigger
		WHERE tgrelid IN ('items'::regclass, 'versions'::regclass) AND NOT tgisinternal AND tgname LIKE 'idx\_%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func openIndexHub(t *testing.T, url string) *hub.Hub {
	t.Helper()
	h := hub.New(hub.Config{Store: pghub.New(pghub.Config{URL: url})})
	if err := h.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h
}

func putContainer(t *testing.T, h *hub.Hub, name string, paths ...string) {
	t.Helper()
	c := replica.Container{Name: name, PartitionKey: "/pk"}
	if len(paths) > 0 {
		c.IndexingPolicy = &replica.IndexingPolicy{Paths: paths}
	}
	if _, _, err := h.PutContainer(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// TestStore_IndexTriggersFollowPaths: the index triggers exist only while
// a container has an index path: none before the first path, from the
// definition that adds it, none again after the one that removes the
// last; a write while they exist is indexed; a reopen restores them for
// indexing policies whose paths are not listed yet.
func TestStore_IndexTriggersFollowPaths(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	h := openIndexHub(t, url)
	defer func() { h.Close(ctx) }()

	steps := []struct {
		name      string
		container string
		paths     []string
		want      int
	}{
		{"container without paths", "a", nil, 0},
		{"first path", "a", []string{"/n"}, 4},
		{"second container's path", "b", []string{"/n"}, 4},
		{"one container's paths removed", "a", nil, 4},
		{"last path removed", "b", nil, 0},
		{"a path again", "b", []string{"/s"}, 4},
	}
	for _, st := range steps {
		putContainer(t, h, st.container, st.paths...)
		if got := indexTriggers(t, conn); got != st.want {
			t.Fatalf("%s: %d index triggers, want %d", st.name, got, st.want)
		}
	}

	// A write after the path was added is indexed by the triggers.
	if _, _, err := h.Push(ctx, "n", nil, []wire.Version{{Container: "b", ID: "d1", Op: replica.OpCreate, Version: "n-1", TS: 1,
		Body: []byte(`{"id":"d1","pk":"a","s":"x"}`)}}); err != nil {
		t.Fatal(err)
	}
	var entries int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM idx WHERE container = 'b' AND id = 'd1' AND path = '/s' AND s = 'x'`).Scan(&entries); err != nil {
		t.Fatal(err)
	}
	if entries != 1 {
		t.Fatalf("index entries of d1: %d, want 1", entries)
	}

	// A database whose policies have paths that idx_paths does not list
	// (as cloudhub migrate leaves it) and no triggers: Open lists the
	// paths and makes the triggers.
	h.Close(ctx)
	if _, err := conn.Exec(ctx, `DELETE FROM idx_paths`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT idx_triggers_follow_paths()`); err != nil {
		t.Fatal(err)
	}
	if got := indexTriggers(t, conn); got != 0 {
		t.Fatalf("without paths: %d index triggers, want 0", got)
	}
	h = openIndexHub(t, url)
	if got := indexTriggers(t, conn); got != 4 {
		t.Fatalf("after reopen: %d index triggers, want 4", got)
	}
}

// TestStore_IndexTriggersConcurrentDefinitions: two hubs on one database,
// one removing the last path of its container while the other adds the
// first of its own, leave the triggers as the paths they committed want.
func TestStore_IndexTriggersConcurrentDefinitions(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	a, b := openIndexHub(t, url), openIndexHub(t, url)
	defer a.Close(ctx)
	defer b.Close(ctx)
	putContainer(t, a, "x", "/n")
	putContainer(t, b, "y")
	const rounds = 20
	for i := range rounds {
		// Even rounds: x loses its path as y gets one; odd: the reverse.
		xp, yp := []string(nil), []string{"/n"}
		if i%2 == 1 {
			xp, yp = yp, xp
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, d := range []struct {
			h     *hub.Hub
			name  string
			paths []string
		}{{a, "x", xp}, {b, "y", yp}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := replica.Container{Name: d.name, PartitionKey: "/pk"}
				if len(d.paths) > 0 {
					c.IndexingPolicy = &replica.IndexingPolicy{Paths: d.paths}
				}
				_, _, errs[j] = d.h.PutContainer(ctx, c)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := indexTriggers(t, conn); got != 4 {
			t.Fatalf("round %d: %d index triggers with one container indexed, want 4", i, got)
		}
	}
	putContainer(t, a, "x")
	putContainer(t, b, "y")
	if got := indexTriggers(t, conn); got != 0 {
		t.Fatalf("no path left: %d index triggers, want 0", got)
	}
}

// TestStore_IndexExactAcrossFirstPath: one hub pushes without pause while
// another adds the container's first index path (making the triggers):
// once the path is built, every live item has its entry, whether it was
// written before the triggers existed (the build) or after (the triggers).
func TestStore_IndexExactAcrossFirstPath(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	a, b := openIndexHub(t, url), openIndexHub(t, url)
	defer a.Close(ctx)
	defer b.Close(ctx)
	putContainer(t, a, "x")
	putContainer(t, b, "x")

	stop := make(chan struct{})
	pushed := make(chan error, 1)
	go func() {
		const batch, most = 16, 400 // batches
		seq := 0
		for range most {
			vs := make([]wire.Version, batch)
			for j := range vs {
				seq++
				id := fmt.Sprintf("d%05d", seq)
				vs[j] = wire.Version{Container: "x", ID: id, Op: replica.OpCreate, Version: fmt.Sprintf("n-%d", seq), TS: 1,
					Body: fmt.Appendf(nil, `{"id":%q,"pk":"a","n":%d}`, id, seq)}
			}
			if _, _, err := b.Push(ctx, "n", nil, vs); err != nil {
				pushed <- err
				return
			}
			select {
			case <-stop:
				pushed <- nil
				return
			default:
			}
		}
		pushed <- nil
	}()
	time.Sleep(200 * time.Millisecond)
	putContainer(t, a, "x", "/n")
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ready bool
		if err := conn.QueryRow(ctx, `SELECT coalesce(bool_and(ready), false) FROM idx_paths WHERE container = 'x'`).Scan(&ready); err != nil {
			t.Fatal(err)
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("index of x not built in 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // writes after the build
	close(stop)
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}
	var items, entries int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM items WHERE container = 'x' AND NOT deleted),
		(SELECT count(*) FROM idx WHERE container = 'x' AND path = '/n')`).Scan(&items, &entries); err != nil {
		t.Fatal(err)
	}
	if items == 0 || entries != items {
		t.Fatalf("%d index entries for %d items, want one each", entries, items)
	}
}
