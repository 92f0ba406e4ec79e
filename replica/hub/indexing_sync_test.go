package hub_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/query"
)

// A container's indexing policy is part of its definition at the hub (the
// store conformance suite checks that it is stored): an edge learns it when it syncs and indexes
// those paths over the items it holds (queries then use the index), and a
// changed policy reaches the edge at its next connection.
func TestSync_EdgeIndexesTheHubsIndexingPolicy(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	def := replica.Container{Name: "products", PartitionKey: "/category",
		IndexingPolicy: &replica.IndexingPolicy{Paths: []string{"/price"}}}
	if _, _, err := c.hub.PutContainer(ctx, def); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		body := fmt.Sprintf(`{"id":"p%02d","category":"c%d","price":%d,"owner":"o%d"}`, i, i%3, i, i%5)
		if _, err := c.hub.Create(ctx, "products", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}

	e := c.edge("e1", nil)
	wantIndexed := func(q, path string) error {
		p, err := e.r.Query(ctx, "products", query.Request{Query: q, Explain: true}, "", query.Options{})
		if err != nil {
			return err
		}
		if p.Plan == nil || p.Plan.Scan != "index" || p.Plan.Path != path {
			return fmt.Errorf("%s: plan %+v, want an index scan of %s", q, p.Plan, path)
		}
		if len(p.Documents) != 1 {
			return fmt.Errorf("%s: %d documents, want 1", q, len(p.Documents))
		}
		return nil
	}
	eventually(t, 10*time.Second, func() error {
		if err := e.synced(); err != nil {
			return err
		}
		got, err := e.r.Container("products")
		if err != nil {
			return err
		}
		if got.IndexingPolicy == nil || !slices.Equal(got.IndexingPolicy.Paths, []string{"/price"}) {
			return fmt.Errorf("edge's definition %+v, want the indexing policy /price", got)
		}
		return wantIndexed(`SELECT * FROM c WHERE c.price = 7`, "/price")
	})

	// The hub indexes another path: the edge learns it when it connects
	// again, and keeps its items.
	def.IndexingPolicy = &replica.IndexingPolicy{Paths: []string{"/price", "/owner"}}
	if _, _, err := c.hub.PutContainer(ctx, def); err != nil {
		t.Fatal(err)
	}
	e.disconnect()
	e.connect()
	eventually(t, 10*time.Second, func() error {
		return wantIndexed(`SELECT * FROM c WHERE c.owner = "o3" AND c.id = "p08"`, "/owner")
	})
}
