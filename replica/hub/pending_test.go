package hub_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
)

// edgePending is the hub's view of an edge's pending writes.
func edgePending(t *testing.T, h *hub.Hub, name string) (pending int64, online bool) {
	t.Helper()
	edges, err := h.Edges(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range edges {
		if e.Name == name {
			return e.Pending, e.Online
		}
	}
	t.Fatalf("edge %s not listed", name)
	return 0, false
}

// TestEdges_PendingFollowsTheEdge: the pending count the hub lists for an
// edge follows the edge as its writes get their outcomes, not the count it
// had when it connected; and it is kept when the edge goes away.
func TestEdges_PendingFollowsTheEdge(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "notes", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	a := c.edge("a", nil)
	eventually(t, 5*time.Second, func() error { _, err := a.r.Container("notes"); return err })
	a.disconnect()
	const n = 5
	for i := range n {
		if _, err := a.r.Create(ctx, "notes", fmt.Appendf(nil, `{"id":"n%d","pk":"x"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.r.Pending(); got != n {
		t.Fatalf("edge Pending()=%d before it connects, want %d", got, n)
	}
	a.connect()
	eventually(t, 5*time.Second, a.synced)
	eventually(t, 5*time.Second, func() error {
		if got, online := edgePending(t, c.hub, "a"); got != 0 || !online {
			return fmt.Errorf("hub lists edge a with pending=%d online=%v, want 0 and online", got, online)
		}
		return nil
	})
	a.disconnect()
	eventually(t, 5*time.Second, func() error {
		got, online := edgePending(t, c.hub, "a")
		if online {
			return errors.New("edge a still online")
		}
		if got != 0 {
			t.Fatalf("hub lists offline edge a with pending=%d, want 0 as it last reported", got)
		}
		return nil
	})
}
