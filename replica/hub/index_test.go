package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
	"github.com/edgesync/edgesync/replica/query"
	"github.com/edgesync/edgesync/replica/query/querytest"
	"github.com/edgesync/edgesync/replica/wire"
)

// productPaths are every property path of the query cases' data set.
var productPaths = []string{"/active", "/category", "/dims", "/id", "/items", "/name", "/owner", "/owner/address",
	"/owner/address/lines", "/owner/address/zip", "/owner/city", "/owner/name", "/price", "/price2", "/qty", "/tags"}

func openIndexHub(t *testing.T) *hub.Hub {
	t.Helper()
	ctx := context.Background()
	h := hub.New(hub.Config{Store: newStore(t, t.TempDir())})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// waitIndexed waits until the built paths of a container's index are want.
func waitIndexed(t *testing.T, h *hub.Hub, container string, want []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := h.IndexedPaths(context.Background(), container)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("IndexedPaths(%s)=%v, want %v", container, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stripSystem decodes a JSON result and drops the system properties a hub
// adds to documents, wherever they are.
func stripSystem(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	var strip func(any) any
	strip = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range []string{"_ts", "_etag", "_lsn", "_crts"} {
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

// The query cases that run on edges give the same result on a hub whether
// no path is indexed or every path of the data set is, and again once the
// policy is dropped: the hub plans them as an edge does.
func TestHub_QueryCasesIndexed(t *testing.T) {
	ctx := context.Background()
	h := openIndexHub(t)
	def := replica.Container{Name: "products", PartitionKey: "/id"}
	if _, _, err := h.PutContainer(ctx, def); err != nil {
		t.Fatal(err)
	}
	var docs []json.RawMessage
	if err := json.Unmarshal(querytest.Products, &docs); err != nil {
		t.Fatal(err)
	}
	byID := map[string][]byte{}
	for _, d := range docs {
		it, err := h.Create(ctx, "products", d)
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
			p, err := h.Query(ctx, "products", query.Request{Query: tc.Query, Parameters: ps, Limit: 1000, Explain: true}, query.Options{})
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
			if want := tc.WantJSON(byID); !reflect.DeepEqual(stripSystem(t, got), stripSystem(t, []byte(want))) {
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
	if _, _, err := h.PutContainer(ctx, def); err != nil {
		t.Fatal(err)
	}
	waitIndexed(t, h, "products", productPaths)
	indexed := run(true)
	for i := range scanned {
		if !bytes.Equal(scanned[i], indexed[i]) {
			t.Errorf("%s: scanned %s, indexed %s", querytest.Cases[i].Name, scanned[i], indexed[i])
		}
	}
	def.IndexingPolicy = nil
	if _, _, err := h.PutContainer(ctx, def); err != nil {
		t.Fatal(err)
	}
	waitIndexed(t, h, "products", nil)
	again := run(false)
	for i := range scanned {
		if !bytes.Equal(scanned[i], again[i]) {
			t.Errorf("%s after dropping the index: %s, want %s", querytest.Cases[i].Name, again[i], scanned[i])
		}
	}
}

// queryIDs runs a query returning ids and its plan.
func queryIDs(t *testing.T, h *hub.Hub, container, q string, params ...query.Parameter) ([]string, *query.Plan) {
	t.Helper()
	p, err := h.Query(context.Background(), container, query.Request{Query: q, Parameters: params, Limit: 1000, Explain: true}, query.Options{})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	ids := []string{}
	for _, d := range p.Documents {
		var id string
		if err := json.Unmarshal(d, &id); err != nil {
			t.Fatalf("%s: %s: %v", q, d, err)
		}
		ids = append(ids, id)
	}
	return ids, p.Plan
}

// checkIndex checks that the index of path /v of a container selects the
// items model says hold each value, and orders them as the model does.
// The equality and the ordered range are exact scans (the evaluator does
// not check WHERE again), so an entry the index kept for an older version
// shows in their results.
func checkIndex(t *testing.T, h *hub.Hub, container string, model map[string]float64) {
	t.Helper()
	values := map[float64][]string{}
	var all []string
	for id, v := range model {
		values[v] = append(values[v], id)
		all = append(all, id)
	}
	for i := range 12 {
		v := float64(i)
		got, plan := queryIDs(t, h, container, `SELECT VALUE c.id FROM c WHERE c.v = @v`, query.Parameter{Name: "@v", Value: json.RawMessage(fmt.Sprint(v))})
		if plan.Scan != "index" || plan.Use != "equality" || plan.Filter != "" {
			t.Fatalf("v = %v: plan %+v, want an exact equality scan of the index", v, plan)
		}
		want := values[v]
		slices.Sort(want)
		if want == nil {
			want = []string{}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: ids with v = %v: %v, want %v", container, v, got, want)
		}
	}
	got, plan := queryIDs(t, h, container, `SELECT VALUE c.id FROM c WHERE c.v >= 0 ORDER BY c.v DESC`)
	if plan.Scan != "index" || plan.Order != "desc" || plan.Filter != "" {
		t.Fatalf("range: plan %+v, want an exact descending scan of the index", plan)
	}
	slices.SortFunc(all, func(a, b string) int {
		if model[a] != model[b] {
			if model[a] > model[b] {
				return -1
			}
			return 1
		}
		if a < b {
			return -1
		}
		return 1
	})
	if all == nil {
		all = []string{}
	}
	if !slices.Equal(got, all) {
		t.Errorf("%s: ids by v descending: %v, want %v", container, got, all)
	}
}

// valueOf reads an item's /v at the hub.
func valueOf(t *testing.T, h *hub.Hub, container, id string) float64 {
	t.Helper()
	it, err := h.Get(context.Background(), container, id)
	if err != nil {
		t.Fatal(err)
	}
	var d struct{ V float64 }
	if err := json.Unmarshal(it.Body, &d); err != nil {
		t.Fatal(err)
	}
	return d.V
}

// A hub's index follows every way an item's current version changes, in
// the transaction that changes it: writes at the hub (create, replace,
// delete), pushed versions (a new item, a replace, a conflict's winner
// either way, a merge), and definition changes (a path added is built for
// the items written before, a path removed is no longer used).
func TestHub_IndexFollowsWrites(t *testing.T) {
	defer hub.SetIndexBuildBatch(3)()
	ctx := context.Background()
	h := openIndexHub(t)
	policy := &replica.IndexingPolicy{Paths: []string{"/v"}}
	for _, c := range []replica.Container{
		{Name: "c", PartitionKey: "/pk", IndexingPolicy: policy},
		{Name: "m", PartitionKey: "/pk", IndexingPolicy: policy, ConflictPolicy: replica.ConflictPolicy{Mode: replica.ModeMerge}},
	} {
		if _, _, err := h.PutContainer(ctx, c); err != nil {
			t.Fatal(err)
		}
		waitIndexed(t, h, c.Name, []string{"/v"})
	}
	model := map[string]float64{}
	push := func(node string, v wire.Version) wire.Outcome {
		t.Helper()
		out, _, err := h.Push(ctx, node, nil, []wire.Version{v})
		if err != nil {
			t.Fatal(err)
		}
		return out[0]
	}

	// Writes at the hub.
	for _, id := range []string{"a", "b", "x"} {
		if _, err := h.Create(ctx, "c", fmt.Appendf(nil, `{"id":%q,"pk":"p","v":1}`, id)); err != nil {
			t.Fatal(err)
		}
		model[id] = 1
	}
	if _, _, err := h.Upsert(ctx, "c", "x", []byte(`{"id":"x","pk":"p","v":3}`), hub.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	model["x"] = 3
	if err := h.Delete(ctx, "c", "b", hub.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	delete(model, "b")
	checkIndex(t, h, "c", model)

	// Pushed: a new item (its item row is written before its version), a
	// replace, a conflict the incoming version wins (the item is set
	// before the version is stored) and one it loses (its version is
	// stored, not current).
	if o := push("n1", pushV("c", "z", replica.OpCreate, "n1-1", "", 100, `{"pk":"p","v":4}`)); o.Outcome != wire.OutcomeConfirmed {
		t.Fatalf("create: %+v", o)
	}
	if o := push("n1", pushV("c", "z", replica.OpReplace, "n1-2", "n1-1", 200, `{"pk":"p","v":6}`)); o.Outcome != wire.OutcomeConfirmed {
		t.Fatalf("replace: %+v", o)
	}
	if o := push("n2", pushV("c", "z", replica.OpReplace, "n2-1", "n1-1", 300, `{"pk":"p","v":5}`)); o.Outcome != wire.OutcomeConfirmed {
		t.Fatalf("conflict the incoming version wins: %+v", o)
	}
	if o := push("n3", pushV("c", "z", replica.OpReplace, "n3-1", "n1-1", 150, `{"pk":"p","v":7}`)); o.Outcome != wire.OutcomeLost {
		t.Fatalf("conflict the incoming version loses: %+v", o)
	}
	model["z"] = 5
	if o := push("n3", pushV("c", "a", replica.OpDelete, "n3-2", h.HubID()+"-1", 400, "")); o.Outcome != wire.OutcomeConfirmed {
		t.Fatalf("pushed delete: %+v", o)
	}
	delete(model, "a")
	checkIndex(t, h, "c", model)

	// A merge makes a new version at the hub.
	mmodel := map[string]float64{}
	push("n1", pushV("m", "x", replica.OpCreate, "n1-3", "", 100, `{"pk":"p","v":1,"w":1}`))
	push("n1", pushV("m", "x", replica.OpReplace, "n1-4", "n1-3", 200, `{"pk":"p","v":1,"w":2}`))
	o := push("n2", pushV("m", "x", replica.OpReplace, "n2-2", "n1-3", 300, `{"pk":"p","v":9,"w":1}`))
	mmodel["x"] = valueOf(t, h, "m", "x")
	if mmodel["x"] != 9 {
		t.Fatalf("merged v=%v (outcome %+v), want 9", mmodel["x"], o)
	}
	checkIndex(t, h, "m", mmodel)

	// A path added is built (three items per transaction here) for the
	// items written before it; the index of /v is kept meanwhile.
	for i := range 7 {
		if _, err := h.Create(ctx, "c", fmt.Appendf(nil, `{"id":"w%d","pk":"p","v":%d,"w":"s%d"}`, i, i%4, i%2)); err != nil {
			t.Fatal(err)
		}
		model[fmt.Sprintf("w%d", i)] = float64(i % 4)
	}
	def := replica.Container{Name: "c", PartitionKey: "/pk", IndexingPolicy: &replica.IndexingPolicy{Paths: []string{"/v", "/w"}}}
	if _, _, err := h.PutContainer(ctx, def); err != nil {
		t.Fatal(err)
	}
	waitIndexed(t, h, "c", []string{"/v", "/w"})
	got, plan := queryIDs(t, h, "c", `SELECT VALUE c.id FROM c WHERE c.w = "s1"`)
	if want := []string{"w1", "w3", "w5"}; plan.Scan != "index" || plan.Path != "/w" || !slices.Equal(got, want) {
		t.Errorf("w = s1: %v (plan %+v), want %v from the index of /w", got, plan, want)
	}
	checkIndex(t, h, "c", model)

	// A path removed: queries on it scan, with the same result.
	def.IndexingPolicy = &replica.IndexingPolicy{Paths: []string{"/w"}}
	if _, _, err := h.PutContainer(ctx, def); err != nil {
		t.Fatal(err)
	}
	waitIndexed(t, h, "c", []string{"/w"})
	got, plan = queryIDs(t, h, "c", `SELECT VALUE c.id FROM c WHERE c.v = 3`)
	if want := []string{"w3", "x"}; plan.Scan != "full" || !slices.Equal(got, want) {
		t.Errorf("v = 3 after /v was removed: %v (plan %+v), want %v from a full scan", got, plan, want)
	}
}

// explain on a hub shows the plan an edge shows for the same query: the
// index, what it answers and the order it reads in.
func TestHub_QueryExplainIndex(t *testing.T) {
	ctx := context.Background()
	h := openIndexHub(t)
	def := replica.Container{Name: "c", PartitionKey: "/pk", IndexingPolicy: &replica.IndexingPolicy{Paths: []string{"/price", "/owner/name"}}}
	if _, _, err := h.PutContainer(ctx, def); err != nil {
		t.Fatal(err)
	}
	waitIndexed(t, h, "c", []string{"/price", "/owner/name"})
	for i := range 30 {
		if _, err := h.Create(ctx, "c", fmt.Appendf(nil, `{"id":"i%02d","pk":"p","price":%d,"owner":{"name":"n%d"}}`, i, i, i%3)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, q string
		want    query.Plan
		ids     []string
	}{
		{name: "equality", q: `SELECT VALUE c.id FROM c WHERE c.owner.name = "n2" AND c.price < 10`,
			want: query.Plan{Scan: "index", Path: "/owner/name", Use: "equality", Filter: "WHERE"}, ids: []string{"i02", "i05", "i08"}},
		{name: "range in order", q: `SELECT TOP 3 VALUE c.id FROM c WHERE c.price > 20 ORDER BY c.price DESC`,
			want: query.Plan{Scan: "index", Path: "/price", Use: "range", Order: "desc"}, ids: []string{"i29", "i28", "i27"}},
		{name: "in", q: `SELECT VALUE c.id FROM c WHERE c.price IN (3, 1, 2)`,
			want: query.Plan{Scan: "index", Path: "/price", Use: "in", Filter: "WHERE"}, ids: []string{"i01", "i02", "i03"}},
		{name: "not indexed", q: `SELECT VALUE c.id FROM c WHERE c.pk = "q"`,
			want: query.Plan{Scan: "full", Filter: "WHERE"}, ids: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, plan := queryIDs(t, h, "c", tc.q)
			if *plan != tc.want {
				t.Errorf("plan %+v, want %+v", *plan, tc.want)
			}
			if !slices.Equal(got, tc.ids) {
				t.Errorf("ids %v, want %v", got, tc.ids)
			}
		})
	}
}

// On a tier, an index defined on one hub is used by every hub's queries,
// and a write another hub commits wakes this hub's waiters (what a live
// query waits on) and shows in its indexed result.
func TestTier_IndexedQueryOnEveryHub(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	a := newTierCluster(t, url, "a")
	b := newTierCluster(t, url, "b")
	def := replica.Container{Name: "products", PartitionKey: "/category", IndexingPolicy: &replica.IndexingPolicy{Paths: []string{"/price"}}}
	if _, _, err := a.hub.PutContainer(ctx, def); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error { _, err := b.hub.Container("products"); return err })
	waitIndexed(t, b.hub, "products", []string{"/price"})
	changed := b.hub.Changed()
	if _, err := a.hub.Create(ctx, "products", []byte(`{"id":"p1","category":"tools","price":7}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("a write on hub a did not wake hub b's waiters within 5s")
	}
	got, plan := queryIDs(t, b.hub, "products", `SELECT VALUE c.id FROM c WHERE c.price = 7`)
	if plan.Scan != "index" || !slices.Equal(got, []string{"p1"}) {
		t.Fatalf("hub b: %v (plan %+v), want [p1] from the index", got, plan)
	}
}

// An index scan reads hub.QueryChunk entries per read; one that goes on
// past a chunk resumes after the last entry read, in either order and for
// one value alike.
func TestHub_IndexScanAcrossChunks(t *testing.T) {
	ctx := context.Background()
	h := openIndexHub(t)
	def := replica.Container{Name: "c", PartitionKey: "/pk", IndexingPolicy: &replica.IndexingPolicy{Paths: []string{"/v"}}}
	if _, _, err := h.PutContainer(ctx, def); err != nil {
		t.Fatal(err)
	}
	waitIndexed(t, h, "c", []string{"/v"})
	n := 2*hub.QueryChunk + 500
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if _, err := h.Create(ctx, "c", fmt.Appendf(nil, `{"id":"i%05d","pk":"p","v":%d}`, i, i%2)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	id := func(i int) string { return fmt.Sprintf("i%05d", i) }
	// v descending, then id: the odd ids, then the even ones.
	var desc []string
	for i := 1; i < n; i += 2 {
		desc = append(desc, id(i))
	}
	for i := 0; i < n; i += 2 {
		desc = append(desc, id(i))
	}
	for _, off := range []int{hub.QueryChunk - 3, n/2 - 3, 2*hub.QueryChunk - 3} {
		got, plan := queryIDs(t, h, "c", fmt.Sprintf(`SELECT VALUE c.id FROM c WHERE c.v >= 0 ORDER BY c.v DESC OFFSET %d LIMIT 6`, off))
		if want := desc[off : off+6]; plan.Order != "desc" || !slices.Equal(got, want) {
			t.Errorf("descending at %d: %v (plan %+v), want %v", off, got, plan, want)
		}
		asc := append(desc[n/2:n:n], desc[:n/2]...)
		got, plan = queryIDs(t, h, "c", fmt.Sprintf(`SELECT VALUE c.id FROM c WHERE c.v >= 0 ORDER BY c.v OFFSET %d LIMIT 6`, off))
		if want := asc[off : off+6]; plan.Order != "asc" || !slices.Equal(got, want) {
			t.Errorf("ascending at %d: %v (plan %+v), want %v", off, got, plan, want)
		}
	}
	got, plan := queryIDs(t, h, "c", `SELECT VALUE c.id FROM c WHERE c.v = 1 OFFSET 1240 LIMIT 10`)
	if want := desc[1240:1250]; plan.Use != "equality" || !slices.Equal(got, want) {
		t.Errorf("one value past two chunks: %v (plan %+v), want %v", got, plan, want)
	}
}
