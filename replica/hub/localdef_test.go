package hub_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/wire"
)

// connected waits until e's sync session is up and it has applied the log.
func (e *testEdge) connected(t *testing.T) {
	t.Helper()
	eventually(t, 5*time.Second, func() error {
		if !e.s.Status().Connected {
			return fmt.Errorf("%s: not connected", e.name)
		}
		return e.synced()
	})
}

// TestSync_ContainerDefinedWhileConnected defines a container on an edge
// whose session is up: the hub creates it, the edge's writes to it are
// confirmed, and a second edge whose scope names it receives them.
func TestSync_ContainerDefinedWhileConnected(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "orders", PartitionKey: "/territory"}); err != nil {
		t.Fatal(err)
	}
	a := c.edge("a", nil)
	b := c.edge("b", []wire.ScopeEntry{{Container: "notes"}})
	a.connected(t)
	b.connected(t)
	if _, _, err := a.r.PutContainer(ctx, replica.Container{Name: "notes", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	var written []replica.Item
	for _, d := range []string{`{"id":"n1","pk":"x"}`, `{"id":"n2","pk":"y"}`} {
		it, err := a.r.Create(ctx, "notes", []byte(d))
		if err != nil {
			t.Fatal(err)
		}
		written = append(written, it)
	}
	eventually(t, 10*time.Second, func() error { return errors.Join(a.synced(), b.synced()) })
	def, err := c.hub.Container("notes")
	if err != nil || def.PartitionKey != "/pk" {
		t.Fatalf("hub: Container(notes)=%+v, %v; want the edge's definition (/pk)", def, err)
	}
	for _, w := range written {
		at, err := c.hub.Get(ctx, "notes", w.ID)
		if err != nil || at.Version != w.Version || at.LSN == 0 {
			t.Errorf("hub: Get(notes, %s)=%+v, %v; want version %s confirmed", w.ID, at, err, w.Version)
		}
		for _, e := range []*testEdge{a, b} {
			got, err := e.r.Get(ctx, "notes", w.ID, edge.ReadOptions{Consistency: edge.ConsistencyConfirmed})
			if err != nil || got.Version != w.Version || got.Tentative {
				t.Errorf("edge %s: confirmed Get(notes, %s)=%+v, %v; want version %s", e.name, w.ID, got, err, w.Version)
			}
		}
	}
}

// TestSync_ContainerDefinedOutsideScopeWhileConnected defines, on a
// connected edge, a container its scope does not cover: the edge reports
// it as mismatched, a write to it fails at once, and the edge goes on
// syncing the containers it may write.
func TestSync_ContainerDefinedOutsideScopeWhileConnected(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "orders", PartitionKey: "/territory"}); err != nil {
		t.Fatal(err)
	}
	e := c.edge("laptop-7", []wire.ScopeEntry{{Container: "orders"}})
	e.connected(t)
	if _, _, err := e.r.PutContainer(ctx, replica.Container{Name: "notes", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if got, want := e.r.SyncState().Mismatched, []string{"notes"}; !reflect.DeepEqual(got, want) {
			return fmt.Errorf("SyncState().Mismatched=%v, want %v", got, want)
		}
		return nil
	})
	if _, err := e.r.Create(ctx, "notes", []byte(`{"id":"n1","pk":"x"}`)); !errors.Is(err, replica.ErrForbidden) {
		t.Fatalf("Create(notes) err=%v, want ErrForbidden", err)
	}
	if _, err := c.hub.Container("notes"); !errors.Is(err, replica.ErrContainerNotFound) {
		t.Fatalf("hub: Container(notes) err=%v, want ErrContainerNotFound", err)
	}
	o, err := e.r.Create(ctx, "orders", []byte(`{"id":"o1","territory":"t7"}`))
	if err != nil {
		t.Fatal(err)
	}
	e.connected(t)
	if at, err := c.hub.Get(ctx, "orders", "o1"); err != nil || at.Version != o.Version {
		t.Fatalf("hub: Get(orders, o1)=%+v, %v; want version %s", at, err, o.Version)
	}
}

// TestSync_ContainerDefinitionClashWhileConnected defines, on a connected
// edge, a container the hub already has with another partition key path
// (created at the hub after the edge's welcome, with no items yet, so the
// edge has not heard of it): the edge holds the writes to it, tentative and
// pending, and reports the mismatch; the hub gets none of them.
func TestSync_ContainerDefinitionClashWhileConnected(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "orders", PartitionKey: "/territory"}); err != nil {
		t.Fatal(err)
	}
	e := c.edge("field", nil)
	e.connected(t)
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "clash", PartitionKey: "/a"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.r.PutContainer(ctx, replica.Container{Name: "clash", PartitionKey: "/b"}); err != nil {
		t.Fatal(err)
	}
	k1, err := e.r.Create(ctx, "clash", []byte(`{"id":"k1","a":"p","b":"q"}`))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if got, want := e.r.SyncState().Mismatched, []string{"clash"}; !reflect.DeepEqual(got, want) {
			return fmt.Errorf("SyncState().Mismatched=%v, want %v", got, want)
		}
		if !e.s.Status().Connected {
			return errors.New("not connected")
		}
		return nil
	})
	// A write to another container is pushed and confirmed after k1 was
	// written: had k1 been pushed, its outcome would have come first.
	if _, err := e.r.Create(ctx, "orders", []byte(`{"id":"o1","territory":"t7"}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		got, err := e.r.Get(ctx, "orders", "o1", edge.ReadOptions{})
		if err != nil || got.Tentative {
			return fmt.Errorf("edge: Get(orders, o1)=%+v, %v; want confirmed", got, err)
		}
		return nil
	})
	if got, want := e.r.Pending(), int64(1); got != want {
		t.Errorf("Pending()=%d, want %d (k1 held)", got, want)
	}
	if got, err := e.r.Get(ctx, "clash", "k1", edge.ReadOptions{}); err != nil || !got.Tentative || got.Version != k1.Version {
		t.Errorf("edge: Get(clash, k1)=%+v, %v; want tentative version %s (held, not dropped)", got, err, k1.Version)
	}
	if at, err := c.hub.Get(ctx, "clash", "k1"); !errors.Is(err, replica.ErrNotFound) {
		t.Errorf("hub: Get(clash, k1)=%+v, %v; want not found (held at the edge)", at, err)
	}
}
