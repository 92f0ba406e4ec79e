package query_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/edgesync/edgesync/replica/query"
)

// benchDocs is the size of the benchmark's container.
const benchDocs = 100_000

// openBenchDB writes benchDocs documents to a SQLite file: table docs as the
// query engine reads it, and the same rows in docs_ix with expression
// indexes on the paths the queries use, for hand-written SQL with indexes.
func openBenchDB(b *testing.B) *sql.DB {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	for _, s := range []string{
		`CREATE TABLE docs (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID`,
		`CREATE TABLE docs_ix (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID`,
	} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, table := range []string{"docs", "docs_ix"} {
		st, err := tx.PrepareContext(ctx, `INSERT INTO `+table+` (id, body) VALUES (?, ?)`)
		if err != nil {
			b.Fatal(err)
		}
		for i := range benchDocs {
			id := fmt.Sprintf("d%06d", i)
			body := fmt.Sprintf(`{"id":%q,"owner":"user%d","price":%d,"name":"item %d","tags":["t%d","t%d"],"address":{"city":"c%d"}}`,
				id, i%1000, (i*7919)%10000, i, i%10, i%7, i%50)
			if _, err := st.ExecContext(ctx, id, body); err != nil {
				b.Fatal(err)
			}
		}
		st.Close()
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	for _, s := range []string{
		`CREATE INDEX docs_ix_owner ON docs_ix (json_extract(body, '$.owner'))`,
		`CREATE INDEX docs_ix_price ON docs_ix (json_extract(body, '$.price'))`,
		`ANALYZE`,
	} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	return db
}

// BenchmarkQuery runs each query through the evaluator over every document
// of the file, and the same query hand-written in SQL over SQLite's JSON
// functions, without and with an expression index.
func BenchmarkQuery(b *testing.B) {
	db := openBenchDB(b)
	src := func(ctx context.Context, fn func([]byte) error) error {
		rows, err := db.QueryContext(ctx, `SELECT body FROM docs ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		var body []byte
		for rows.Next() {
			if err := rows.Scan(&body); err != nil {
				return err
			}
			if err := fn(body); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	cases := []struct {
		name   string
		query  string
		params string
		sql    string
		args   []any
		want   int
	}{
		{"equality", `SELECT * FROM c WHERE c.owner = @o`, `[{"name":"@o","value":"user42"}]`,
			`SELECT body FROM %s WHERE json_extract(body, '$.owner') = ?`, []any{"user42"}, 100},
		{"range_order_limit20", `SELECT * FROM c WHERE c.price >= 1000 AND c.price < 2000 ORDER BY c.price OFFSET 0 LIMIT 20`, "",
			`SELECT body FROM %s WHERE json_extract(body, '$.price') >= 1000 AND json_extract(body, '$.price') < 2000 ORDER BY json_extract(body, '$.price') LIMIT 20`, nil, 20},
		{"filter_not_indexed", `SELECT VALUE c.id FROM c WHERE CONTAINS(c.name, "777")`, "",
			`SELECT json_extract(body, '$.id') FROM %s WHERE instr(json_extract(body, '$.name'), '777') > 0`, nil, 0},
		{"count", `SELECT VALUE COUNT(1) FROM c`, "", `SELECT count(*) FROM %s`, nil, 1},
	}
	ctx := context.Background()
	for _, tc := range cases {
		b.Run(tc.name+"/query", func(b *testing.B) {
			req := query.Request{Query: tc.query, Parameters: params(b, tc.params), Limit: 1000}
			for b.Loop() {
				p, err := query.Execute(ctx, req, src, query.Options{Timeout: time.Minute})
				if err != nil {
					b.Fatal(err)
				}
				if tc.want > 0 && len(p.Documents) != tc.want {
					b.Fatalf("%d documents, want %d", len(p.Documents), tc.want)
				}
			}
		})
		for _, table := range []string{"docs", "docs_ix"} {
			name := "sql"
			if table == "docs_ix" {
				name = "sql_indexed"
			}
			b.Run(tc.name+"/"+name, func(b *testing.B) {
				q := fmt.Sprintf(tc.sql, table)
				for b.Loop() {
					rows, err := db.QueryContext(ctx, q, tc.args...)
					if err != nil {
						b.Fatal(err)
					}
					n := 0
					var v []byte
					for rows.Next() {
						if err := rows.Scan(&v); err != nil {
							b.Fatal(err)
						}
						n++
					}
					if err := rows.Err(); err != nil {
						b.Fatal(err)
					}
					rows.Close()
					if tc.want > 0 && n != tc.want {
						b.Fatalf("%d rows, want %d", n, tc.want)
					}
				}
			})
		}
	}
}
