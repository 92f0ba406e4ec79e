package edge_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/query"
)

// BenchmarkReplica_QueryIndexed runs the queries of BenchmarkReplica_Query
// over 100,000 documents without indexes, then with /owner, /price and
// /account indexed (an owner has 100 documents, an account 5), each beside the same query written by hand in SQL on the same
// SQLite file, prepared once (through the index table where the engine uses it, over
// json_extract where it scans).
func BenchmarkReplica_QueryIndexed(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	dir := b.TempDir()
	r := edge.New(edge.Config{Dir: dir})
	if err := r.Open(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(ctx) })
	def := replica.Container{Name: "items", PartitionKey: "/owner"}
	if _, _, err := r.PutContainer(ctx, def); err != nil {
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
				if _, err := r.Create(ctx, "items", []byte(body)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, edge.DBFile)+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	// A document's system properties (_ts, _etag, _lsn, _crts,
	// _tentative) come from these columns beside its body.
	const doc = `i.id, c.body, c.version, c.ts, c.lsn, c.crts, c.lsn = 0`
	const item = `SELECT ` + doc + ` FROM items i JOIN changes c ON c.seq = i.seq `
	queries := []struct {
		name, text, scanSQL, indexSQL string
	}{
		{"equality", `SELECT * FROM c WHERE c.owner = "user42"`,
			item + `WHERE i.container = 'items' AND i.deleted = 0 AND json_extract(c.body, '$.owner') = 'user42'`,
			`SELECT ` + doc + ` FROM idx x JOIN items i ON i.container = x.container AND i.id = x.id JOIN changes c ON c.seq = i.seq
				WHERE x.container = 'items' AND x.path = '/owner' AND x.t = 4 AND x.v = 'user42' AND i.deleted = 0 ORDER BY x.id`},
		{"equality_selective", `SELECT * FROM c WHERE c.account = "a04242"`,
			item + `WHERE i.container = 'items' AND i.deleted = 0 AND json_extract(c.body, '$.account') = 'a04242'`,
			`SELECT ` + doc + ` FROM idx x JOIN items i ON i.container = x.container AND i.id = x.id JOIN changes c ON c.seq = i.seq
				WHERE x.container = 'items' AND x.path = '/account' AND x.t = 4 AND x.v = 'a04242' AND i.deleted = 0 ORDER BY x.id`},
		{"range_order_limit20", `SELECT * FROM c WHERE c.price >= 1000 AND c.price < 2000 ORDER BY c.price OFFSET 0 LIMIT 20`,
			item + `WHERE i.container = 'items' AND i.deleted = 0 AND json_extract(c.body, '$.price') >= 1000 AND json_extract(c.body, '$.price') < 2000
				ORDER BY json_extract(c.body, '$.price'), i.id LIMIT 20`,
			`SELECT ` + doc + ` FROM idx x JOIN items i ON i.container = x.container AND i.id = x.id JOIN changes c ON c.seq = i.seq
				WHERE x.container = 'items' AND x.path = '/price' AND x.t = 3 AND x.v >= 1000 AND x.v < 2000 AND i.deleted = 0 ORDER BY x.t, x.v, x.id LIMIT 20`},
		{"filter_not_indexed", `SELECT VALUE c.id FROM c WHERE CONTAINS(c.name, "777")`,
			`SELECT i.id FROM items i JOIN changes c ON c.seq = i.seq WHERE i.container = 'items' AND i.deleted = 0 AND instr(json_extract(c.body, '$.name'), '777') > 0`, ""},
		{"range_half_count", `SELECT VALUE COUNT(1) FROM c WHERE c.price >= 5000`,
			`SELECT count(*) FROM items i JOIN changes c ON c.seq = i.seq WHERE i.container = 'items' AND i.deleted = 0 AND json_extract(c.body, '$.price') >= 5000`,
			`SELECT count(*) FROM idx x JOIN items i ON i.container = x.container AND i.id = x.id
				WHERE x.container = 'items' AND x.path = '/price' AND x.t = 3 AND x.v >= 5000 AND i.deleted = 0`},
		{"count", `SELECT VALUE COUNT(1) FROM c`,
			`SELECT count(*) FROM items i JOIN changes c ON c.seq = i.seq WHERE i.container = 'items' AND i.deleted = 0`, ""},
	}
	opt := query.Options{Timeout: time.Minute}
	engine := func(b *testing.B, text string, wantPlan string) {
		p, err := r.Query(ctx, "items", query.Request{Query: text, Limit: 1000, Explain: true}, "", opt)
		if err != nil {
			b.Fatal(err)
		}
		if p.Plan.Scan != wantPlan {
			b.Fatalf("%s: plan %+v, want %s", text, p.Plan, wantPlan)
		}
		cpu := cpuTime()
		for b.Loop() {
			if _, err := r.Query(ctx, "items", query.Request{Query: text, Limit: 1000}, "", opt); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
		b.ReportMetric(float64(len(p.Documents)), "docs")
	}
	handSQL := func(b *testing.B, text string) {
		stmt, err := db.PrepareContext(ctx, text)
		if err != nil {
			b.Fatal(err)
		}
		defer stmt.Close()
		cpu := cpuTime()
		docs := 0
		for b.Loop() {
			rows, err := stmt.QueryContext(ctx)
			if err != nil {
				b.Fatal(err)
			}
			docs = 0
			for rows.Next() {
				docs++
				var id, body, version []byte
				var ts, lsn, crts int64
				var tentative bool
				dst := []any{&id, &body, &version, &ts, &lsn, &crts, &tentative}
				if cols, _ := rows.Columns(); len(cols) == 1 {
					dst = dst[:1]
				}
				if err := rows.Scan(dst...); err != nil {
					b.Fatal(err)
				}
			}
			if err := rows.Close(); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
		b.ReportMetric(float64(docs), "docs")
	}
	for _, q := range queries {
		b.Run(q.name+"/engine_scan", func(b *testing.B) { engine(b, q.text, "full") })
		b.Run(q.name+"/sql_scan", func(b *testing.B) { handSQL(b, q.scanSQL) })
	}
	start := time.Now()
	def.IndexingPolicy = &replica.IndexingPolicy{Paths: []string{"/owner", "/price", "/account"}}
	if _, _, err := r.PutContainer(ctx, def); err != nil {
		b.Fatal(err)
	}
	b.Logf("indexing /owner, /price and /account over %d items took %s", n, time.Since(start))
	for _, q := range queries {
		if q.indexSQL == "" {
			continue
		}
		b.Run(q.name+"/engine_indexed", func(b *testing.B) { engine(b, q.text, "index") })
		b.Run(q.name+"/sql_indexed", func(b *testing.B) { handSQL(b, q.indexSQL) })
	}
}

// BenchmarkReplica_IndexedWrite measures one write after another (each
// waits for its commit) to a container of 10,000 items with 0, 1 and 4
// indexed paths, with full and normal durability.
func BenchmarkReplica_IndexedWrite(b *testing.B) {
	ctx := context.Background()
	paths := []string{"/owner", "/price", "/name", "/address/city"}
	for _, durability := range []string{"full", "normal"} {
		for _, k := range []int{0, 1, 4} {
			b.Run(fmt.Sprintf("%s/paths_%d", durability, k), func(b *testing.B) {
				r := edge.New(edge.Config{Dir: b.TempDir(), Durability: durability})
				if err := r.Open(ctx); err != nil {
					b.Fatal(err)
				}
				defer r.Close(ctx)
				def := replica.Container{Name: "items", PartitionKey: "/owner"}
				if k > 0 {
					def.IndexingPolicy = &replica.IndexingPolicy{Paths: paths[:k]}
				}
				if _, _, err := r.PutContainer(ctx, def); err != nil {
					b.Fatal(err)
				}
				body := func(i int) []byte {
					return fmt.Appendf(nil, `{"id":"d%06d","owner":"user%d","price":%d,"name":"item %d","tags":["t%d","t%d"],"address":{"city":"c%d"}}`,
						i%10_000, i%1000, (i*7919)%10000, i, i%10, i%7, i%50)
				}
				var wg sync.WaitGroup
				for w := range 16 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := w; i < 10_000; i += 16 {
							if _, _, err := r.Upsert(ctx, "items", "", body(i), edge.WriteOptions{}); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				var lat []time.Duration
				i := 10_000
				for b.Loop() {
					i++
					start := time.Now()
					if _, _, err := r.Upsert(ctx, "items", "", body(i), edge.WriteOptions{}); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(start))
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			})
		}
	}
}

// reportCPU reports the CPU time per operation since start (cpuTime), the
// cost of one query whatever else the machine runs; cpu-q/s is what one
// processor would answer at that cost.
func reportCPU(b *testing.B, start time.Duration) {
	if b.N == 0 || start == 0 {
		return
	}
	per := (cpuTime() - start) / time.Duration(b.N)
	b.ReportMetric(float64(per.Microseconds()), "cpu-µs/op")
	if per > 0 {
		b.ReportMetric(float64(time.Second/per), "cpu-q/s")
	}
}
