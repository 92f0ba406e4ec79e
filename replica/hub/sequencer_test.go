package hub_test

import (
	"context"
	"testing"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/wire"
)

// TestApplyPushed_StaleParse: a body parsed for another partition key path
// than the container has when the push is applied is parsed again, so the
// item gets the partition key the container defines now.
func TestApplyPushed_StaleParse(t *testing.T) {
	ctx := context.Background()
	h := hub.New(hub.Config{Store: newStore(t, t.TempDir())})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	if _, _, err := h.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	v := wire.Version{Container: "c", ID: "a", Op: replica.OpCreate, Version: "n1-1", TS: 1,
		Body: []byte(`{"id":"a","pk":"right","other":"wrong"}`)}
	o, err := h.PushParsedFor(ctx, "n1", &v, []string{"other"})
	if err != nil || o.Outcome != replica.OutcomeConfirmed {
		t.Fatalf("outcome %+v, err %v", o, err)
	}
	it, err := h.Get(ctx, "c", "a")
	if err != nil || it.PK != "right" {
		t.Fatalf("item %+v, err %v: want partition key %q", it, err, "right")
	}
}
