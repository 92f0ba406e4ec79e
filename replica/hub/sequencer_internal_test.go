package hub

import (
	"context"
	"testing"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/wire"
)

// TestApplyPushed_StaleParse: a body parsed for another partition key path
// than the container has when the push is applied is parsed again, so the
// item gets the partition key the container defines now.
func TestApplyPushed_StaleParse(t *testing.T) {
	ctx := context.Background()
	h := New(Config{Dir: t.TempDir(), Durability: "normal"})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	if _, _, err := h.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	v := wire.Version{Container: "c", ID: "a", Op: replica.OpCreate, Version: "n1-1", TS: 1,
		Body: []byte(`{"id":"a","pk":"right","other":"wrong"}`)}
	var fresh parsedBody
	fresh.parse(&h.defs, &v)
	if !fresh.ok || fresh.err != nil || fresh.doc.PK != "right" {
		t.Fatalf("parse: %+v", fresh)
	}
	stale := parsedBody{ok: true, pkPath: []string{"other"}}
	stale.doc, stale.err = replica.ParseDocument(v.Body, stale.pkPath)
	if stale.doc.PK != "wrong" {
		t.Fatalf("stale parse: %+v", stale)
	}
	var o wire.Outcome
	err := h.w.Do(ctx, func(ctx context.Context) error {
		var err error
		o, err = h.applyPushed(ctx, "n1", nil, &v, &stale, true)
		return err
	}, nil)
	if err != nil || o.Outcome != replica.OutcomeConfirmed {
		t.Fatalf("outcome %+v, err %v", o, err)
	}
	it, err := h.Get(ctx, "c", "a")
	if err != nil || it.PK != "right" {
		t.Fatalf("item %+v, err %v: want partition key %q", it, err, "right")
	}
}
