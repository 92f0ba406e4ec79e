package edge_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
)

func TestReplica_Batch(t *testing.T) {
	ctx := context.Background()
	r := openReplica(t, t.TempDir())
	defineProducts(t, r)
	if _, err := r.Create(ctx, "products", []byte(`{"id":"p0","category":"tools","n":1}`)); err != nil {
		t.Fatalf("Create: %v", err)
	}
	before := r.Status().LastSeq

	// The third operation fails: nothing of the batch is written.
	_, err := r.Batch(ctx, "products", "tools", []edge.BatchOp{
		{Kind: replica.WriteCreate, Body: []byte(`{"id":"p1","category":"tools"}`)},
		{Kind: replica.WriteDelete, ID: "p0"},
		{Kind: replica.WriteCreate, Body: []byte(`{"id":"p1","category":"tools"}`)},
	})
	var be *edge.BatchError
	if !errors.As(err, &be) || be.Index != 2 || !errors.Is(err, replica.ErrExists) {
		t.Fatalf("Batch err = %v, want operation 2 failing with ErrExists", err)
	}
	if _, err := r.Get(ctx, "products", "p1", edge.ReadOptions{}); !errors.Is(err, replica.ErrNotFound) {
		t.Fatalf("Get(p1) after a failed batch: err = %v, want ErrNotFound", err)
	}
	if _, err := r.Get(ctx, "products", "p0", edge.ReadOptions{}); err != nil {
		t.Fatalf("Get(p0) after a failed batch: %v, want the item kept", err)
	}
	if got := r.Status().LastSeq; got != before {
		t.Fatalf("LastSeq = %d after a failed batch, want %d", got, before)
	}

	// A batch that succeeds: later operations see the earlier ones.
	res, err := r.Batch(ctx, "products", "tools", []edge.BatchOp{
		{Kind: replica.WriteCreate, Body: []byte(`{"id":"p2","category":"tools","n":1}`)},
		{Kind: replica.WriteUpsert, ID: "p2", Update: func(cur *replica.Item) ([]byte, error) {
			return []byte(`{"id":"p2","category":"tools","n":2}`), nil
		}},
		{Kind: edge.BatchRead, ID: "p2"},
		{Kind: replica.WriteDelete, ID: "p0"},
		{Kind: replica.WriteDelete, ID: "gone", Optional: true},
	})
	if err != nil {
		t.Fatalf("Batch: %v", err)
	}
	if got, want := string(res[2].Item.Body), `{"id":"p2","category":"tools","n":2}`; got != want {
		t.Fatalf("read in batch = %s, want %s", got, want)
	}
	if !res[0].Created || !res[4].Skipped {
		t.Fatalf("results %+v: want the create created and the optional delete skipped", res)
	}
	if got, want := r.Status().LastSeq, before+3; got != want {
		t.Fatalf("LastSeq = %d, want %d (three versions written)", got, want)
	}

	// A document of another partition key value is refused.
	_, err = r.Batch(ctx, "products", "tools", []edge.BatchOp{{Kind: replica.WriteCreate, Body: []byte(`{"id":"p3","category":"food"}`)}})
	if !errors.Is(err, replica.ErrInvalid) {
		t.Fatalf("Batch with another partition key: err = %v, want ErrInvalid", err)
	}
}

// A failing batch rolls back only itself when it shares a group commit
// with other writes.
func TestReplica_BatchInGroup(t *testing.T) {
	ctx := context.Background()
	r := openReplica(t, t.TempDir())
	defineProducts(t, r)
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := string(rune('a'+i%26)) + string(rune('a'+i/26))
			if i%2 == 0 {
				_, errs[i] = r.Create(ctx, "products", []byte(`{"id":"`+id+`","category":"tools"}`))
				return
			}
			_, errs[i] = r.Batch(ctx, "products", "tools", []edge.BatchOp{
				{Kind: replica.WriteCreate, Body: []byte(`{"id":"` + id + `","category":"tools"}`)},
				{Kind: replica.WriteDelete, ID: "missing"},
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 0 && err != nil {
			t.Fatalf("Create %d: %v", i, err)
		}
		if i%2 == 1 && !errors.Is(err, replica.ErrNotFound) {
			t.Fatalf("Batch %d: err = %v, want ErrNotFound", i, err)
		}
	}
	p, err := r.List(ctx, "products", edge.ListOptions{Limit: 100})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if got, want := len(p.Items), 20; got != want {
		t.Fatalf("%d items, want %d (the creates, none of the failed batches)", got, want)
	}
	if got, want := r.Pending(), int64(20); got != want {
		t.Fatalf("Pending() = %d, want %d", got, want)
	}
}

func TestReplica_DeleteItems(t *testing.T) {
	ctx := context.Background()
	r := openReplica(t, t.TempDir())
	defineProducts(t, r)
	for _, b := range []string{`{"id":"a","category":"tools"}`, `{"id":"b","category":"food"}`, `{"id":"c","category":"food"}`} {
		if _, err := r.Create(ctx, "products", []byte(b)); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	if err := r.Delete(ctx, "products", "c", edge.WriteOptions{}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	n, err := r.DeleteItems(ctx, "products", []string{"a", "b", "c", "never"})
	if err != nil {
		t.Fatalf("DeleteItems: %v", err)
	}
	if n != 2 {
		t.Fatalf("DeleteItems = %d, want 2 (c was deleted before, never never existed)", n)
	}
	p, err := r.List(ctx, "products", edge.ListOptions{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(p.Items) != 0 {
		t.Fatalf("%d items left, want 0", len(p.Items))
	}
}
