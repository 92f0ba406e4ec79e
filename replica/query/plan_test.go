package query_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/edgesync/edgesync/replica/query"
)

// The planner picks one indexed path that WHERE restricts: equality before
// IN before a range, the ORDER BY path when it is restricted too; anything
// else (OR, functions, NOT, paths under another alias, no index) scans.
func TestExplain_Plans(t *testing.T) {
	src, _ := products(t)
	scans := 0
	ix := &query.IndexSource{
		Paths: []query.IndexPath{{Path: "/price", Names: []string{"price"}}, {Path: "/owner/name", Names: []string{"owner", "name"}},
			{Path: "/category", Names: []string{"category"}}},
		Scan: func(ctx context.Context, s *query.IndexScan, fn func([]byte) error) error {
			scans++
			return src(ctx, fn) // every document: the evaluator filters
		},
	}
	for _, tc := range []struct {
		query, params string
		want          query.Plan
	}{
		{`SELECT * FROM c WHERE c.price = 25`, "", query.Plan{Scan: "index", Path: "/price", Use: "equality", Filter: "WHERE"}},
		{`SELECT * FROM c WHERE 25 = c["price"]`, "", query.Plan{Scan: "index", Path: "/price", Use: "equality", Filter: "WHERE"}},
		{`SELECT * FROM c WHERE c.owner.name = @n`, `[{"name":"@n","value":"Ann"}]`, query.Plan{Scan: "index", Path: "/owner/name", Use: "equality", Filter: "WHERE"}},
		{`SELECT * FROM c WHERE c.price > 10 AND c.category = "tools"`, "", query.Plan{Scan: "index", Path: "/category", Use: "equality", Filter: "WHERE"}},
		{`SELECT * FROM c WHERE c.category IN ("tools", "office") AND c.price > 1`, "", query.Plan{Scan: "index", Path: "/category", Use: "in", Filter: "WHERE"}},
		{`SELECT * FROM c WHERE c.price BETWEEN 1 AND 100`, "", query.Plan{Scan: "index", Path: "/price", Use: "range", Filter: "WHERE"}},
		{`SELECT * FROM c WHERE c.price >= 1 AND c.price < 100 ORDER BY c.price DESC OFFSET 0 LIMIT 2`, "", query.Plan{Scan: "index", Path: "/price", Use: "range", Order: "desc", Filter: "WHERE"}},
		{`SELECT * FROM c WHERE c.category = "tools" AND c.price > 1 ORDER BY c.price`, "", query.Plan{Scan: "index", Path: "/price", Use: "range", Order: "asc", Filter: "WHERE"}},
		{`SELECT * FROM c WHERE c.category = "tools" ORDER BY c.price`, "", query.Plan{Scan: "index", Path: "/category", Use: "equality", Filter: "WHERE, ORDER BY (sorted in memory)"}},
		{`SELECT DISTINCT VALUE c.price FROM c WHERE c.price > 1 ORDER BY c.price`, "", query.Plan{Scan: "index", Path: "/price", Use: "range", Filter: "WHERE, ORDER BY (sorted in memory)"}},
		{`SELECT * FROM c WHERE c.category IN ("tools", ["x"])`, "", query.Plan{Scan: "full", Filter: "WHERE"}},
		{`SELECT * FROM c WHERE c.price = 25 OR c.price = 80`, "", query.Plan{Scan: "full", Filter: "WHERE"}},
		{`SELECT * FROM c WHERE NOT (c.price = 25)`, "", query.Plan{Scan: "full", Filter: "WHERE"}},
		{`SELECT * FROM c WHERE c.price = c.qty`, "", query.Plan{Scan: "full", Filter: "WHERE"}},
		{`SELECT * FROM c WHERE c.name = "Anvil"`, "", query.Plan{Scan: "full", Filter: "WHERE"}},
		{`SELECT * FROM c WHERE c.price = [25]`, "", query.Plan{Scan: "full", Filter: "WHERE"}},
		{`SELECT * FROM c ORDER BY c.price`, "", query.Plan{Scan: "full", Filter: "ORDER BY (sorted in memory)"}},
		{`SELECT VALUE t FROM t IN c.tags WHERE t = "metal"`, "", query.Plan{Scan: "full", Filter: "WHERE"}},
		{`SELECT VALUE COUNT(1) FROM c JOIN t IN c.tags WHERE c.category = "tools"`, "", query.Plan{Scan: "index", Path: "/category", Use: "equality", Filter: "WHERE, JOIN, GROUP BY and aggregates"}},
	} {
		var ps []query.Parameter
		if tc.params != "" {
			if err := json.Unmarshal([]byte(tc.params), &ps); err != nil {
				t.Fatal(err)
			}
		}
		before := scans
		p, err := query.ExecuteIndexed(context.Background(), query.Request{Query: tc.query, Parameters: ps, Explain: true}, src, ix, query.Options{})
		if err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		if p.Plan == nil || *p.Plan != tc.want {
			t.Errorf("%s: plan %+v, want %+v", tc.query, p.Plan, tc.want)
		}
		if used := scans > before; used != (tc.want.Scan == "index") {
			t.Errorf("%s: index scanned %v, plan %+v", tc.query, used, p.Plan)
		}
	}
	// Without Explain, no plan.
	p, err := query.ExecuteIndexed(context.Background(), query.Request{Query: `SELECT * FROM c WHERE c.price = 25`}, src, ix, query.Options{})
	if err != nil || p.Plan != nil {
		t.Fatalf("plan %+v, %v", p.Plan, err)
	}
}
