package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/sqlitestore"
)

// TestListByPK_model writes, deletes and re-creates items under other
// partition keys at random, reopening the replica now and then, and checks
// after each step that every partition key's listing, page by page, is
// exactly the live items with that key, and that the partition key index
// never lags by the configured number of changes or more. Lag 1 lists
// through the index alone, 7 through both, the default mostly through the
// unindexed changes.
func TestListByPK_model(t *testing.T) {
	for _, lag := range []int{1, 7, 0} {
		t.Run(fmt.Sprintf("lag=%d", lag), func(t *testing.T) { testListByPKModel(t, lag) })
	}
}

func testListByPKModel(t *testing.T, lag int) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *Replica {
		r := New(Config{Dir: dir, Durability: "normal", PKIndexLag: lag})
		if err := r.Open(ctx); err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := open()
	defer func() { r.Close(ctx) }()
	if _, _, err := r.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/k"}); err != nil {
		t.Fatal(err)
	}
	// A second container with the same ids and keys must not leak in.
	if _, _, err := r.PutContainer(ctx, replica.Container{Name: "other", PartitionKey: "/k"}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, uint64(lag)))
	keys := []string{"a", "b", "c", "d"}
	live := map[string]string{} // id -> partition key
	gone := map[string]bool{}   // ids deleted and not written again
	body := func(id, k string, v int) []byte { return fmt.Appendf(nil, `{"id":%q,"k":%q,"v":%d}`, id, k, v) }
	steps := 700
	if testing.Short() {
		steps = 300
	}
	for step := range steps {
		id := fmt.Sprintf("i%03d", rng.IntN(120))
		k := keys[rng.IntN(len(keys))]
		switch pk, ok := live[id]; {
		case !ok: // new, or re-created under any key
			if _, err := r.Create(ctx, "c", body(id, k, step)); err != nil {
				t.Fatalf("step %d: create %s under %s: %v", step, id, k, err)
			}
			live[id] = k
			delete(gone, id)
		case rng.IntN(3) == 0:
			if err := r.Delete(ctx, "c", id, WriteOptions{}); err != nil {
				t.Fatalf("step %d: delete %s: %v", step, id, err)
			}
			delete(live, id)
			gone[id] = true
		default:
			if _, _, err := r.Upsert(ctx, "c", id, body(id, pk, step), WriteOptions{}); err != nil {
				t.Fatalf("step %d: replace %s: %v", step, id, err)
			}
		}
		if rng.IntN(4) == 0 {
			if _, err := r.Create(ctx, "other", body(id, k, step)); err != nil && !isExists(err) {
				t.Fatal(err)
			}
		}
		if step%97 == 96 {
			if err := r.Close(ctx); err != nil {
				t.Fatal(err)
			}
			r = open()
		}
		if step%5 != 0 {
			continue
		}
		for _, k := range keys {
			var want []string
			for id, pk := range live {
				if pk == k {
					want = append(want, id)
				}
			}
			slices.Sort(want)
			got := listAllByPK(t, r, k, 1+rng.IntN(9))
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: partition key %q lists %v, want %v", step, k, got, want)
			}
		}
		var mark, last int64
		if err := r.db.Read.QueryRowContext(ctx, `SELECT CAST(value AS INTEGER), (SELECT max(seq) FROM changes) FROM meta WHERE key = ?`,
			pkIndexedKey).Scan(&mark, &last); err != nil {
			t.Fatal(err)
		}
		if last-mark >= int64(r.cfg.PKIndexLag) {
			t.Fatalf("step %d: index at seq %d, changes at %d: lag %d, limit %d", step, mark, last, last-mark, r.cfg.PKIndexLag)
		}
	}
	if len(gone) == 0 {
		t.Fatal("the run deleted nothing")
	}
}

func isExists(err error) bool { return err != nil && errors.Is(err, replica.ErrExists) }

// listAllByPK follows a partition key's listing page by page.
func listAllByPK(t *testing.T, r *Replica, pk string, limit int) []string {
	t.Helper()
	var ids []string
	opt := ListOptions{PK: pk, HasPK: true, Limit: limit}
	for range 1000 {
		p, err := r.List(context.Background(), "c", opt)
		if err != nil {
			t.Fatalf("list %q: %v", pk, err)
		}
		for _, it := range p.Items {
			if it.PK != pk || it.Container != "c" {
				t.Fatalf("list %q: item %s of container %s with partition key %q", pk, it.ID, it.Container, it.PK)
			}
			ids = append(ids, it.ID)
		}
		if p.Continuation == "" {
			return ids
		}
		if len(p.Items) != limit {
			t.Fatalf("list %q: a page of %d with a continuation, limit %d", pk, len(p.Items), limit)
		}
		opt.Continuation = p.Continuation
	}
	t.Fatalf("list %q: no end", pk)
	return nil
}

// A database made before pk_ids (schema 2, with the index items_by_pk) gets
// the index built from its changes when it is opened, and lists by
// partition key as before.
func TestPKIndex_migration(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := New(Config{Dir: dir})
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	nodeID := r.NodeID()
	r.Close(ctx)
	// Rebuild the file as schema 2 had it, with the writes of that version.
	path := filepath.Join(dir, DBFile)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
	db, err := sqlitestore.Open(ctx, path, sqlitestore.Options{}, migrations[:2])
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{
		`INSERT INTO meta (key, value) VALUES ('node_id', '` + nodeID + `')`,
		`INSERT INTO containers (name, pk_path, policy, updated_at) VALUES ('c', '/k', '{"mode":"lww"}', 0)`,
	}
	for i, k := range []string{"a", "b", "a", "b", "a"} {
		seq := i + 1
		stmts = append(stmts,
			fmt.Sprintf(`INSERT INTO changes (seq, container, id, pk, op, version, base, origin, ts, tentative, body)
				VALUES (%d, 'c', 'i%d', '%s', 'create', '%s-%d', '', '%s', 0, 1, '{"id":"i%d","k":"%s"}')`, seq, i, k, nodeID, seq, nodeID, i, k),
			fmt.Sprintf(`INSERT INTO items (container, id, pk, version, seq, deleted, pending) VALUES ('c', 'i%d', '%s', '%s-%d', %d, 0, 1)`,
				i, k, nodeID, seq, seq))
	}
	err = func() error {
		w := sqlitestore.NewWriter(db, sqlitestore.WriterConfig{})
		if err := w.Open(ctx); err != nil {
			return err
		}
		defer w.Close(ctx)
		return w.Do(ctx, func(ctx context.Context) error {
			for _, s := range stmts {
				if _, err := w.Exec(ctx, s); err != nil {
					return sqlitestore.Wrote(s, err)
				}
			}
			return nil
		}, nil)
	}()
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	r = New(Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	if !strings.Contains(logged.String(), `msg="upgrading the database schema" from=2 to=`) ||
		!strings.Contains(logged.String(), `msg="database schema upgraded"`) {
		t.Errorf("the upgrade is not in the log:\n%s", logged.String())
	}
	if got := listAllByPK(t, r, "a", 2); !slices.Equal(got, []string{"i0", "i2", "i4"}) {
		t.Fatalf("after the migration, partition key a lists %v", got)
	}
	var n int
	if err := r.db.Read.QueryRowContext(ctx, `SELECT count(*) FROM pk_ids`).Scan(&n); err != nil || n != 5 {
		t.Fatalf("pk_ids holds %d entries (%v), want 5", n, err)
	}
	if r.pkIndexed != 5 {
		t.Fatalf("index mark %d, want 5", r.pkIndexed)
	}
}
