package edge_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/query"
)

// BenchmarkReplica_Query runs queries through an edge replica holding
// 100,000 documents (the path POST .../query takes, less HTTP), and measures
// the latency of durable writes while no query runs and while queries run
// back to back.
func BenchmarkReplica_Query(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	r := edge.New(edge.Config{Dir: b.TempDir()})
	if err := r.Open(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(ctx) })
	if _, _, err := r.PutContainer(ctx, replica.Container{Name: "items", PartitionKey: "/owner"}); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
				body := fmt.Sprintf(`{"id":"d%06d","owner":"user%d","price":%d,"name":"item %d","tags":["t%d","t%d"],"address":{"city":"c%d"}}`,
					i, i%1000, (i*7919)%10000, i, i%10, i%7, i%50)
				if _, err := r.Create(ctx, "items", []byte(body)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	queries := []struct{ name, text string }{
		{"equality", `SELECT * FROM c WHERE c.owner = "user42"`},
		{"range_order_limit20", `SELECT * FROM c WHERE c.price >= 1000 AND c.price < 2000 ORDER BY c.price OFFSET 0 LIMIT 20`},
		{"filter_not_indexed", `SELECT VALUE c.id FROM c WHERE CONTAINS(c.name, "777")`},
		{"count", `SELECT VALUE COUNT(1) FROM c`},
	}
	opt := query.Options{Timeout: time.Minute}
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := r.Query(ctx, "items", query.Request{Query: q.text, Limit: 1000}, "", opt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// write measures durable writes one after another, 1 ms apart, while
	// load runs: "" nothing, "burn" a goroutine keeping a core busy
	// without the database, "list" paging through the container with List
	// (the read path that predates queries), "query" queries back to back.
	write := func(b *testing.B, load string) {
		busy, burn, listMode := load == "query" || load == "list", load == "burn", load == "list"
		stop := make(chan struct{})
		var ran atomic.Int64
		var qwg sync.WaitGroup
		if burn {
			// A baseline: a goroutine that keeps one core busy without
			// touching the database, as a query's evaluation does.
			qwg.Add(1)
			go func() {
				defer qwg.Done()
				x := 0
				for {
					select {
					case <-stop:
						burnSink.Store(int64(x))
						return
					default:
					}
					for i := range 100_000 {
						x += i * i
					}
				}
			}()
		}
		if busy {
			qwg.Add(1)
			go func() {
				defer qwg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if listMode {
						cont := ""
						for {
							p, err := r.List(ctx, "items", edge.ListOptions{Limit: 1000, Continuation: cont})
							if err != nil {
								b.Error(err)
								return
							}
							if cont = p.Continuation; cont == "" {
								break
							}
						}
					} else if _, err := r.Query(ctx, "items", query.Request{Query: queries[1].text}, "", opt); err != nil {
						b.Error(err)
						return
					}
					ran.Add(1)
				}
			}()
		}
		var lat []time.Duration
		i := 0
		for b.Loop() {
			i++
			start := time.Now()
			body := fmt.Sprintf(`{"id":"w%d","owner":"writer","price":1}`, i)
			if _, _, err := r.Upsert(ctx, "items", "", []byte(body), edge.WriteOptions{}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
			time.Sleep(time.Millisecond)
		}
		close(stop)
		qwg.Wait()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		if busy {
			b.ReportMetric(float64(ran.Load()), "scans")
		}
	}
	// Interleave idle and busy rounds: the disk's speed varies by the minute.
	for round := range 2 {
		b.Run(fmt.Sprintf("write_idle_%d", round), func(b *testing.B) { write(b, "") })
		b.Run(fmt.Sprintf("write_during_cpu_burn_%d", round), func(b *testing.B) { write(b, "burn") })
		b.Run(fmt.Sprintf("write_during_listing_%d", round), func(b *testing.B) { write(b, "list") })
		b.Run(fmt.Sprintf("write_during_queries_%d", round), func(b *testing.B) { write(b, "query") })
	}
}

var burnSink atomic.Int64
