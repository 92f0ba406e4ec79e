package query_test

import (
	"context"
	"encoding/json"
	"fmt"
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

// When the index source yields exactly the matching documents, a WHERE that
// is nothing but the scan's condition is not checked again; anything more
// (another condition, IN, bounds of another type, two bounds on one side)
// still is. The results are the same either way.
func TestExplain_IndexAnswersWhere(t *testing.T) {
	src, _ := products(t)
	exact := &query.IndexSource{
		Paths: []query.IndexPath{{Path: "/price", Names: []string{"price"}}, {Path: "/category", Names: []string{"category"}}},
		Scan: func(ctx context.Context, s *query.IndexScan, fn func([]byte) error) error {
			// The documents that match s, as an index would yield them.
			return src(ctx, func(doc []byte) error {
				var d map[string]any
				if err := json.Unmarshal(doc, &d); err != nil {
					return err
				}
				if matches(d, s) {
					return fn(doc)
				}
				return nil
			})
		},
		Exact: func(*query.IndexScan) bool { return true },
	}
	for _, tc := range []struct {
		query, filter string
	}{
		{`SELECT VALUE c.id FROM c WHERE c.price = 25`, ""},
		{`SELECT VALUE c.id FROM c WHERE 25 = c["price"]`, ""},
		{`SELECT VALUE c.id FROM c WHERE c.price >= 1 AND c.price < 100`, ""},
		{`SELECT VALUE c.id FROM c WHERE c.price BETWEEN 1 AND 100`, ""},
		{`SELECT VALUE c.id FROM c WHERE c.price > 1`, ""},
		{`SELECT VALUE c.id FROM c WHERE c.category = "tools" AND c.price > 1`, "WHERE"},
		{`SELECT VALUE c.id FROM c WHERE c.category IN ("tools", "office")`, "WHERE"},
		{`SELECT VALUE c.id FROM c WHERE c.price > 1 AND c.price > "a"`, "WHERE"},
		{`SELECT VALUE c.id FROM c WHERE c.price > 1 AND c.price > 20`, "WHERE"},
		{`SELECT VALUE c.id FROM c WHERE c.price BETWEEN 1 AND "z"`, "WHERE"},
	} {
		got, err := query.ExecuteIndexed(context.Background(), query.Request{Query: tc.query, Explain: true}, src, exact, query.Options{})
		if err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		if got.Plan.Scan != "index" || got.Plan.Filter != tc.filter {
			t.Errorf("%s: plan %+v, want an index scan with filter %q", tc.query, got.Plan, tc.filter)
		}
		want, err := query.Execute(context.Background(), query.Request{Query: tc.query}, src, query.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if g, w := fmt.Sprint(raw(got.Documents)), fmt.Sprint(raw(want.Documents)); g != w {
			t.Errorf("%s: %s, want %s (a scan's)", tc.query, g, w)
		}
	}
}

func raw(docs []json.RawMessage) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = string(d)
	}
	return out
}

// matches reports whether a document's value at s's path matches s, by
// type and value as an index compares (numbers and strings only here).
func matches(d map[string]any, s *query.IndexScan) bool {
	var v any = d
	for _, n := range s.Path.Names {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = m[n]; !ok {
			return false
		}
	}
	cmp := func(a, b any) (int, bool) {
		switch a := a.(type) {
		case float64:
			if b, ok := b.(float64); ok {
				return cmpOrdered(a, b), true
			}
		case string:
			if b, ok := b.(string); ok {
				return cmpOrdered(a, b), true
			}
		}
		return 0, false
	}
	if s.Values != nil {
		for _, w := range s.Values {
			if c, ok := cmp(v, w); ok && c == 0 {
				return true
			}
		}
		return false
	}
	if s.Lo != nil {
		c, ok := cmp(v, s.Lo.Value)
		if !ok || c < 0 || c == 0 && !s.Lo.Inclusive {
			return false
		}
	}
	if s.Hi != nil {
		c, ok := cmp(v, s.Hi.Value)
		if !ok || c > 0 || c == 0 && !s.Hi.Inclusive {
			return false
		}
	}
	return true
}

func cmpOrdered[T float64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
