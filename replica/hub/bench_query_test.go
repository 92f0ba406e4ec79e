package hub_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/sqlitehub"
	"github.com/edgesync/edgesync/replica/query"
	"github.com/edgesync/edgesync/replica/query/querytest"
)

// BenchmarkHub_QueryIndexed runs the edge benchmark's queries over 100,000
// confirmed documents on a hub (SQLite, or PostgreSQL with
// EDGESYNC_TEST_HUB_STORE=postgres) whose container indexes /owner, /price
// and /account (an owner has 100 documents, an account 5), each indexed
// query beside the same query written by hand in SQL over the hub's own
// index table on the same database, prepared once. Two queries no index
// answers (a filter on a path not indexed, a count) scan, as before.
func BenchmarkHub_QueryIndexed(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	dir := b.TempDir()
	h := hub.New(hub.Config{Store: newStore(b, dir)})
	if err := h.Open(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close(ctx) })
	def := replica.Container{Name: "items", PartitionKey: "/owner",
		IndexingPolicy: &replica.IndexingPolicy{Paths: []string{"/owner", "/price", "/account"}}}
	if _, _, err := h.PutContainer(ctx, def); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := querytest.Fill(n, func(body []byte) error {
		_, err := h.Create(ctx, "items", body)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d documents written with 3 indexed paths in %s", n, time.Since(start))
	for {
		paths, err := h.IndexedPaths(ctx, "items")
		if err != nil {
			b.Fatal(err)
		}
		if len(paths) == 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The hand-written SQL reads what SELECT * returns: a document's body
	// and the columns of its system properties.
	type handQuery struct {
		run   func(b *testing.B) int // runs it once and returns the rows read
		close func()
	}
	var hand func(b *testing.B, sqliteSQL, pgSQL string) handQuery
	if !onPostgres {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlitehub.DBFile)+"?mode=ro&_pragma=busy_timeout(5000)")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		hand = func(b *testing.B, q, _ string) handQuery {
			stmt, err := db.PrepareContext(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			return handQuery{close: func() { stmt.Close() }, run: func(b *testing.B) int {
				rows, err := stmt.QueryContext(ctx)
				if err != nil {
					b.Fatal(err)
				}
				docs := 0
				for rows.Next() {
					docs++
					var id, body, version []byte
					var ts, lsn, crts int64
					if err := rows.Scan(&id, &body, &version, &ts, &lsn, &crts); err != nil {
						b.Fatal(err)
					}
				}
				if err := rows.Close(); err != nil {
					b.Fatal(err)
				}
				return docs
			}}
		}
	} else {
		url, _ := databases.Load(dir)
		pool, err := pgxpool.New(ctx, url.(string))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
		hand = func(b *testing.B, _, q string) handQuery {
			return handQuery{close: func() {}, run: func(b *testing.B) int {
				rows, err := pool.Query(ctx, q) // prepared once per connection by pgx's statement cache
				if err != nil {
					b.Fatal(err)
				}
				docs := 0
				for rows.Next() {
					docs++
					var id, version string
					var body []byte
					var ts, lsn, crts int64
					if err := rows.Scan(&id, &body, &version, &ts, &lsn, &crts); err != nil {
						b.Fatal(err)
					}
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					b.Fatal(err)
				}
				return docs
			}}
		}
	}
	const (
		doc = `SELECT i.id, v.body, i.version, v.ts, i.lsn, l.crts FROM idx x JOIN items i ON i.container = x.container AND i.id = x.id
			JOIN versions v ON v.version = i.version JOIN log l ON l.lsn = i.lsn WHERE x.container = 'items' AND `
		live   = ` AND i.deleted = 0`
		pgLive = ` AND NOT i.deleted`
	)
	queries := []struct {
		name, text, sqliteSQL, pgSQL string
	}{
		{"equality", `SELECT * FROM c WHERE c.owner = "user42"`,
			doc + `x.path = '/owner' AND x.t = 4 AND x.v = 'user42'` + live + ` ORDER BY x.id`,
			doc + `x.path = '/owner' AND x.t = 4 AND x.n = 0 AND x.s = 'user42'` + pgLive + ` ORDER BY x.id`},
		{"equality_selective", `SELECT * FROM c WHERE c.account = "a04242"`,
			doc + `x.path = '/account' AND x.t = 4 AND x.v = 'a04242'` + live + ` ORDER BY x.id`,
			doc + `x.path = '/account' AND x.t = 4 AND x.n = 0 AND x.s = 'a04242'` + pgLive + ` ORDER BY x.id`},
		{"range_order_limit20", `SELECT * FROM c WHERE c.price >= 1000 AND c.price < 2000 ORDER BY c.price OFFSET 0 LIMIT 20`,
			doc + `x.path = '/price' AND x.t = 3 AND x.v >= 1000 AND x.v < 2000` + live + ` ORDER BY x.t, x.v, x.id LIMIT 20`,
			doc + `x.path = '/price' AND x.t = 3 AND x.n >= 1000 AND x.n < 2000` + pgLive + ` ORDER BY x.t, x.n, x.s, x.id LIMIT 20`},
		{"filter_not_indexed", `SELECT VALUE c.id FROM c WHERE CONTAINS(c.name, "777")`, "", ""},
		{"count", `SELECT VALUE COUNT(1) FROM c`, "", ""},
	}
	opt := query.Options{Timeout: time.Minute}
	for _, q := range queries {
		wantScan := "index"
		if q.sqliteSQL == "" {
			wantScan = "full"
		}
		b.Run(q.name+"/hub", func(b *testing.B) {
			p, err := h.Query(ctx, "items", query.Request{Query: q.text, Limit: 1000, Explain: true}, opt)
			if err != nil {
				b.Fatal(err)
			}
			if p.Plan.Scan != wantScan {
				b.Fatalf("%s: plan %+v, want %s", q.text, p.Plan, wantScan)
			}
			for b.Loop() {
				if _, err := h.Query(ctx, "items", query.Request{Query: q.text, Limit: 1000}, opt); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(p.Documents)), "docs")
		})
		if q.sqliteSQL == "" {
			continue
		}
		b.Run(q.name+"/sql", func(b *testing.B) {
			hq := hand(b, q.sqliteSQL, q.pgSQL)
			defer hq.close()
			docs := 0
			for b.Loop() {
				docs = hq.run(b)
			}
			b.ReportMetric(float64(docs), "docs")
		})
	}
}
