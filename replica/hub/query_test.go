package hub_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/query"
)

// A hub query reads its container in chunks of hub.QueryChunk items; over
// more than two chunks it sees every live item once, in id order.
func TestHub_QueryAcrossChunks(t *testing.T) {
	ctx := context.Background()
	h := hub.New(hub.Config{Store: newStore(t, t.TempDir())})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(ctx) })
	if _, _, err := h.PutContainer(ctx, replica.Container{Name: "orders", PartitionKey: "/t"}); err != nil {
		t.Fatal(err)
	}
	n := 2*hub.QueryChunk + 37
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if _, err := h.Create(ctx, "orders", fmt.Appendf(nil, `{"id":"o%05d","t":"t%d","n":%d}`, i, i%3, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := h.Delete(ctx, "orders", "o00005", hub.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := h.Query(ctx, "orders", query.Request{Query: `SELECT VALUE [COUNT(1), SUM(c.n), MIN(c.n), MAX(c.n)] FROM c WHERE c._lsn > 0`}, query.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("[%d,%d,0,%d]", n-1, n*(n-1)/2-5, n-1)
	if got := string(p.Documents[0]); got != want {
		t.Fatalf("[COUNT, SUM, MIN, MAX] = %s, want %s", got, want)
	}
	// o00005 is deleted: the 2031st item is o02031.
	p, err = h.Query(ctx, "orders", query.Request{Query: `SELECT VALUE c.id FROM c OFFSET 2030 LIMIT 3`}, query.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%s", p.Documents), `["o02031" "o02032" "o02033"]`; got != want {
		t.Fatalf("ids past the second chunk %s, want %s", got, want)
	}
}
