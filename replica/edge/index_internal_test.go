package edge

import (
	"context"
	"fmt"
	"testing"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/query"
)

// A node stopped while it built an index finishes the build when it opens
// again; until then queries do not use the path.
func TestIndex_BuildResumesAtOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := New(Config{Dir: dir, Durability: "normal"})
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	def := replica.Container{Name: "c", PartitionKey: "/pk", IndexingPolicy: &replica.IndexingPolicy{Paths: []string{"/n"}}}
	if _, _, err := r.PutContainer(ctx, def); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := r.Create(ctx, "c", fmt.Appendf(nil, `{"id":"i%02d","pk":"p","n":%d}`, i, i%5)); err != nil {
			t.Fatal(err)
		}
	}
	// As a build cut short leaves it: the path listed, not ready, its
	// rows partly there.
	if err := r.submit(ctx, func(ctx context.Context) error {
		if _, err := r.w.Exec(ctx, `UPDATE idx_paths SET ready = 0`); err != nil {
			return err
		}
		_, err := r.w.Exec(ctx, `DELETE FROM idx WHERE id > 'i10'`)
		return err
	}, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.reloadReady(ctx); err != nil {
		t.Fatal(err)
	}
	req := query.Request{Query: `SELECT VALUE COUNT(1) FROM c WHERE c.n = 3`, Explain: true}
	p, err := r.Query(ctx, "c", req, "", query.Options{})
	if err != nil || p.Plan.Scan != "full" || string(p.Documents[0]) != "10" {
		t.Fatalf("before the build: %s, plan %+v, %v", p.Documents, p.Plan, err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r = New(Config{Dir: dir, Durability: "normal"})
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	p, err = r.Query(ctx, "c", req, "", query.Options{})
	if err != nil || p.Plan.Scan != "index" || string(p.Documents[0]) != "10" {
		t.Fatalf("after the build: %s, plan %+v, %v", p.Documents, p.Plan, err)
	}
	if got, err := r.Container("c"); err != nil || got.IndexingPolicy == nil || got.IndexingPolicy.Paths[0] != "/n" {
		t.Fatalf("definition after reopening: %+v, %v", got, err)
	}
}
