package edge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime/metrics"
	"slices"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/query"
	"github.com/edgesync/edgesync/replica/query/querytest"
	"github.com/edgesync/edgesync/replica/wire"
)

// productPaths are every property path of the query cases' data set.
var productPaths = []string{"/active", "/category", "/dims", "/id", "/items", "/name", "/owner", "/owner/address",
	"/owner/address/lines", "/owner/address/zip", "/owner/city", "/owner/name", "/price", "/price2", "/qty", "/tags"}

// withoutSystem decodes a JSON result and drops the system properties an
// edge adds to documents, wherever they are.
func withoutSystem(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	var strip func(any) any
	strip = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range []string{"_ts", "_etag", "_lsn", "_crts", "_tentative"} {
				delete(v, k)
			}
			for k, x := range v {
				v[k] = strip(x)
			}
		case []any:
			for i, x := range v {
				v[i] = strip(x)
			}
		}
		return v
	}
	return strip(v)
}

// The query cases give the same result on an edge replica whether no path
// is indexed or every path of the data set is: the planner's index scans
// select every document a scan would keep, in the scan's order.
func TestReplica_QueryCasesIndexed(t *testing.T) {
	ctx := context.Background()
	r := edge.New(edge.Config{Dir: t.TempDir(), Durability: "normal"})
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(ctx) })
	def := replica.Container{Name: "products", PartitionKey: "/id"}
	if _, _, err := r.PutContainer(ctx, def); err != nil {
		t.Fatal(err)
	}
	var docs []json.RawMessage
	if err := json.Unmarshal(querytest.Products, &docs); err != nil {
		t.Fatal(err)
	}
	byID := map[string][]byte{}
	for _, d := range docs {
		it, err := r.Create(ctx, "products", d)
		if err != nil {
			t.Fatal(err)
		}
		byID[it.ID] = d
	}
	run := func(indexed bool) [][]byte {
		var out [][]byte
		used := 0
		for _, tc := range querytest.Cases {
			var ps []query.Parameter
			if tc.Params != "" {
				if err := json.Unmarshal([]byte(tc.Params), &ps); err != nil {
					t.Fatal(err)
				}
			}
			p, err := r.Query(ctx, "products", query.Request{Query: tc.Query, Parameters: ps, Limit: 1000, Explain: true}, "", query.Options{})
			if err != nil {
				t.Fatalf("%s: %v", tc.Name, err)
			}
			if p.Plan.Scan == "index" {
				used++
				if !indexed {
					t.Fatalf("%s: plan %+v without indexes", tc.Name, p.Plan)
				}
			}
			got, err := json.Marshal(p.Documents)
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.WantJSON(byID); !reflect.DeepEqual(withoutSystem(t, got), withoutSystem(t, []byte(want))) {
				t.Errorf("%s (indexed %v, plan %+v): %s\n got %s\nwant %s", tc.Name, indexed, p.Plan, tc.Query, got, want)
			}
			out = append(out, got)
		}
		if indexed && used < 50 {
			t.Errorf("%d cases used an index, want at least 50", used)
		}
		t.Logf("indexed %v: %d of %d cases used an index", indexed, used, len(querytest.Cases))
		return out
	}
	scanned := run(false)
	def.IndexingPolicy = &replica.IndexingPolicy{Paths: productPaths}
	if _, _, err := r.PutContainer(ctx, def); err != nil {
		t.Fatal(err)
	}
	indexed := run(true)
	for i := range scanned {
		if !bytes.Equal(scanned[i], indexed[i]) {
			t.Errorf("%s: scanned %s, indexed %s", querytest.Cases[i].Name, scanned[i], indexed[i])
		}
	}
	// Dropping the policy drops the index: every query scans again.
	def.IndexingPolicy = nil
	if _, _, err := r.PutContainer(ctx, def); err != nil {
		t.Fatal(err)
	}
	again := run(false)
	for i := range scanned {
		if !bytes.Equal(scanned[i], again[i]) {
			t.Errorf("%s after dropping the index: %s, want %s", querytest.Cases[i].Name, again[i], scanned[i])
		}
	}
}

// indexValues are the values the model test writes at indexed paths: every
// type, equal numbers written differently, and undefined ("").
var indexValues = []string{"", `1`, `1.0`, `2`, `2.5`, `-3`, `"a"`, `"b"`, `"B"`, `"ab"`, `true`, `false`, `null`, `[1]`, `{"n":1}`}

func modelBody(rng *rand.Rand, id string) []byte {
	b := fmt.Sprintf(`{"id":%q,"pk":"p"`, id)
	if v := indexValues[rng.IntN(len(indexValues))]; v != "" {
		b += `,"v":` + v
	}
	switch rng.IntN(3) {
	case 0:
		b += `,"o":{"n":` + indexValues[1+rng.IntN(len(indexValues)-1)] + `}`
	case 1:
		b += `,"o":5`
	}
	return []byte(b + `}`)
}

// The index follows the local view through random local creates,
// replaces and deletes, confirmations, lost and rejected writes and
// other nodes' changes: indexed queries return what the same queries
// return by a scan (an OR keeps the planner off the index).
func TestReplica_IndexModel(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := edge.New(edge.Config{Dir: dir, Durability: "normal"})
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(ctx) })
	if _, _, err := r.PutContainer(ctx, replica.Container{Name: "m", PartitionKey: "/pk",
		IndexingPolicy: &replica.IndexingPolicy{Paths: []string{"/v", "/o/n"}}}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	lsn, remote := int64(0), 0
	ids := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"}
	queries := []struct{ indexed, scanned string }{
		{`SELECT VALUE c.id FROM c WHERE c.v = @x`, `SELECT VALUE c.id FROM c WHERE c.v = @x OR false`},
		{`SELECT c.id, c.v FROM c WHERE c.v >= @x AND c.v < @y ORDER BY c.v`, `SELECT c.id, c.v FROM c WHERE (c.v >= @x AND c.v < @y) OR false ORDER BY c.v`},
		{`SELECT c.id, c.v FROM c WHERE c.v > @x ORDER BY c.v DESC`, `SELECT c.id, c.v FROM c WHERE c.v > @x OR false ORDER BY c.v DESC`},
		{`SELECT TOP 3 VALUE c.id FROM c WHERE c.v <= @y ORDER BY c.v`, `SELECT TOP 3 VALUE c.id FROM c WHERE c.v <= @y OR false ORDER BY c.v`},
		{`SELECT VALUE c.id FROM c WHERE c.o.n IN (@x, @y)`, `SELECT VALUE c.id FROM c WHERE c.o.n IN (@x, @y) OR false`},
		{`SELECT VALUE c.id FROM c WHERE c.o.n BETWEEN @x AND @y AND c.v != null`, `SELECT VALUE c.id FROM c WHERE (c.o.n BETWEEN @x AND @y AND c.v != null) OR false`},
		{`SELECT VALUE COUNT(1) FROM c WHERE c.v = @x`, `SELECT VALUE COUNT(1) FROM c WHERE c.v = @x OR false`},
	}
	check := func(step int) {
		t.Helper()
		for _, q := range queries {
			x := indexValues[1+rng.IntN(len(indexValues)-1)]
			y := indexValues[1+rng.IntN(len(indexValues)-1)]
			ps := []query.Parameter{{Name: "@x", Value: json.RawMessage(x)}, {Name: "@y", Value: json.RawMessage(y)}}
			run := func(text string) (string, *query.Plan) {
				p, err := r.Query(ctx, "m", query.Request{Query: text, Parameters: ps, Limit: 1000, Explain: true}, "", query.Options{})
				if err != nil {
					t.Fatalf("step %d: %s: %v", step, text, err)
				}
				b, _ := json.Marshal(p.Documents)
				return string(b), p.Plan
			}
			got, plan := run(q.indexed)
			want, scan := run(q.scanned)
			if scan.Scan != "full" {
				t.Fatalf("%s: plan %+v", q.scanned, scan)
			}
			if got != want {
				t.Fatalf("step %d: %s with @x=%s @y=%s (plan %+v)\n got %s\nwant %s", step, q.indexed, x, y, plan, got, want)
			}
		}
	}
	var versions []string
	for step := range 400 {
		id := ids[rng.IntN(len(ids))]
		switch op := rng.IntN(10); {
		case op < 4:
			if _, _, err := r.Upsert(ctx, "m", "", modelBody(rng, id), edge.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
		case op < 5:
			if err := r.Delete(ctx, "m", id, edge.WriteOptions{}); err != nil && !errors.Is(err, replica.ErrNotFound) {
				t.Fatal(err)
			}
		case op < 8:
			// The outcome of the oldest pending write.
			out, _, err := r.Outbox(ctx, 0, 1, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) == 0 {
				continue
			}
			v := out[0]
			o := wire.Outcome{Version: v.Version, Container: "m", ID: v.ID}
			switch rng.IntN(4) {
			case 0, 1:
				lsn++
				o.Outcome, o.LSN, o.CRTS = replica.OutcomeConfirmed, lsn, lsn
			case 2:
				// Another node's version wins: it arrives, then the outcome.
				lsn++
				remote++
				c := wire.Change{LSN: lsn, CRTS: lsn, Container: "m", Op: replica.OpReplace, ID: v.ID, PK: "p",
					Version: fmt.Sprintf("n2-%d", remote), Origin: "n2", TS: lsn, Body: modelBody(rng, v.ID)}
				if err := r.ApplyConfirmed(ctx, nil, []wire.Change{c}, lsn); err != nil {
					t.Fatal(err)
				}
				o.Outcome, o.LSN, o.Reason = replica.OutcomeLost, lsn, "lww: existing wins"
			default:
				o.Outcome, o.Reason = replica.OutcomeRejected, "outside scope"
			}
			if err := r.ApplyOutcomes(ctx, []wire.Outcome{o}, 0); err != nil {
				t.Fatal(err)
			}
			versions = append(versions, o.Outcome)
		default:
			// Another node's change.
			lsn++
			remote++
			c := wire.Change{LSN: lsn, CRTS: lsn, Container: "m", Op: replica.OpReplace, ID: id, PK: "p",
				Version: fmt.Sprintf("n2-%d", remote), Origin: "n2", TS: lsn, Body: modelBody(rng, id)}
			if rng.IntN(4) == 0 {
				c.Op, c.Body = replica.OpDelete, nil
			}
			if err := r.ApplyConfirmed(ctx, nil, []wire.Change{c}, lsn); err != nil {
				t.Fatal(err)
			}
		}
		if step%10 == 9 {
			check(step)
		}
	}
	if len(versions) < 50 {
		t.Fatalf("%d outcomes applied, want at least 50", len(versions))
	}
	// Reopened, the index is as it was.
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r = edge.New(edge.Config{Dir: dir, Durability: "normal"})
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	check(-1)
}

// Index scans that select more than a chunk of items return every one
// once, in id order without ORDER BY and in the index's order with it.
func TestReplica_IndexScanAcrossChunks(t *testing.T) {
	ctx := context.Background()
	r := edge.New(edge.Config{Dir: t.TempDir(), Durability: "normal"})
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(ctx) })
	if _, _, err := r.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk",
		IndexingPolicy: &replica.IndexingPolicy{Paths: []string{"/n", "/k"}}}); err != nil {
		t.Fatal(err)
	}
	n := 2*edge.QueryChunk + 37
	for i := range n {
		// n descends as the id ascends; k is the same for every item.
		if _, err := r.Create(ctx, "c", fmt.Appendf(nil, `{"id":"i%05d","pk":"p","n":%d,"k":"same"}`, i, n-i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		query string
		first string // the first id of the result
		order string
	}{
		{`SELECT VALUE c.id FROM c WHERE c.n >= 1`, "i00000", ""},
		{`SELECT VALUE c.id FROM c WHERE c.k = "same"`, "i00000", ""},
		{`SELECT VALUE c.id FROM c WHERE c.k IN ("same", "other")`, "i00000", ""},
		{`SELECT VALUE c.id FROM c WHERE c.n >= 1 ORDER BY c.n`, fmt.Sprintf("i%05d", n-1), "asc"},
		{`SELECT VALUE c.id FROM c WHERE c.n >= 1 ORDER BY c.n DESC`, "i00000", "desc"},
	} {
		p, err := r.Query(ctx, "c", query.Request{Query: tc.query, Limit: 1000, Explain: true}, "", query.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Plan.Scan != "index" || p.Plan.Order != tc.order {
			t.Fatalf("%s: plan %+v", tc.query, p.Plan)
		}
		var all []string
		req := query.Request{Query: tc.query, Limit: 1000}
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("more than 10 pages")
			}
			p, err := r.Query(ctx, "c", req, "", query.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range p.Documents {
				var id string
				if err := json.Unmarshal(d, &id); err != nil {
					t.Fatal(err)
				}
				all = append(all, id)
			}
			if p.Continuation == "" {
				break
			}
			req.Continuation = p.Continuation
		}
		if len(all) != n || all[0] != tc.first {
			t.Fatalf("%s: %d ids from %s, want %d from %s", tc.query, len(all), all[0], n, tc.first)
		}
		sorted := slices.IsSorted(all)
		if rev := slices.Clone(all); tc.order == "asc" {
			slices.Reverse(rev)
			sorted = slices.IsSorted(rev)
		}
		if !sorted || len(slices.Compact(slices.Clone(all))) != n {
			t.Fatalf("%s: ids out of order or repeated", tc.query)
		}
	}
}

// An indexed query runs its statements without starting goroutines (a
// context that can end makes the driver watch it with two per statement),
// and still stops once its context ends or its time is up.
func TestReplica_IndexedQueryStartsNoGoroutines(t *testing.T) {
	ctx := context.Background()
	r := edge.New(edge.Config{Dir: t.TempDir(), Durability: "normal"})
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(ctx) })
	if _, _, err := r.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk",
		IndexingPolicy: &replica.IndexingPolicy{Paths: []string{"/n", "/k"}}}); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if _, err := r.Create(ctx, "c", fmt.Appendf(nil, `{"id":"i%05d","pk":"p","n":%d,"k":"k%d"}`, i, i, i%10)); err != nil {
			t.Fatal(err)
		}
	}
	queries := []string{
		`SELECT * FROM c WHERE c.k = "k3"`,
		`SELECT * FROM c WHERE c.n >= 100 AND c.n < 200 ORDER BY c.n OFFSET 0 LIMIT 20`,
		`SELECT VALUE c.id FROM c WHERE c.n >= 250`,
	}
	opt := query.Options{Timeout: time.Minute}
	for _, q := range queries {
		p, err := r.Query(ctx, "c", query.Request{Query: q, Explain: true}, "", opt)
		if err != nil {
			t.Fatal(err)
		}
		if p.Plan.Scan != "index" || len(p.Documents) == 0 {
			t.Fatalf("%s: plan %+v, %d documents", q, p.Plan, len(p.Documents))
		}
	}
	created := func() uint64 {
		s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
		metrics.Read(s)
		if s[0].Value.Kind() != metrics.KindUint64 {
			t.Skip("runtime/metrics has no /sched/goroutines-created")
		}
		return s[0].Value.Uint64()
	}
	const runs = 100
	before := created()
	for range runs {
		for _, q := range queries {
			if _, err := r.Query(ctx, "c", query.Request{Query: q}, "", opt); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The replica's own goroutines may start a few meanwhile.
	if got := created() - before; got > runs/10 {
		t.Errorf("%d indexed queries started %d goroutines, want at most %d", runs*len(queries), got, runs/10)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for _, q := range queries {
		if _, err := r.Query(cctx, "c", query.Request{Query: q}, "", opt); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with its context canceled: %v, want %v", q, err, context.Canceled)
		}
		if _, err := r.Query(ctx, "c", query.Request{Query: q}, "", query.Options{Timeout: time.Nanosecond}); !errors.Is(err, query.ErrTimeout) {
			t.Errorf("%s with a timeout of 1ns: %v, want %v", q, err, query.ErrTimeout)
		}
	}
}
