package web_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/wire"
)

// TestHub_MetricsPushOutOfOrder: a push held back for a version written
// over an earlier one the hub has not decided counts in
// edgesync_hub_push_out_of_order_total.
func TestHub_MetricsPushOutOfOrder(t *testing.T) {
	s := newHubServer(t)
	ctx := context.Background()
	if _, _, err := s.h.PutContainer(ctx, replica.Container{Name: "m", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	v2 := wire.Version{Container: "m", ID: "x", Op: replica.OpReplace, Version: "e1-2", Base: "e1-1", TS: 1, Body: []byte(`{"id":"x","pk":"a"}`)}
	if _, _, err := s.h.Push(ctx, "e1", nil, []wire.Version{v2}); !errors.Is(err, hub.ErrPushOutOfOrder) {
		t.Fatalf("Push: %v, want %v", err, hub.ErrPushOutOfOrder)
	}
	_, b := s.must(t, http.StatusOK, http.MethodGet, "/metrics", "")
	if want := "\nedgesync_hub_push_out_of_order_total 1\n"; !strings.Contains(string(b), want) {
		t.Fatalf("metrics lack %q", want)
	}
}
