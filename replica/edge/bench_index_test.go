package edge_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/query"
	"github.com/edgesync/edgesync/replica/query/querytest"
)

// BenchmarkReplica_QueryIndexed runs queries over 100,000 documents
// through an edge replica, each beside the same query written by hand in
// SQL on the same SQLite file and prepared once, as an app issues them:
// one client after another (clients_1) and GOMAXPROCS clients at once
// (clients_N; the edge's read pool serves them in parallel, the hand SQL
// has a pool of its own of the same size). First without indexes (the
// hand SQL over json_extract), then with /owner, /price and /account
// indexed (an owner has 100 documents, an account 5; the hand SQL through
// the edge's index table). Last, durable writes 1 ms apart, alone and
// while clients_N indexed queries run back to back. The summary at the
// end gives each query's rate and its ratio to the hand SQL.
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
	if err := querytest.Fill(n, func(body []byte) error {
		_, err := r.Create(ctx, "items", body)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	// The hand SQL's pool: read-only connections like the edge's read
	// pool (sqlitestore.Open), as many.
	conns := max(4, 2*runtime.GOMAXPROCS(0))
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, edge.DBFile)+
		"?mode=ro&_pragma=busy_timeout(5000)&_pragma=query_only(1)&_pragma=cache_size(-16000)")
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	b.Cleanup(func() { db.Close() })
	// A document's system properties (_ts, _etag, _lsn, _crts,
	// _tentative) come from these columns beside its body.
	const doc = `i.id, c.body, c.version, c.ts, c.lsn, c.crts, c.lsn = 0`
	const item = `SELECT ` + doc + ` FROM items i JOIN changes c ON c.seq = i.seq `
	queries := []struct {
		name, text, scanSQL, indexSQL string
	}{
		{"lookup", `SELECT * FROM c WHERE c.account = "a04242"`,
			item + `WHERE i.container = 'items' AND i.deleted = 0 AND json_extract(c.body, '$.account') = 'a04242'`,
			`SELECT ` + doc + ` FROM idx x JOIN items i ON i.container = x.container AND i.id = x.id JOIN changes c ON c.seq = i.seq
				WHERE x.container = 'items' AND x.path = '/account' AND x.t = 4 AND x.v = 'a04242' AND i.deleted = 0 ORDER BY x.id`},
		{"range_order_limit20", `SELECT * FROM c WHERE c.price >= 1000 AND c.price < 2000 ORDER BY c.price OFFSET 0 LIMIT 20`,
			item + `WHERE i.container = 'items' AND i.deleted = 0 AND json_extract(c.body, '$.price') >= 1000 AND json_extract(c.body, '$.price') < 2000
				ORDER BY json_extract(c.body, '$.price'), i.id LIMIT 20`,
			`SELECT ` + doc + ` FROM idx x JOIN items i ON i.container = x.container AND i.id = x.id JOIN changes c ON c.seq = i.seq
				WHERE x.container = 'items' AND x.path = '/price' AND x.t = 3 AND x.v >= 1000 AND x.v < 2000 AND i.deleted = 0 ORDER BY x.t, x.v, x.id LIMIT 20`},
		{"equality_100", `SELECT * FROM c WHERE c.owner = "user42"`,
			item + `WHERE i.container = 'items' AND i.deleted = 0 AND json_extract(c.body, '$.owner') = 'user42'`,
			`SELECT ` + doc + ` FROM idx x JOIN items i ON i.container = x.container AND i.id = x.id JOIN changes c ON c.seq = i.seq
				WHERE x.container = 'items' AND x.path = '/owner' AND x.t = 4 AND x.v = 'user42' AND i.deleted = 0 ORDER BY x.id`},
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
	sum := &querySummary{}
	runQuery := func(text string) (int, error) {
		p, err := r.Query(ctx, "items", query.Request{Query: text, Limit: 1000}, "", opt)
		return len(p.Documents), err
	}
	engineDocs := map[string]int{} // by query text: what the hand SQL must return too
	engine := func(b *testing.B, text, wantPlan string, clients int) {
		p, err := r.Query(ctx, "items", query.Request{Query: text, Limit: 1000, Explain: true}, "", opt)
		if err != nil {
			b.Fatal(err)
		}
		if p.Plan.Scan != wantPlan {
			b.Fatalf("%s: plan %+v, want %s", text, p.Plan, wantPlan)
		}
		engineDocs[text] = len(p.Documents)
		sum.add(b, clients, len(p.Documents), func() (int, error) { return runQuery(text) })
	}
	handSQL := func(b *testing.B, engineText, text string, clients int) {
		stmt, err := db.PrepareContext(ctx, text)
		if err != nil {
			b.Fatal(err)
		}
		defer stmt.Close()
		docs, err := scanSQL(ctx, stmt)
		if err != nil {
			b.Fatal(err)
		}
		if want, ok := engineDocs[engineText]; ok && docs != want {
			b.Fatalf("%s: %d rows, the engine's query %d documents", text, docs, want)
		}
		sum.add(b, clients, docs, func() (int, error) { return scanSQL(ctx, stmt) })
	}
	// Scans take a second or more each: one client only.
	for _, q := range queries {
		b.Run(q.name+"/engine_scan/clients_1", func(b *testing.B) { engine(b, q.text, "full", 1) })
		b.Run(q.name+"/sql_scan/clients_1", func(b *testing.B) { handSQL(b, q.text, q.scanSQL, 1) })
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
		for _, clients := range []int{1, runtime.GOMAXPROCS(0)} {
			if q.name == "range_half_count" && clients > 1 {
				continue // half a second a query
			}
			b.Run(fmt.Sprintf("%s/engine_indexed/clients_%d", q.name, clients), func(b *testing.B) { engine(b, q.text, "index", clients) })
			b.Run(fmt.Sprintf("%s/sql_indexed/clients_%d", q.name, clients), func(b *testing.B) { handSQL(b, q.text, q.indexSQL, clients) })
		}
	}
	// Writes alone and while indexed queries (the lookup and the range,
	// alternately) run back to back from GOMAXPROCS clients; idle and
	// busy rounds alternate, as the disk's speed varies by the minute.
	for round := range 2 {
		for _, busy := range []bool{false, true} {
			name := fmt.Sprintf("writes/idle_%d", round)
			if busy {
				name = fmt.Sprintf("writes/during_indexed_queries_%d", round)
			}
			b.Run(name, func(b *testing.B) {
				var texts []string
				if busy {
					texts = []string{queries[0].text, queries[1].text}
				}
				writesDuring(b, r, texts, runQuery, runtime.GOMAXPROCS(0))
			})
		}
	}
	sum.print(b)
}

// scanSQL runs a hand-written query and reads every row's columns, as the
// engine reads a document's: its body and system-property columns.
func scanSQL(ctx context.Context, stmt *sql.Stmt) (int, error) {
	rows, err := stmt.QueryContext(ctx)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	var id, body, version []byte
	var ts, lsn, crts int64
	var tentative bool
	dst := []any{&id, &body, &version, &ts, &lsn, &crts, &tentative}
	if len(cols) == 1 {
		dst = dst[:1]
	}
	docs := 0
	for rows.Next() {
		docs++
		if err := rows.Scan(dst...); err != nil {
			return 0, err
		}
	}
	return docs, errors.Join(rows.Err(), rows.Close())
}

// writesDuring measures durable writes one after another, 1 ms apart,
// while clients goroutines run texts (in turn) back to back; no query
// runs when texts is empty. It reports the writes' p50 and p99 and the
// queries' rate.
func writesDuring(b *testing.B, r *edge.Replica, texts []string, run func(string) (int, error), clients int) {
	ctx := context.Background()
	stop := make(chan struct{})
	var ran atomic.Int64
	var qwg sync.WaitGroup
	for c := range clients {
		if len(texts) == 0 {
			break
		}
		qwg.Add(1)
		go func() {
			defer qwg.Done()
			for i := c; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := run(texts[i%len(texts)]); err != nil {
					b.Error(err)
					return
				}
				ran.Add(1)
			}
		}()
	}
	var lat []time.Duration
	i := 0
	start := time.Now()
	for b.Loop() {
		i++
		t := time.Now()
		body := fmt.Sprintf(`{"id":"w%d","owner":"writer","account":"w","price":1}`, i)
		if _, _, err := r.Upsert(ctx, "items", "", []byte(body), edge.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t))
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	close(stop)
	qwg.Wait()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	if len(texts) > 0 {
		b.ReportMetric(float64(ran.Load())/elapsed.Seconds(), "queries/s")
	}
}

// querySummary keeps each sub-benchmark's last (final) measurement, to
// set the engine's rates beside the hand SQL's at the end of a run.
type querySummary struct {
	mu   sync.Mutex
	rows []string
	m    map[string]queryRate
}

type queryRate struct {
	perSec, cpuPerOp float64 // queries/s, CPU µs per query
	load             string  // the load average over the last minute
}

// add measures fn with clients goroutines (1: b.Loop, else
// b.RunParallel) and reports queries/s and CPU time per query.
func (s *querySummary) add(b *testing.B, clients, docs int, fn func() (int, error)) {
	cpu := cpuTime()
	start := time.Now()
	if clients == 1 {
		for b.Loop() {
			if _, err := fn(); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := fn(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	elapsed := time.Since(start)
	if b.N == 0 {
		return
	}
	rate := queryRate{perSec: float64(b.N) / elapsed.Seconds(), cpuPerOp: float64((cpuTime() - cpu).Microseconds()) / float64(b.N),
		load: strings.Fields(loadAverage())[0]}
	b.ReportMetric(rate.perSec, "q/s")
	b.ReportMetric(rate.cpuPerOp, "cpu-µs/op")
	b.ReportMetric(float64(docs), "docs")
	name := b.Name()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]queryRate{}
	}
	if _, ok := s.m[name]; !ok {
		s.rows = append(s.rows, name)
	}
	s.m[name] = rate
}

// print prints, for each engine row that has its hand SQL row, both rates
// and the ratios engine/SQL of the time per query (wall) and of the CPU
// time per query.
func (s *querySummary) print(b *testing.B) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out strings.Builder
	fmt.Fprintf(&out, "%-44s %10s %10s %6s %6s %7s %7s %5s\n", "query (load: 1-minute load average)",
		"engine q/s", "SQL q/s", "wall x", "CPU x", "eng µs", "SQL µs", "load")
	for _, name := range s.rows {
		if !strings.Contains(name, "/engine_") {
			continue
		}
		e := s.m[name]
		q, ok := s.m[strings.Replace(name, "/engine_", "/sql_", 1)]
		if !ok || e.perSec == 0 || q.cpuPerOp == 0 {
			continue
		}
		short := strings.TrimPrefix(name, b.Name()+"/")
		fmt.Fprintf(&out, "%-44s %10s %10s %6.2f %6.2f %7.0f %7.0f %5s\n", short, rateText(e.perSec), rateText(q.perSec),
			q.perSec/e.perSec, e.cpuPerOp/q.cpuPerOp, e.cpuPerOp, q.cpuPerOp, e.load)
	}
	// Printed, not logged: a parent benchmark's log shows only with -v.
	fmt.Print(out.String())
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

// rateText formats queries/s: whole numbers, two decimals under 10.
func rateText(r float64) string {
	if r < 10 {
		return strconv.FormatFloat(r, 'f', 2, 64)
	}
	return strconv.FormatFloat(r, 'f', 0, 64)
}

// loadAverage is the machine's load average over 1, 5 and 15 minutes
// (other processes share the CPUs), or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
