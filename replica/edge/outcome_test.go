package edge_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/wire"
)

// TestReplica_ApplyOutcomes_unknownContainerKeepsWrite: a write the hub
// rejects because it does not have the container stays in the outbox,
// tentative and readable, and the container's writes are held and reported,
// while a write rejected for another reason is settled as before.
func TestReplica_ApplyOutcomes_unknownContainerKeepsWrite(t *testing.T) {
	ctx := context.Background()
	r := openReplica(t, t.TempDir())
	defineProducts(t, r)
	if _, _, err := r.PutContainer(ctx, replica.Container{Name: "notes", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	n1, err := r.Create(ctx, "notes", []byte(`{"id":"n1","pk":"a"}`))
	if err != nil {
		t.Fatal(err)
	}
	p1, err := r.Create(ctx, "products", []byte(`{"id":"p1","category":"tools"}`))
	if err != nil {
		t.Fatal(err)
	}
	err = r.ApplyOutcomes(ctx, []wire.Outcome{
		{Version: n1.Version, Container: "notes", ID: "n1", Outcome: replica.OutcomeRejected,
			Reason: fmt.Errorf("%w: %q", replica.ErrContainerNotFound, "notes").Error()},
		{Version: p1.Version, Container: "products", ID: "p1", Outcome: replica.OutcomeRejected, Reason: "invalid document"},
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Pending(), int64(1); got != want {
		t.Errorf("Pending()=%d, want %d (n1 kept, p1 settled)", got, want)
	}
	got, err := r.Get(ctx, "notes", "n1", edge.ReadOptions{})
	if err != nil || !got.Tentative || got.Version != n1.Version {
		t.Errorf("Get(notes, n1)=%+v, %v; want the tentative version %s", got, err, n1.Version)
	}
	if got, want := r.SyncState().Mismatched, []string{"notes"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SyncState().Mismatched=%v, want %v", got, want)
	}
	out, _, err := r.Outbox(ctx, 0, 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 0 {
		t.Errorf("Outbox()=%+v, want nothing to push (notes held)", out)
	}
}
