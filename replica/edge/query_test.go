package edge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/query"
)

// A query reads its container in chunks of edge.QueryChunk items; over
// more than two chunks it must see every item once, in id order, and its
// pages must join up.
func TestReplica_QueryAcrossChunks(t *testing.T) {
	ctx := context.Background()
	r := edge.New(edge.Config{Dir: t.TempDir(), Durability: "normal"})
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(ctx) })
	defineProducts(t, r)
	n := 2*edge.QueryChunk + 37
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if _, err := r.Create(ctx, "products", fmt.Appendf(nil, `{"id":"p%05d","category":"c%d","n":%d}`, i, i%3, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	p, err := r.Query(ctx, "products", query.Request{Query: `SELECT VALUE COUNT(1) FROM c WHERE c._tentative`}, "", query.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Documents[0]); got != fmt.Sprint(n) {
		t.Fatalf("COUNT(1) = %s, want %d", got, n)
	}
	req := query.Request{Query: `SELECT VALUE c.n FROM c`, Limit: 1000}
	next := 0
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("more than 10 pages")
		}
		p, err := r.Query(ctx, "products", req, "", query.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range p.Documents {
			var got int
			if err := json.Unmarshal(d, &got); err != nil {
				t.Fatal(err)
			}
			if got != next {
				t.Fatalf("document %d is item %d", next, got)
			}
			next++
		}
		if p.Continuation == "" {
			break
		}
		req.Continuation = p.Continuation
	}
	if next != n {
		t.Fatalf("%d items read, want %d", next, n)
	}
}
