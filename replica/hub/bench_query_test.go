package hub_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/query"
)

// BenchmarkHub_Query runs the edge benchmark's queries over 100,000
// confirmed documents on a hub (SQLite, or PostgreSQL with
// EDGESYNC_TEST_HUB_STORE=postgres), which scans its confirmed items for
// every query.
func BenchmarkHub_Query(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	h := hub.New(hub.Config{Store: newStore(b, b.TempDir())})
	if err := h.Open(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close(ctx) })
	def := replica.Container{Name: "items", PartitionKey: "/owner",
		IndexingPolicy: &replica.IndexingPolicy{Paths: []string{"/owner", "/price"}}}
	if _, _, err := h.PutContainer(ctx, def); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
				body := fmt.Sprintf(`{"id":"d%06d","owner":"user%d","account":"a%05d","price":%d,"name":"item %d","tags":["t%d","t%d"],"address":{"city":"c%d"}}`,
					i, i%1000, i%20000, (i*7919)%10000, i, i%10, i%7, i%50)
				if _, err := h.Create(ctx, "items", []byte(body)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	opt := query.Options{Timeout: time.Minute}
	for _, q := range []struct{ name, text string }{
		{"equality", `SELECT * FROM c WHERE c.owner = "user42"`},
		{"equality_selective", `SELECT * FROM c WHERE c.account = "a04242"`},
		{"range_order_limit20", `SELECT * FROM c WHERE c.price >= 1000 AND c.price < 2000 ORDER BY c.price OFFSET 0 LIMIT 20`},
		{"count", `SELECT VALUE COUNT(1) FROM c`},
	} {
		b.Run(q.name, func(b *testing.B) {
			docs := 0
			for b.Loop() {
				p, err := h.Query(ctx, "items", query.Request{Query: q.text, Limit: 1000}, opt)
				if err != nil {
					b.Fatal(err)
				}
				docs = len(p.Documents)
			}
			b.ReportMetric(float64(docs), "docs")
		})
	}
}
