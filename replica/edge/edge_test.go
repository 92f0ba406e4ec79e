package edge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
)

func openReplica(t testing.TB, dir string) *edge.Replica {
	t.Helper()
	r := edge.New(edge.Config{Dir: dir})
	if err := r.Open(context.Background()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func defineProducts(t testing.TB, r *edge.Replica) {
	t.Helper()
	if _, _, err := r.PutContainer(context.Background(), replica.Container{Name: "products", PartitionKey: "/category"}); err != nil {
		t.Fatalf("PutContainer: %v", err)
	}
}

func TestReplica_CRUD(t *testing.T) {
	ctx := context.Background()
	r := openReplica(t, t.TempDir())
	defineProducts(t, r)

	it, err := r.Create(ctx, "products", []byte(`{"id":"p1","category":"tools","price":10,"_ts":1,"_etag":"x"}`))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !it.Tentative || it.PK != "tools" || it.Base != "" {
		t.Fatalf("Create item = %+v, want tentative, pk tools, no base", it)
	}
	if got, want := string(it.Body), `{"id":"p1","category":"tools","price":10}`; got != want {
		t.Fatalf("Body=%s, want %s (system properties dropped)", got, want)
	}
	if _, err := r.Create(ctx, "products", []byte(`{"id":"p1","category":"tools"}`)); !errors.Is(err, replica.ErrExists) {
		t.Fatalf("second Create err=%v, want ErrExists", err)
	}

	got, err := r.Get(ctx, "products", "p1", edge.ReadOptions{})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Version != it.Version || string(got.Body) != string(it.Body) {
		t.Fatalf("Get=%+v, want %+v", got, it)
	}
	doc := string(got.AppendJSON(nil))
	for _, want := range []string{`"_tentative":true`, `"_etag":"\"` + it.Version + `\""`, `"_ts":`} {
		if !strings.Contains(doc, want) {
			t.Errorf("document %s lacks %s", doc, want)
		}
	}
	if _, err := r.Get(ctx, "products", "p1", edge.ReadOptions{Consistency: edge.ConsistencyConfirmed}); !errors.Is(err, replica.ErrNotFound) {
		t.Fatalf("confirmed Get of a tentative-only item err=%v, want ErrNotFound", err)
	}

	// Replace with a stale etag fails, with the current one succeeds.
	if _, _, err := r.Upsert(ctx, "products", "p1", []byte(`{"id":"p1","category":"tools","price":11}`), edge.WriteOptions{IfMatch: `"stale"`}); !errors.Is(err, replica.ErrPreconditionFailed) {
		t.Fatalf("Upsert stale If-Match err=%v, want ErrPreconditionFailed", err)
	}
	it2, created, err := r.Upsert(ctx, "products", "p1", []byte(`{"id":"p1","category":"tools","price":11}`), edge.WriteOptions{IfMatch: it.ETag()})
	if err != nil || created {
		t.Fatalf("Upsert=%v created=%v, want replace", err, created)
	}
	if it2.Base != it.Version {
		t.Fatalf("Base=%q, want %q", it2.Base, it.Version)
	}
	if _, _, err := r.Upsert(ctx, "products", "p1", []byte(`{"id":"p1","category":"garden"}`), edge.WriteOptions{}); !errors.Is(err, replica.ErrPartitionKeyChange) {
		t.Fatalf("Upsert changing pk err=%v, want ErrPartitionKeyChange", err)
	}
	if _, _, err := r.Upsert(ctx, "products", "p2", []byte(`{"id":"p1","category":"garden"}`), edge.WriteOptions{}); !errors.Is(err, replica.ErrInvalid) {
		t.Fatalf("Upsert with mismatched id err=%v, want ErrInvalid", err)
	}

	if err := r.Delete(ctx, "products", "p1", edge.WriteOptions{IfMatch: it.ETag()}); !errors.Is(err, replica.ErrPreconditionFailed) {
		t.Fatalf("Delete with old etag err=%v, want ErrPreconditionFailed", err)
	}
	if err := r.Delete(ctx, "products", "p1", edge.WriteOptions{}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := r.Get(ctx, "products", "p1", edge.ReadOptions{}); !errors.Is(err, replica.ErrNotFound) {
		t.Fatalf("Get after delete err=%v, want ErrNotFound", err)
	}
	if err := r.Delete(ctx, "products", "p1", edge.WriteOptions{}); !errors.Is(err, replica.ErrNotFound) {
		t.Fatalf("second Delete err=%v, want ErrNotFound", err)
	}
	// After a delete the id can be created again, in another partition.
	it3, err := r.Create(ctx, "products", []byte(`{"id":"p1","category":"garden"}`))
	if err != nil {
		t.Fatalf("re-Create: %v", err)
	}
	if it3.Base == "" {
		t.Fatalf("re-created item has no base, want the tombstone's version")
	}

	changes, next, err := r.Changes(ctx, "products", 0, 0)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	var ops []string
	for _, c := range changes {
		ops = append(ops, c.Op)
	}
	if got, want := strings.Join(ops, ","), "create,replace,delete,create"; got != want {
		t.Fatalf("change ops=%s, want %s", got, want)
	}
	if next != changes[len(changes)-1].Seq {
		t.Fatalf("next=%d, want %d", next, changes[len(changes)-1].Seq)
	}
	if changes[2].Document != nil {
		t.Fatalf("delete change carries a document: %s", changes[2].Document)
	}
	if st := r.Status(); st.Pending != 4 {
		t.Fatalf("Pending=%d, want 4", st.Pending)
	}
	if _, err := r.Get(ctx, "nope", "p1", edge.ReadOptions{}); !errors.Is(err, replica.ErrContainerNotFound) {
		t.Fatalf("Get in unknown container err=%v, want ErrContainerNotFound", err)
	}
}

func TestReplica_Reopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := edge.New(edge.Config{Dir: dir})
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defineProducts(t, r)
	it, err := r.Create(ctx, "products", []byte(`{"id":"p1","category":"tools"}`))
	if err != nil {
		t.Fatal(err)
	}
	node := r.NodeID()
	// A second process on the same directory is refused.
	if err := edge.New(edge.Config{Dir: dir}).Open(ctx); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open err=%v, want 'in use'", err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r2 := openReplica(t, dir)
	if r2.NodeID() != node {
		t.Fatalf("NodeID=%s after reopen, want %s", r2.NodeID(), node)
	}
	got, err := r2.Get(ctx, "products", "p1", edge.ReadOptions{})
	if err != nil || got.Version != it.Version {
		t.Fatalf("Get after reopen = %+v, %v", got, err)
	}
	it2, _, err := r2.Upsert(ctx, "products", "p1", []byte(`{"id":"p1","category":"tools","v":2}`), edge.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if it2.Version == it.Version {
		t.Fatalf("version id %s reused after reopen", it2.Version)
	}
	if st := r2.Status(); st.Pending != 2 || st.LastSeq != 2 || st.Containers != 1 {
		t.Fatalf("Status=%+v, want pending 2, lastSeq 2, 1 container", st)
	}
}

func TestReplica_PutContainer(t *testing.T) {
	ctx := context.Background()
	r := openReplica(t, t.TempDir())
	tests := []struct {
		name        string
		c           replica.Container
		wantCreated bool
		wantErr     error
	}{
		{"new", replica.Container{Name: "orders", PartitionKey: "/territory"}, true, nil},
		{"same again", replica.Container{Name: "orders", PartitionKey: "/territory"}, false, nil},
		{"policy change", replica.Container{Name: "orders", PartitionKey: "/territory", ConflictPolicy: replica.ConflictPolicy{Mode: "merge"}}, false, nil},
		{"pk change", replica.Container{Name: "orders", PartitionKey: "/region"}, false, replica.ErrContainerMismatch},
		{"bad name", replica.Container{Name: "a/b", PartitionKey: "/x"}, false, replica.ErrInvalid},
		{"no pk", replica.Container{Name: "x"}, false, replica.ErrInvalid},
		{"system pk", replica.Container{Name: "x", PartitionKey: "/_ts"}, false, replica.ErrInvalid},
		{"bad mode", replica.Container{Name: "x", PartitionKey: "/p", ConflictPolicy: replica.ConflictPolicy{Mode: "newest"}}, false, replica.ErrInvalid},
		{"custom without resolver", replica.Container{Name: "x", PartitionKey: "/p", ConflictPolicy: replica.ConflictPolicy{Mode: "custom"}}, false, replica.ErrInvalid},
		{"nested pk", replica.Container{Name: "nested", PartitionKey: "/a/b"}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			created, _, err := r.PutContainer(ctx, tt.c)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("PutContainer err=%v, want %v", err, tt.wantErr)
			}
			if created != tt.wantCreated {
				t.Fatalf("created=%v, want %v", created, tt.wantCreated)
			}
		})
	}
	c, err := r.Container("orders")
	if err != nil || c.ConflictPolicy.Mode != "merge" {
		t.Fatalf("Container(orders)=%+v, %v; want mode merge", c, err)
	}
	if _, err := r.Create(ctx, "nested", []byte(`{"id":"n1","a":{"b":"x42"}}`)); err != nil {
		t.Fatalf("Create with nested numeric pk: %v", err)
	}
}

func TestReplica_List(t *testing.T) {
	ctx := context.Background()
	r := openReplica(t, t.TempDir())
	defineProducts(t, r)
	for i := range 25 {
		cat := []string{"tools", "garden"}[i%2]
		if _, err := r.Create(ctx, "products", fmt.Appendf(nil, `{"id":"p%02d","category":%q}`, i, cat)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Delete(ctx, "products", "p00", edge.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	collect := func(opt edge.ListOptions) []string {
		var ids []string
		for pages := 0; ; pages++ {
			if pages > 30 {
				t.Fatal("pagination does not end")
			}
			p, err := r.List(ctx, "products", opt)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			for _, it := range p.Items {
				ids = append(ids, it.ID)
			}
			if p.Continuation == "" {
				return ids
			}
			opt.Continuation = p.Continuation
		}
	}
	if got := collect(edge.ListOptions{Limit: 7}); len(got) != 24 || got[0] != "p01" || got[23] != "p24" {
		t.Fatalf("List all = %v, want p01..p24", got)
	}
	got := collect(edge.ListOptions{Limit: 5, PK: "tools", HasPK: true})
	if len(got) != 12 {
		t.Fatalf("List pk=tools = %v, want 12 items (p00 deleted)", got)
	}
	for _, id := range got {
		var n int
		fmt.Sscanf(id, "p%d", &n)
		if n%2 != 0 {
			t.Fatalf("List pk=tools returned %s", id)
		}
	}
	for _, opt := range []edge.ListOptions{{Limit: -1}, {Limit: 1001}, {Continuation: "!!"}} {
		if _, err := r.List(ctx, "products", opt); !errors.Is(err, replica.ErrInvalid) {
			t.Errorf("List(%+v) err=%v, want ErrInvalid", opt, err)
		}
	}
}

// TestReplica_GroupCommit writes from many goroutines at once: every write is
// acknowledged exactly once, versions are unique, and groups form.
func TestReplica_GroupCommit(t *testing.T) {
	ctx := context.Background()
	r := openReplica(t, t.TempDir())
	defineProducts(t, r)
	const writers, each = 16, 50
	var wg sync.WaitGroup
	versions := make(chan string, writers*each)
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				it, err := r.Create(ctx, "products", fmt.Appendf(nil, `{"id":"w%d-%d","category":"c%d"}`, w, i, w))
				if err != nil {
					errs <- err
					return
				}
				versions <- it.Version
			}
			// One bad write per writer must not disturb the group it lands in.
			if _, err := r.Create(ctx, "products", fmt.Appendf(nil, `{"id":"w%d-0","category":"c%d"}`, w, w)); !errors.Is(err, replica.ErrExists) {
				errs <- fmt.Errorf("duplicate create err=%v, want ErrExists", err)
			}
		})
	}
	wg.Wait()
	close(versions)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for v := range versions {
		if seen[v] {
			t.Fatalf("version %s handed out twice", v)
		}
		seen[v] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("%d versions, want %d", len(seen), writers*each)
	}
	st := r.WriterStats()
	if st.Writes.Load() != writers*each+1 || st.WriteErrors.Load() != writers {
		t.Fatalf("Writes=%d WriteErrors=%d, want %d and %d", st.Writes.Load(), st.WriteErrors.Load(), writers*each+1, writers)
	}
	if st.Commits.Load() >= st.Writes.Load() {
		t.Logf("no group formed: %d commits for %d writes (machine too fast to overlap?)", st.Commits.Load(), st.Writes.Load())
	}
	ch, _, err := r.Changes(ctx, "products", 0, 1000)
	if err != nil || len(ch) != writers*each {
		t.Fatalf("Changes=%d, %v; want %d", len(ch), err, writers*each)
	}
}

func TestReplica_Changed(t *testing.T) {
	ctx := context.Background()
	r := openReplica(t, t.TempDir())
	defineProducts(t, r)
	changed := r.Changed()
	select {
	case <-changed:
		t.Fatal("Changed fired before any write")
	default:
	}
	if _, err := r.Create(ctx, "products", []byte(`{"id":"a","category":"x"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed did not fire after a commit")
	}
}

func TestReplica_Closed(t *testing.T) {
	ctx := context.Background()
	r := edge.New(edge.Config{Dir: t.TempDir()})
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defineProducts(t, r)
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create(ctx, "products", []byte(`{"id":"a","category":"x"}`)); !errors.Is(err, replica.ErrClosed) {
		t.Fatalf("Create after Close err=%v, want ErrClosed", err)
	}
}
