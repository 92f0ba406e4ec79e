package query_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica/query"
	"github.com/edgesync/edgesync/replica/query/querytest"
)

// products reads querytest.Products in id order, as the stores read a
// container, and returns the source and the documents by id.
func products(t testing.TB) (query.Source, map[string]json.RawMessage) {
	t.Helper()
	b := querytest.Products
	var docs []json.RawMessage
	if err := json.Unmarshal(b, &docs); err != nil {
		t.Fatal(err)
	}
	byID := map[string]json.RawMessage{}
	var ids []string
	for _, d := range docs {
		var v struct{ ID string }
		if err := json.Unmarshal(d, &v); err != nil {
			t.Fatal(err)
		}
		byID[v.ID] = d
		ids = append(ids, v.ID)
	}
	slices.Sort(ids)
	return sliceSource(ids, byID), byID
}

func sliceSource(ids []string, byID map[string]json.RawMessage) query.Source {
	return func(ctx context.Context, fn func([]byte) error) error {
		for _, id := range ids {
			if err := fn(byID[id]); err != nil {
				return err
			}
		}
		return nil
	}
}

func params(t testing.TB, s string) []query.Parameter {
	t.Helper()
	if s == "" {
		return nil
	}
	var ps []query.Parameter
	if err := json.Unmarshal([]byte(s), &ps); err != nil {
		t.Fatal(err)
	}
	return ps
}

// sameJSON compares two JSON texts as values (object key order aside).
func sameJSON(t testing.TB, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

func TestExecute_Cases(t *testing.T) {
	src, byID := products(t)
	if len(querytest.Cases) < 150 {
		t.Fatalf("%d cases, want at least 150", len(querytest.Cases))
	}
	names := map[string]bool{}
	raw := map[string][]byte{}
	for id, d := range byID {
		raw[id] = d
	}
	for _, tc := range querytest.Cases {
		if names[tc.Name] {
			t.Fatalf("case name %q is used twice", tc.Name)
		}
		names[tc.Name] = true
		t.Run(tc.Name, func(t *testing.T) {
			want := tc.WantJSON(raw)
			p, err := query.Execute(context.Background(), query.Request{Query: tc.Query, Parameters: params(t, tc.Params), Limit: 1000}, src, query.Options{})
			if err != nil {
				t.Fatalf("Execute(%s): %v", tc.Query, err)
			}
			got, err := json.Marshal(p.Documents)
			if err != nil {
				t.Fatal(err)
			}
			if !sameJSON(t, got, []byte(want)) {
				t.Errorf("Execute(%s)\n got %s\nwant %s", tc.Query, got, want)
			}
			if p.Continuation != "" {
				t.Errorf("continuation %q on a complete result", p.Continuation)
			}
		})
	}
}

func TestParse_BadQueries(t *testing.T) {
	deep := "SELECT VALUE " + strings.Repeat("(", 100) + "1" + strings.Repeat(")", 100)
	tests := []struct {
		name, query, params string
		col                 int
		msg                 string
	}{
		{"missing expression", `SELECT * FROM c WHERE`, "", 22, "expected an expression"},
		{"misspelt FROM", `SELECT * FORM c`, "", 10, "expected end of query"},
		{"unknown alias", `SELECT c.id FROM c WHERE x.id = 1`, "", 26, `identifier "x" cannot be resolved`},
		{"unknown function", `SELECT FOO(c.id) FROM c`, "", 8, "unknown function FOO"},
		{"wrong arity", `SELECT VALUE LOWER(c.a, c.b) FROM c`, "", 14, "LOWER takes 1 arguments, got 2"},
		{"unclosed string", `SELECT * FROM c WHERE c.name = "abc`, "", 32, "string literal is not closed"},
		{"aggregate beside a property", `SELECT COUNT(1), c.id FROM c`, "", 18, "must be inside an aggregate"},
		{"property not grouped", `SELECT c.name, COUNT(1) FROM c GROUP BY c.category`, "", 8, "neither in GROUP BY"},
		{"aggregate in WHERE", `SELECT * FROM c WHERE COUNT(1) > 1`, "", 23, "only allowed in the SELECT clause"},
		{"nested aggregate", `SELECT VALUE SUM(COUNT(1)) FROM c`, "", 18, "inside another aggregate"},
		{"star with JOIN", `SELECT * FROM c JOIN t IN c.tags`, "", 1, "SELECT * needs a single input"},
		{"LIKE", `SELECT * FROM c WHERE c.name LIKE "a%"`, "", 30, "LIKE is not supported"},
		{"TOP with OFFSET", `SELECT TOP 2 * FROM c OFFSET 1 LIMIT 1`, "", 23, "TOP and OFFSET LIMIT"},
		{"LIMIT without OFFSET", `SELECT * FROM c LIMIT 5`, "", 17, "LIMIT needs OFFSET"},
		{"missing parameter", `SELECT * FROM c WHERE c.id = @missing`, "", 30, "parameter @missing is not given"},
		{"too deep", deep, "", 0, "nested deeper than the limit of 64"},
		{"bad character", `SELECT * FROM c WHERE c.a = #`, "", 29, "unexpected character '#'"},
		{"two VALUE expressions", `SELECT VALUE c.x, c.y FROM c`, "", 17, "expected end of query, found ','"},
		{"duplicate names", `SELECT c.id, c.id FROM c`, "", 14, `duplicate property name "id"`},
		{"subquery", `SELECT VALUE (SELECT 1) FROM c`, "", 15, "subqueries are not supported"},
		{"negative TOP", `SELECT TOP -1 * FROM c`, "", 12, "expected a number or parameter after TOP"},
		{"fractional TOP parameter", `SELECT TOP @n * FROM c`, `[{"name":"@n","value":1.5}]`, 12, "TOP needs a whole number"},
		{"column counts characters", `SELECT VALUE "é" FROM c WHERE @`, "", 31, "a parameter name must follow @"},
		{"ORDER BY with GROUP BY", `SELECT c.a FROM c GROUP BY c.a ORDER BY c.a`, "", 41, "ORDER BY with GROUP BY"},
		{"empty", ``, "", 1, "expected SELECT"},
		{"bad escape", `SELECT VALUE "\q"`, "", 15, "unknown escape"},
		{"star without FROM", `SELECT *`, "", 1, "SELECT * needs a FROM clause"},
		{"JOIN before its alias", `SELECT 1 FROM c JOIN a IN b.x JOIN b IN c.y`, "", 27, `alias "b" is used before its JOIN`},
		{"JOIN of itself", `SELECT 1 FROM c JOIN a IN a.x`, "", 27, `alias "a" is used before its JOIN`},
		{"alias bound twice", `SELECT 1 FROM c JOIN c IN c.x`, "", 22, `alias "c" is already bound`},
	}
	src, _ := products(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := query.Execute(context.Background(), query.Request{Query: tc.query, Parameters: params(t, tc.params)}, src, query.Options{})
			var qe *query.Error
			if !errors.As(err, &qe) || !errors.Is(err, query.ErrBadQuery) {
				t.Fatalf("Execute(%s) = %v, want a *query.Error", tc.query, err)
			}
			if tc.col > 0 && qe.Column != tc.col {
				t.Errorf("column %d, want %d (%v)", qe.Column, tc.col, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q, want it to contain %q", err, tc.msg)
			}
			if qe.Column > 0 && !strings.HasSuffix(err.Error(), " at column "+itoa(qe.Column)) {
				t.Errorf("error %q does not end with its column", err)
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// pages runs a request page by page and returns every document.
func pages(t *testing.T, req query.Request, src query.Source, opt query.Options) ([]json.RawMessage, int) {
	t.Helper()
	var all []json.RawMessage
	n := 0
	for {
		p, err := query.Execute(context.Background(), req, src, opt)
		if err != nil {
			t.Fatalf("page %d: %v", n, err)
		}
		n++
		all = append(all, p.Documents...)
		if p.Continuation == "" {
			return all, n
		}
		if n > 100 {
			t.Fatal("more than 100 pages")
		}
		req.Continuation = p.Continuation
	}
}

func TestExecute_Paging(t *testing.T) {
	src, _ := products(t)
	for _, q := range []string{
		`SELECT VALUE c.id FROM c`,
		`SELECT VALUE c.id FROM c ORDER BY c.price DESC`,
		`SELECT DISTINCT VALUE c.owner.city FROM c ORDER BY c.owner.city`,
		`SELECT t, COUNT(1) AS n FROM c JOIN t IN c.tags GROUP BY t`,
		`SELECT VALUE c.id FROM c ORDER BY c.qty OFFSET 2 LIMIT 5`,
		`SELECT TOP 7 c.id, t FROM c JOIN t IN c.tags`,
		`SELECT DISTINCT VALUE t FROM t IN c.tags`,
	} {
		whole, err := query.Execute(context.Background(), query.Request{Query: q, Limit: 1000}, src, query.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int{1, 2, 3} {
			got, n := pages(t, query.Request{Query: q, Limit: size}, src, query.Options{})
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(whole.Documents)
			if !bytes.Equal(a, b) {
				t.Errorf("%s in pages of %d:\n got %s\nwant %s", q, size, a, b)
			}
			if want := max(1, (len(whole.Documents)+size-1)/size); n != want && n != want+1 {
				t.Errorf("%s in pages of %d: %d pages, want %d", q, size, n, want)
			}
		}
	}
}

func TestExecute_PageBytes(t *testing.T) {
	src, _ := products(t)
	got, n := pages(t, query.Request{Query: `SELECT * FROM c`}, src, query.Options{MaxPageBytes: 300})
	if len(got) != 10 {
		t.Fatalf("%d documents, want 10", len(got))
	}
	if n < 4 {
		t.Errorf("%d pages of at most 300 bytes, want at least 4", n)
	}
}

func TestExecute_ContinuationOfAnotherQuery(t *testing.T) {
	src, _ := products(t)
	ctx := context.Background()
	req := query.Request{Query: `SELECT VALUE c.id FROM c WHERE c.qty > @q`, Parameters: params(t, `[{"name":"@q","value":1}]`), Limit: 2}
	p, err := query.Execute(ctx, req, src, query.Options{})
	if err != nil || p.Continuation == "" {
		t.Fatalf("first page: %v, continuation %q", err, p.Continuation)
	}
	for _, other := range []query.Request{
		{Query: `SELECT VALUE c.id FROM c WHERE c.qty > @q`, Parameters: params(t, `[{"name":"@q","value":2}]`)},
		{Query: `SELECT VALUE c.id FROM c WHERE c.qty >= @q`, Parameters: req.Parameters},
	} {
		other.Continuation = p.Continuation
		_, err := query.Execute(ctx, other, src, query.Options{})
		if !errors.Is(err, query.ErrBadQuery) || !strings.Contains(err.Error(), "another query") {
			t.Errorf("continuation used with %s %s: %v, want a bad query", other.Query, other.Parameters[0].Value, err)
		}
	}
	_, hash, _ := strings.Cut(strings.TrimPrefix(p.Continuation, "q1."), ".")
	for _, bad := range []string{"x", "q1.-1.abc", "q1.1", "q1.9223372036854775807." + hash} {
		_, err := query.Execute(ctx, query.Request{Query: req.Query, Parameters: req.Parameters, Continuation: bad}, src, query.Options{})
		if !errors.Is(err, query.ErrBadQuery) {
			t.Errorf("continuation %q: %v, want a bad query", bad, err)
		}
	}
}

func TestExecute_BadParameters(t *testing.T) {
	src, _ := products(t)
	for _, ps := range []string{
		`[{"name":"x","value":1}]`,
		`[{"name":"@x","value":1},{"name":"@x","value":2}]`,
		`[{"name":"@x"}]`,
	} {
		_, err := query.Execute(context.Background(), query.Request{Query: `SELECT VALUE @x`, Parameters: params(t, ps)}, src, query.Options{})
		if !errors.Is(err, query.ErrBadQuery) {
			t.Errorf("parameters %s: %v, want a bad query", ps, err)
		}
	}
	many := make([]query.Parameter, 3)
	for i := range many {
		many[i] = query.Parameter{Name: "@p" + itoa(i), Value: json.RawMessage("1")}
	}
	_, err := query.Execute(context.Background(), query.Request{Query: `SELECT VALUE 1`, Parameters: many}, src, query.Options{Limits: query.Limits{MaxParams: 2}})
	if !errors.Is(err, query.ErrBadQuery) || !strings.Contains(err.Error(), "limit of 2") {
		t.Errorf("3 parameters with a limit of 2: %v", err)
	}
}

func TestExecute_QueryLength(t *testing.T) {
	src, _ := products(t)
	q := `SELECT VALUE "` + strings.Repeat("a", 100) + `"`
	_, err := query.Execute(context.Background(), query.Request{Query: q}, src, query.Options{Limits: query.Limits{MaxQueryLength: 64}})
	if !errors.Is(err, query.ErrBadQuery) || !strings.Contains(err.Error(), "limit of 64") {
		t.Errorf("query of %d bytes with a limit of 64: %v", len(q), err)
	}
}

// endless is a source that never runs out of documents.
func endless(ctx context.Context, fn func([]byte) error) error {
	doc := []byte(`{"id":"x","n":1}`)
	for {
		if err := fn(doc); err != nil {
			return err
		}
	}
}

func TestExecute_Timeout(t *testing.T) {
	start := time.Now()
	_, err := query.Execute(context.Background(), query.Request{Query: `SELECT VALUE COUNT(1) FROM c`}, endless, query.Options{Timeout: 50 * time.Millisecond})
	if !errors.Is(err, query.ErrTimeout) {
		t.Fatalf("Execute over an endless container: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stopped after %s, want about 50ms", d)
	}
}

func TestExecute_HeldBytes(t *testing.T) {
	src, _ := products(t)
	_, err := query.Execute(context.Background(), query.Request{Query: `SELECT * FROM c ORDER BY c.qty`, Limit: 1000}, src, query.Options{MaxHeldBytes: 500})
	if !errors.Is(err, query.ErrTooLarge) {
		t.Errorf("ORDER BY holding more than 500 bytes: %v, want ErrTooLarge", err)
	}
	// A small page of an ORDER BY keeps only what the page needs. (The
	// time limit is not what this checks: under -race on a busy machine
	// the 100,000 documents take longer than the default 5 s.)
	p, err := query.Execute(context.Background(), query.Request{Query: `SELECT VALUE c.id FROM c ORDER BY c.qty`, Limit: 1}, endlessN(100000),
		query.Options{MaxHeldBytes: 64 << 10, Timeout: time.Minute})
	if err != nil || len(p.Documents) != 1 {
		t.Errorf("ORDER BY over 100000 documents, page of 1: %v, %d documents", err, len(p.Documents))
	}
}

func endlessN(n int) query.Source {
	return func(ctx context.Context, fn func([]byte) error) error {
		for i := range n {
			if err := fn([]byte(`{"id":"x` + itoa(i) + `","qty":` + itoa(n-i) + `}`)); err != nil {
				return err
			}
		}
		return nil
	}
}

// A JOIN's rows multiply within one document: the deadline is checked per
// row, not only per document.
func TestExecute_TimeoutWithinDocument(t *testing.T) {
	arr := "[" + strings.Repeat("1,", 1999) + "1]"
	doc := []byte(`{"id":"x","a":` + arr + `,"b":` + arr + `,"c":` + arr + `}`)
	src := func(ctx context.Context, fn func([]byte) error) error { return fn(doc) }
	start := time.Now()
	_, err := query.Execute(context.Background(), query.Request{Query: `SELECT VALUE COUNT(1) FROM c JOIN x IN c.a JOIN y IN c.b JOIN z IN c.c`},
		src, query.Options{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, query.ErrTimeout) {
		t.Fatalf("Execute of 8e9 joined rows: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stopped after %s, want about 100ms", d)
	}
}

// Values a query builds are bounded: without the bound these would build
// 20 MiB strings and arrays per row from a 1 MiB property, and more with a
// longer query text.
func TestExecute_ValueTooLarge(t *testing.T) {
	doc := []byte(`{"id":"x","s":"` + strings.Repeat("a", 1<<20) + `"}`)
	src := func(ctx context.Context, fn func([]byte) error) error { return fn(doc) }
	twenty := func(sep string) string { return strings.TrimSuffix(strings.Repeat("c.s"+sep, 20), sep) }
	for _, q := range []string{
		`SELECT VALUE [` + twenty(",") + `] FROM c`,
		`SELECT VALUE ` + twenty(" || ") + ` FROM c`,
		`SELECT VALUE CONCAT(` + twenty(",") + `) FROM c`,
		`SELECT c.s AS a1, c.s AS a2, c.s AS a3, c.s AS a4, c.s AS a5, c.s AS a6, c.s AS a7, c.s AS a8, c.s AS a9, c.s AS a10,
			c.s AS a11, c.s AS a12, c.s AS a13, c.s AS a14, c.s AS a15, c.s AS a16, c.s AS a17 FROM c`,
		`SELECT VALUE COUNT(1) FROM c GROUP BY [` + twenty(",") + `]`,
	} {
		_, err := query.Execute(context.Background(), query.Request{Query: q}, src, query.Options{})
		if !errors.Is(err, query.ErrTooLarge) {
			t.Errorf("Execute(%.60s...): %v, want ErrTooLarge", q, err)
		}
	}
	_, err := query.Execute(context.Background(), query.Request{Query: `SELECT VALUE {"a": 1, "a": 2}`}, src, query.Options{})
	if !errors.Is(err, query.ErrBadQuery) || !strings.Contains(err.Error(), `duplicate property "a"`) {
		t.Errorf("object literal with a duplicate key: %v, want a bad query", err)
	}
}
