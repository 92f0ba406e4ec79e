package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/wire"
)

// newPushHub opens a hub with the containers push tests write to, all with
// the partition key /pk: c (lww on _ts), prio (lww on /prio), m (merge) and
// man (manual).
func newPushHub(t *testing.T) *hub.Hub {
	t.Helper()
	ctx := context.Background()
	h := hub.New(hub.Config{Store: newStore(t, t.TempDir())})
	if err := h.Open(ctx); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	for _, c := range []replica.Container{
		{Name: "c", PartitionKey: "/pk"},
		{Name: "prio", PartitionKey: "/pk", ConflictPolicy: replica.ConflictPolicy{Mode: replica.ModeLWW, Path: "/prio"}},
		{Name: "m", PartitionKey: "/pk", ConflictPolicy: replica.ConflictPolicy{Mode: replica.ModeMerge}},
		{Name: "man", PartitionKey: "/pk", ConflictPolicy: replica.ConflictPolicy{Mode: replica.ModeManual}},
	} {
		if _, _, err := h.PutContainer(ctx, c); err != nil {
			t.Fatalf("PutContainer(%s): %v", c.Name, err)
		}
	}
	return h
}

// pushV builds a pushed version; body is the JSON object without its id.
func pushV(container, id, op, version, base string, ts int64, body string) wire.Version {
	v := wire.Version{Container: container, ID: id, Op: op, Version: version, Base: base, TS: ts}
	if op != replica.OpDelete {
		if body == "" {
			body = `{"pk":"a"}`
		}
		v.Body = json.RawMessage(`{"id":"` + id + `",` + body[1:])
	}
	return v
}

// pushBatch is one call of Hub.Push.
type pushBatch struct {
	node     string
	scope    []wire.ScopeEntry
	versions []wire.Version
}

func doPush(t *testing.T, h *hub.Hub, b pushBatch) []wire.Outcome {
	t.Helper()
	out, maxLSN, err := h.Push(context.Background(), b.node, b.scope, b.versions)
	if err != nil {
		t.Fatalf("Push(%s): %v", b.node, err)
	}
	if got, want := len(out), len(b.versions); got != want {
		t.Fatalf("len(outcomes)=%d, want %d", got, want)
	}
	var wantMax int64
	for i, o := range out {
		v := b.versions[i]
		if o.Version != v.Version || o.Container != v.Container || o.ID != v.ID {
			t.Fatalf("outcome %d=%+v, want it for %s %s/%s", i, o, v.Version, v.Container, v.ID)
		}
		wantMax = max(wantMax, o.LSN)
	}
	if maxLSN != wantMax {
		t.Fatalf("Push maxLSN=%d, want the highest outcome LSN %d", maxLSN, wantMax)
	}
	return out
}

// pushState is an item's expected confirmed state: its version (the
// outcome of a merge is a hub version: "hub") and some of its fields, or
// absent (version "").
type pushState struct {
	container, id string
	version       string
	fields        map[string]any
}

func checkPushState(t *testing.T, h *hub.Hub, want pushState) replica.Item {
	t.Helper()
	it, err := h.Get(context.Background(), want.container, want.id)
	if want.version == "" {
		if !errors.Is(err, replica.ErrNotFound) {
			t.Fatalf("Get(%s/%s)=%+v, %v; want not found", want.container, want.id, it, err)
		}
		return it
	}
	if err != nil {
		t.Fatalf("Get(%s/%s): %v", want.container, want.id, err)
	}
	wantVersion := want.version
	if wantVersion == "hub" {
		wantVersion = fmt.Sprintf("%s-%d", h.HubID(), it.LSN)
	}
	if it.Version != wantVersion {
		t.Fatalf("%s/%s version=%s, want %s", want.container, want.id, it.Version, wantVersion)
	}
	var body map[string]any
	if err := json.Unmarshal(it.Body, &body); err != nil {
		t.Fatalf("%s/%s body %s: %v", want.container, want.id, it.Body, err)
	}
	for k, v := range want.fields {
		if body[k] != v {
			t.Fatalf("%s/%s %s=%v, want %v (body %s)", want.container, want.id, k, body[k], v, it.Body)
		}
	}
	return it
}

func pushConflicts(t *testing.T, h *hub.Hub, container string) []hub.Conflict {
	t.Helper()
	cs, _, err := h.Conflicts(context.Background(), container, "", 0, 1000)
	if err != nil {
		t.Fatalf("Conflicts(%s): %v", container, err)
	}
	return cs
}

func TestHub_Push(t *testing.T) {
	create := func(c, id, ver string, ts int64, body string) pushBatch {
		node, _, _ := strings.Cut(ver, "-")
		return pushBatch{node: node, versions: []wire.Version{pushV(c, id, replica.OpCreate, ver, "", ts, body)}}
	}
	write := func(c, id, op, ver, base string, ts int64, body string) pushBatch {
		node, _, _ := strings.Cut(ver, "-")
		return pushBatch{node: node, versions: []wire.Version{pushV(c, id, op, ver, base, ts, body)}}
	}
	tests := []struct {
		name    string
		setup   []pushBatch
		push    pushBatch
		want    string // outcome
		kind    string // the conflict's kind, "" for no conflict
		status  string // the conflict's status
		loser   string
		lsnOf   string // the outcome's LSN is this version's ("" with none)
		state   pushState
		wantLSN int64 // if not 0: the outcome's LSN
	}{
		{name: "create confirmed", push: create("c", "x", "n1-1", 100, `{"pk":"a","v":1}`),
			want: wire.OutcomeConfirmed, wantLSN: 1, state: pushState{"c", "x", "n1-1", map[string]any{"v": 1.0}}},
		{name: "replace over the current version confirmed",
			setup: []pushBatch{create("c", "x", "n1-1", 100, `{"pk":"a","v":1}`)},
			push:  write("c", "x", "replace", "n2-1", "n1-1", 50, `{"pk":"a","v":2}`),
			want:  wire.OutcomeConfirmed, wantLSN: 2, state: pushState{"c", "x", "n2-1", map[string]any{"v": 2.0}}},
		{name: "delete of the current version confirmed",
			setup: []pushBatch{create("c", "x", "n1-1", 100, "")},
			push:  write("c", "x", "delete", "n2-1", "n1-1", 50, ""),
			want:  wire.OutcomeConfirmed, wantLSN: 2, state: pushState{"c", "x", "", nil}},
		{name: "create over a tombstone is a fresh create",
			setup: []pushBatch{create("c", "x", "n1-1", 100, ""), write("c", "x", "delete", "n1-2", "n1-1", 100, "")},
			push:  create("c", "x", "n2-1", 10, `{"pk":"b","v":3}`),
			want:  wire.OutcomeConfirmed, wantLSN: 3, state: pushState{"c", "x", "n2-1", map[string]any{"v": 3.0, "pk": "b"}}},
		{name: "lww incoming wins with a later _ts",
			setup: []pushBatch{create("c", "x", "n1-1", 100, ""), write("c", "x", "replace", "n1-2", "n1-1", 200, `{"pk":"a","v":1}`)},
			push:  write("c", "x", "replace", "n2-1", "n1-1", 300, `{"pk":"a","v":2}`),
			want:  wire.OutcomeConfirmed, kind: "replace", status: "resolved", loser: "existing", wantLSN: 3,
			state: pushState{"c", "x", "n2-1", map[string]any{"v": 2.0}}},
		{name: "lww existing wins with an earlier _ts",
			setup: []pushBatch{create("c", "x", "n1-1", 100, ""), write("c", "x", "replace", "n1-2", "n1-1", 200, `{"pk":"a","v":1}`)},
			push:  write("c", "x", "replace", "n2-1", "n1-1", 150, `{"pk":"a","v":2}`),
			want:  wire.OutcomeLost, kind: "replace", status: "resolved", loser: "incoming", wantLSN: 2,
			state: pushState{"c", "x", "n1-2", map[string]any{"v": 1.0}}},
		{name: "lww on a path: the higher number wins over a later _ts",
			setup: []pushBatch{create("prio", "x", "n1-1", 100, `{"pk":"a","prio":5}`)},
			push:  create("prio", "x", "n2-1", 900, `{"pk":"a","prio":1}`),
			want:  wire.OutcomeLost, kind: "insert", status: "resolved", loser: "incoming", wantLSN: 1,
			state: pushState{"prio", "x", "n1-1", map[string]any{"prio": 5.0}}},
		{name: "lww on a path: a missing value counts as _ts",
			setup: []pushBatch{create("prio", "x", "n1-1", 100, `{"pk":"a","prio":5}`)},
			push:  create("prio", "x", "n2-1", 900, `{"pk":"a"}`),
			want:  wire.OutcomeConfirmed, kind: "insert", status: "resolved", loser: "existing", wantLSN: 2,
			state: pushState{"prio", "x", "n2-1", nil}},
		{name: "insert conflict",
			setup: []pushBatch{create("c", "x", "n1-1", 100, `{"pk":"a","v":1}`)},
			push:  create("c", "x", "n2-1", 50, `{"pk":"a","v":2}`),
			want:  wire.OutcomeLost, kind: "insert", status: "resolved", loser: "incoming", wantLSN: 1,
			state: pushState{"c", "x", "n1-1", map[string]any{"v": 1.0}}},
		{name: "both deleted",
			setup: []pushBatch{create("c", "x", "n1-1", 100, ""), write("c", "x", "delete", "n1-2", "n1-1", 100, "")},
			push:  write("c", "x", "delete", "n2-1", "n1-1", 200, ""),
			want:  wire.OutcomeLost, kind: "delete", status: "resolved", loser: "incoming", wantLSN: 2,
			state: pushState{"c", "x", "", nil}},
		{name: "manual keeps the existing version",
			setup: []pushBatch{create("man", "x", "n1-1", 100, ""), write("man", "x", "replace", "n1-2", "n1-1", 100, `{"pk":"a","v":1}`)},
			push:  write("man", "x", "replace", "n2-1", "n1-1", 900, `{"pk":"a","v":2}`),
			want:  wire.OutcomeLost, kind: "replace", status: "unresolved", loser: "incoming", wantLSN: 2,
			state: pushState{"man", "x", "n1-2", map[string]any{"v": 1.0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newPushHub(t)
			for i, b := range tt.setup {
				for _, o := range doPush(t, h, b) {
					if o.Outcome != wire.OutcomeConfirmed {
						t.Fatalf("setup %d outcome=%+v, want confirmed", i, o)
					}
				}
			}
			head := h.Head()
			container := tt.push.versions[0].Container
			conflictsBefore := len(pushConflicts(t, h, container))
			o := doPush(t, h, tt.push)[0]
			if o.Outcome != tt.want {
				t.Fatalf("outcome=%+v, want %s", o, tt.want)
			}
			if got, want := o.LSN, tt.wantLSN; got != want {
				t.Fatalf("outcome LSN=%d, want %d", got, want)
			}
			wantHead := head
			if o.Outcome == wire.OutcomeConfirmed || o.Outcome == wire.OutcomeMerged {
				wantHead++
			}
			if got := h.Head(); got != wantHead {
				t.Fatalf("Head()=%d, want %d", got, wantHead)
			}
			cs := pushConflicts(t, h, container)
			if tt.kind == "" {
				if o.ConflictID != 0 || len(cs) != conflictsBefore {
					t.Fatalf("conflictId=%d, %d conflicts; want no conflict", o.ConflictID, len(cs))
				}
			} else {
				if len(cs) != conflictsBefore+1 {
					t.Fatalf("%d conflicts, want %d", len(cs), conflictsBefore+1)
				}
				c := cs[len(cs)-1]
				if c.ID != o.ConflictID || c.Kind != tt.kind || c.Status != tt.status || c.Loser != tt.loser || c.WinnerLSN != o.LSN {
					t.Fatalf("conflict=%+v (outcome %+v), want id %d, kind %s, status %s, loser %s, winnerLsn %d",
						c, o, o.ConflictID, tt.kind, tt.status, tt.loser, o.LSN)
				}
				if c.Incoming == nil || c.Incoming.Version != tt.push.versions[0].Version {
					t.Fatalf("conflict incoming=%+v, want %s", c.Incoming, tt.push.versions[0].Version)
				}
			}
			it := checkPushState(t, h, tt.state)
			if tt.state.version != "" && it.LSN != o.LSN {
				t.Fatalf("item LSN=%d, want the outcome's %d", it.LSN, o.LSN)
			}
		})
	}
}

func TestHub_PushRejected(t *testing.T) {
	scope := []wire.ScopeEntry{{Container: "c", PartitionKeys: []string{"a"}}}
	tests := []struct {
		name    string
		node    string
		scope   []wire.ScopeEntry
		version wire.Version
		reason  string // a part of the reason
	}{
		{name: "version id of another node", node: "n1", version: pushV("c", "y", "create", "n2-1", "", 1, ""), reason: "not issued by node"},
		{name: "version id with the node id as a bare prefix", node: "n1", version: pushV("c", "y", "create", "n1x-1", "", 1, ""), reason: "not issued by node"},
		{name: "version id without a separator", node: "n1", version: pushV("c", "y", "create", "n1", "", 1, ""), reason: "not issued by node"},
		{name: "unknown container", node: "n1", version: pushV("nope", "y", "create", "n1-1", "", 1, ""), reason: "container not found"},
		{name: "body not an object", node: "n1", version: wire.Version{Container: "c", ID: "y", Op: "create", Version: "n1-1", TS: 1, Body: json.RawMessage(`[1]`)}, reason: "want an object"},
		{name: "malformed body", node: "n1", version: wire.Version{Container: "c", ID: "y", Op: "create", Version: "n1-1", TS: 1, Body: json.RawMessage(`{"id":"y",`)}, reason: "malformed"},
		{name: "body without an id", node: "n1", version: wire.Version{Container: "c", ID: "y", Op: "create", Version: "n1-1", TS: 1, Body: json.RawMessage(`{"pk":"a"}`)}, reason: "id"},
		{name: "body without a partition key", node: "n1", version: pushV("c", "y", "create", "n1-1", "", 1, `{"v":1}`), reason: "partition key"},
		{name: "id mismatch", node: "n1", version: wire.Version{Container: "c", ID: "y", Op: "create", Version: "n1-1", TS: 1, Body: json.RawMessage(`{"id":"z","pk":"a"}`)}, reason: "differs"},
		{name: "partition key change", node: "n1", version: pushV("c", "x", "replace", "n1-1", "n0-1", 1, `{"pk":"b"}`), reason: "partition key"},
		{name: "out of scope: partition key", node: "n1", scope: scope, version: pushV("c", "y", "create", "n1-1", "", 1, `{"pk":"b"}`), reason: "scope"},
		{name: "out of scope: container", node: "n1", scope: scope, version: pushV("m", "y", "create", "n1-1", "", 1, `{"pk":"a"}`), reason: "scope"},
		{name: "out of scope: delete of an item outside", node: "n1", scope: scope, version: pushV("c", "xb", "delete", "n1-1", "n0-2", 1, ""), reason: "scope"},
		{name: "delete of an unknown item", node: "n1", version: pushV("c", "never", "delete", "n1-1", "", 1, ""), reason: "does not have"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newPushHub(t)
			// x (pk a) and xb (pk b) exist; n0-1 and n0-2 are their versions.
			for _, o := range doPush(t, h, pushBatch{node: "n0", versions: []wire.Version{
				pushV("c", "x", "create", "n0-1", "", 1, `{"pk":"a","v":0}`),
				pushV("c", "xb", "create", "n0-2", "", 1, `{"pk":"b","v":0}`),
			}}) {
				if o.Outcome != wire.OutcomeConfirmed {
					t.Fatalf("setup outcome=%+v, want confirmed", o)
				}
			}
			head := h.Head()
			o := doPush(t, h, pushBatch{node: tt.node, scope: tt.scope, versions: []wire.Version{tt.version}})[0]
			if o.Outcome != wire.OutcomeRejected || o.LSN != 0 || o.ConflictID != 0 {
				t.Fatalf("outcome=%+v, want rejected without LSN or conflict", o)
			}
			if !strings.Contains(o.Reason, tt.reason) {
				t.Fatalf("reason=%q, want it to mention %q", o.Reason, tt.reason)
			}
			if got := h.Head(); got != head {
				t.Fatalf("Head()=%d, want %d (nothing confirmed)", got, head)
			}
			checkPushState(t, h, pushState{"c", "x", "n0-1", map[string]any{"v": 0.0, "pk": "a"}})
			checkPushState(t, h, pushState{"c", "xb", "n0-2", map[string]any{"v": 0.0, "pk": "b"}})
			if tt.version.ID != "x" && tt.version.ID != "xb" {
				if _, err := h.Get(context.Background(), "c", tt.version.ID); !errors.Is(err, replica.ErrNotFound) && !errors.Is(err, replica.ErrContainerNotFound) {
					t.Fatalf("Get(%s)=%v, want not found", tt.version.ID, err)
				}
			}
		})
	}
}

func TestHub_PushBatchContinuesAfterRejected(t *testing.T) {
	h := newPushHub(t)
	out := doPush(t, h, pushBatch{node: "n1", scope: []wire.ScopeEntry{{Container: "c", PartitionKeys: []string{"a"}}}, versions: []wire.Version{
		pushV("c", "p", "create", "n1-1", "", 1, `{"pk":"a"}`),
		pushV("nope", "q", "create", "n1-2", "", 1, `{"pk":"a"}`),
		pushV("c", "r", "create", "n1-3", "", 1, `{"pk":"b"}`),
		pushV("c", "s", "create", "n1-4", "", 1, `{"pk":"a"}`),
		pushV("c", "s", "create", "n2-9", "", 1, `{"pk":"a"}`),
		pushV("c", "p", "replace", "n1-5", "n1-1", 2, `{"pk":"a","v":2}`),
	}})
	want := []struct {
		outcome string
		lsn     int64
	}{
		{wire.OutcomeConfirmed, 1}, {wire.OutcomeRejected, 0}, {wire.OutcomeRejected, 0},
		{wire.OutcomeConfirmed, 2}, {wire.OutcomeRejected, 0}, {wire.OutcomeConfirmed, 3},
	}
	for i, w := range want {
		if out[i].Outcome != w.outcome || out[i].LSN != w.lsn {
			t.Errorf("outcome %d=%+v, want %s at LSN %d", i, out[i], w.outcome, w.lsn)
		}
	}
	checkPushState(t, h, pushState{"c", "p", "n1-5", map[string]any{"v": 2.0}})
	checkPushState(t, h, pushState{"c", "s", "n1-4", nil})
	checkPushState(t, h, pushState{"c", "r", "", nil})
}

func TestHub_PushIdempotent(t *testing.T) {
	h := newPushHub(t)
	doPush(t, h, pushBatch{node: "n0", versions: []wire.Version{
		pushV("c", "x", "create", "n0-1", "", 100, `{"pk":"a","v":0}`),
		pushV("c", "z", "create", "n0-2", "", 100, `{"pk":"a"}`),
		pushV("m", "w", "create", "n0-3", "", 100, `{"pk":"a","f":0,"g":0}`),
	}})
	doPush(t, h, pushBatch{node: "n1", versions: []wire.Version{
		pushV("c", "x", "replace", "n1-1", "n0-1", 200, `{"pk":"a","v":1}`),
		pushV("m", "w", "replace", "n1-2", "n0-3", 100, `{"pk":"a","f":1,"g":0}`),
	}})
	batch := pushBatch{node: "n2", versions: []wire.Version{
		pushV("c", "y", "create", "n2-1", "", 100, `{"pk":"a"}`),                  // confirmed
		pushV("c", "x", "replace", "n2-2", "n0-1", 150, `{"pk":"a","v":2}`),       // lost (conflict)
		pushV("c", "bad", "create", "n2-3", "", 100, `{"v":1}`),                   // rejected
		pushV("c", "z", "delete", "n2-4", "n0-2", 100, ""),                        // confirmed delete
		pushV("m", "w", "replace", "n2-5", "n0-3", 100, `{"pk":"a","f":0,"g":2}`), // merged (conflict)
		pushV("nope", "q", "create", "n2-6", "", 100, `{"pk":"a"}`),               // rejected
	}}
	first := doPush(t, h, batch)
	wantOutcomes := []string{wire.OutcomeConfirmed, wire.OutcomeLost, wire.OutcomeRejected, wire.OutcomeConfirmed, wire.OutcomeMerged, wire.OutcomeRejected}
	for i, w := range wantOutcomes {
		if first[i].Outcome != w {
			t.Fatalf("first push outcome %d=%+v, want %s", i, first[i], w)
		}
	}
	head := h.Head()
	type snapshot struct {
		x, y, w   replica.Item
		conflicts int
		changes   int
	}
	snap := func() snapshot {
		var s snapshot
		var err error
		ctx := context.Background()
		if s.x, err = h.Get(ctx, "c", "x"); err != nil {
			t.Fatal(err)
		}
		if s.y, err = h.Get(ctx, "c", "y"); err != nil {
			t.Fatal(err)
		}
		if s.w, err = h.Get(ctx, "m", "w"); err != nil {
			t.Fatal(err)
		}
		s.conflicts = len(pushConflicts(t, h, "c")) + len(pushConflicts(t, h, "m"))
		for _, c := range []string{"c", "m"} {
			ch, _, err := h.Changes(ctx, c, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			s.changes += len(ch)
		}
		return s
	}
	before := snap()

	tests := []struct {
		name  string
		batch pushBatch
		want  []wire.Outcome
	}{
		{name: "the same batch again", batch: batch, want: first},
		{name: "the same batch a third time", batch: batch, want: first},
		{name: "one version alone", batch: pushBatch{node: "n2", versions: batch.versions[1:2]}, want: first[1:2]},
		{name: "reversed", batch: pushBatch{node: "n2", versions: reversed(batch.versions)}, want: reversed(first)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := doPush(t, h, tt.batch)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("outcomes=%+v, want %+v", got, tt.want)
			}
			if got := h.Head(); got != head {
				t.Fatalf("Head()=%d, want %d (no new LSN)", got, head)
			}
			if got := snap(); !reflect.DeepEqual(got, before) {
				t.Fatalf("state=%+v, want %+v", got, before)
			}
		})
	}
}

func reversed[T any](s []T) []T {
	out := make([]T, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// pushOrders runs two concurrent versions over the same base in both
// arrival orders and returns the final item of each order (found or not).
func pushOrders(t *testing.T, container string, setup []wire.Version, a, b wire.Version) (ab, ba pushResult) {
	t.Helper()
	run := func(first, second wire.Version) pushResult {
		h := newPushHub(t)
		doPush(t, h, pushBatch{node: "n0", versions: setup})
		node := func(v wire.Version) string { n, _, _ := strings.Cut(v.Version, "-"); return n }
		o1 := doPush(t, h, pushBatch{node: node(first), versions: []wire.Version{first}})[0]
		o2 := doPush(t, h, pushBatch{node: node(second), versions: []wire.Version{second}})[0]
		r := pushResult{first: o1.Outcome, second: o2.Outcome}
		it, err := h.Get(context.Background(), container, first.ID)
		switch {
		case errors.Is(err, replica.ErrNotFound):
			r.deleted = true
		case err != nil:
			t.Fatalf("Get: %v", err)
		default:
			r.version = it.Version
			if strings.HasPrefix(it.Version, h.HubID()+"-") {
				r.version = "hub"
			}
			var m map[string]any
			if err := json.Unmarshal(it.Body, &m); err != nil {
				t.Fatal(err)
			}
			r.body = m
		}
		return r
	}
	return run(a, b), run(b, a)
}

type pushResult struct {
	first, second string // outcomes in arrival order
	deleted       bool
	version       string // "hub" for a version the hub made
	body          map[string]any
}

func TestHub_PushArrivalOrder(t *testing.T) {
	base := func(c, body string) []wire.Version {
		return []wire.Version{pushV(c, "x", "create", "n0-1", "", 10, body)}
	}
	tests := []struct {
		name    string
		c       string
		setup   []wire.Version
		a, b    wire.Version
		deleted bool
		version string         // the final version in both orders
		fields  map[string]any // of the final body
		ab, ba  [2]string      // outcomes when a arrives first, when b does
	}{
		{name: "lww tie on _ts: the higher version id wins", c: "c", setup: base("c", `{"pk":"a","v":0}`),
			a:       pushV("c", "x", "replace", "na-1", "n0-1", 100, `{"pk":"a","v":1}`),
			b:       pushV("c", "x", "replace", "nb-1", "n0-1", 100, `{"pk":"a","v":2}`),
			version: "nb-1", fields: map[string]any{"v": 2.0},
			ab: [2]string{"confirmed", "confirmed"}, ba: [2]string{"confirmed", "lost"}},
		{name: "lww tie on a path value: the version id decides", c: "prio", setup: base("prio", `{"pk":"a","prio":1}`),
			a:       pushV("prio", "x", "replace", "nb-1", "n0-1", 500, `{"pk":"a","prio":7,"v":1}`),
			b:       pushV("prio", "x", "replace", "na-1", "n0-1", 100, `{"pk":"a","prio":7,"v":2}`),
			version: "nb-1", fields: map[string]any{"v": 1.0},
			ab: [2]string{"confirmed", "lost"}, ba: [2]string{"confirmed", "confirmed"}},
		{name: "lww: delete wins over a later update", c: "c", setup: base("c", `{"pk":"a","v":0}`),
			a:       pushV("c", "x", "replace", "na-1", "n0-1", 300, `{"pk":"a","v":1}`),
			b:       pushV("c", "x", "delete", "nb-1", "n0-1", 100, ""),
			deleted: true,
			ab:      [2]string{"confirmed", "confirmed"}, ba: [2]string{"confirmed", "lost"}},
		{name: "merge: delete wins over an update", c: "m", setup: base("m", `{"pk":"a","v":0}`),
			a:       pushV("m", "x", "replace", "na-1", "n0-1", 300, `{"pk":"a","v":1}`),
			b:       pushV("m", "x", "delete", "nb-1", "n0-1", 100, ""),
			deleted: true,
			ab:      [2]string{"confirmed", "confirmed"}, ba: [2]string{"confirmed", "lost"}},
		{name: "merge: disjoint fields both survive", c: "m", setup: base("m", `{"pk":"a","f":0,"g":0,"h":0}`),
			a:       pushV("m", "x", "replace", "na-1", "n0-1", 100, `{"pk":"a","f":1,"g":0,"h":0}`),
			b:       pushV("m", "x", "replace", "nb-1", "n0-1", 200, `{"pk":"a","f":0,"g":2,"h":0}`),
			version: "hub", fields: map[string]any{"f": 1.0, "g": 2.0, "h": 0.0},
			ab: [2]string{"confirmed", "merged"}, ba: [2]string{"confirmed", "merged"}},
		{name: "merge: an added and a removed field", c: "m", setup: base("m", `{"pk":"a","f":0,"g":0}`),
			a:       pushV("m", "x", "replace", "na-1", "n0-1", 100, `{"pk":"a","f":0,"g":0,"new":1}`),
			b:       pushV("m", "x", "replace", "nb-1", "n0-1", 200, `{"pk":"a","f":0}`),
			version: "hub", fields: map[string]any{"f": 0.0, "g": nil, "new": 1.0},
			ab: [2]string{"confirmed", "merged"}, ba: [2]string{"confirmed", "merged"}},
		{name: "merge: a clash on one field falls back to lww", c: "m", setup: base("m", `{"pk":"a","f":0,"g":0}`),
			a:       pushV("m", "x", "replace", "na-1", "n0-1", 100, `{"pk":"a","f":1,"g":1}`),
			b:       pushV("m", "x", "replace", "nb-1", "n0-1", 200, `{"pk":"a","f":2,"g":0}`),
			version: "hub", fields: map[string]any{"f": 2.0, "g": 1.0},
			ab: [2]string{"confirmed", "merged"}, ba: [2]string{"confirmed", "merged"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ab, ba := pushOrders(t, tt.c, tt.setup, tt.a, tt.b)
			for _, r := range []struct {
				order string
				got   pushResult
				want  [2]string
			}{{"a then b", ab, tt.ab}, {"b then a", ba, tt.ba}} {
				if r.got.first != r.want[0] || r.got.second != r.want[1] {
					t.Errorf("%s: outcomes=%s, %s; want %s, %s", r.order, r.got.first, r.got.second, r.want[0], r.want[1])
				}
				if r.got.deleted != tt.deleted || r.got.version != tt.version {
					t.Errorf("%s: deleted=%v version=%q, want deleted=%v version=%q", r.order, r.got.deleted, r.got.version, tt.deleted, tt.version)
				}
				for k, v := range tt.fields {
					if got := r.got.body[k]; got != v {
						t.Errorf("%s: %s=%v, want %v (body %v)", r.order, k, got, v, r.got.body)
					}
				}
			}
			if !reflect.DeepEqual(ab.body, ba.body) || ab.deleted != ba.deleted {
				t.Errorf("final state differs by arrival order: %+v vs %+v", ab, ba)
			}
		})
	}
}

// A node that pushes another node's version id is refused; the refusal
// must not stand for that version when its rightful node pushes it.
func TestHub_PushForeignVersionID(t *testing.T) {
	h := newPushHub(t)
	o := doPush(t, h, pushBatch{node: "evil", versions: []wire.Version{pushV("c", "x", "create", "n2-1", "", 1, `{"pk":"a","v":666}`)}})[0]
	if o.Outcome != wire.OutcomeRejected {
		t.Fatalf("foreign version id outcome=%+v, want rejected", o)
	}
	o = doPush(t, h, pushBatch{node: "n2", versions: []wire.Version{pushV("c", "x", "create", "n2-1", "", 1, `{"pk":"a","v":1}`)}})[0]
	if o.Outcome != wire.OutcomeConfirmed {
		t.Fatalf("rightful node's outcome=%+v, want confirmed", o)
	}
	checkPushState(t, h, pushState{"c", "x", "n2-1", map[string]any{"v": 1.0}})
}

// TestHub_PushDuplicatesAmongNew: versions seen before, in a batch with new
// ones or twice in one batch, get the outcome they got then, and the new
// ones are numbered as if the repeated ones were not there (no LSN skipped,
// no conflict recorded twice).
func TestHub_PushDuplicatesAmongNew(t *testing.T) {
	h := newPushHub(t)
	first := doPush(t, h, pushBatch{node: "n", versions: []wire.Version{
		pushV("c", "a", "create", "n-1", "", 100, `{"pk":"a"}`),
		pushV("man", "b", "create", "n-2", "", 100, `{"pk":"a"}`),
	}})
	doPush(t, h, pushBatch{node: "o", versions: []wire.Version{
		pushV("man", "b", "replace", "o-1", "n-2", 100, `{"pk":"a","x":1}`),
	}})
	lost := doPush(t, h, pushBatch{node: "n", versions: []wire.Version{
		pushV("man", "b", "replace", "n-3", "n-2", 100, `{"pk":"a","x":2}`), // a conflict, manual: lost
	}})
	if lost[0].Outcome != wire.OutcomeLost || lost[0].ConflictID == 0 {
		t.Fatalf("outcome %+v, want lost with a conflict", lost[0])
	}
	head := h.Head()
	got := doPush(t, h, pushBatch{node: "n", versions: []wire.Version{
		pushV("c", "d", "create", "n-4", "", 100, `{"pk":"a"}`),
		pushV("c", "a", "create", "n-1", "", 100, `{"pk":"a"}`),             // seen: confirmed
		pushV("man", "b", "replace", "n-3", "n-2", 100, `{"pk":"a","x":2}`), // seen: lost
		pushV("c", "e", "create", "n-5", "", 100, `{"pk":"a"}`),
		pushV("c", "e", "create", "n-5", "", 100, `{"pk":"a"}`), // twice in this batch
	}})
	want := []wire.Outcome{
		{Version: "n-4", Container: "c", ID: "d", Outcome: wire.OutcomeConfirmed, LSN: head + 1, CRTS: got[0].CRTS},
		first[0],
		lost[0],
		{Version: "n-5", Container: "c", ID: "e", Outcome: wire.OutcomeConfirmed, LSN: head + 2, CRTS: got[3].CRTS},
		{Version: "n-5", Container: "c", ID: "e", Outcome: wire.OutcomeConfirmed, LSN: head + 2, CRTS: got[3].CRTS},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("outcomes\n%+v\nwant\n%+v", got, want)
	}
	if h.Head() != head+2 {
		t.Fatalf("Head()=%d, want %d", h.Head(), head+2)
	}
	if n := len(pushConflicts(t, h, "man")); n != 1 {
		t.Fatalf("%d conflicts, want 1", n)
	}
	// The hub goes on numbering from there.
	next := doPush(t, h, pushBatch{node: "n", versions: []wire.Version{pushV("c", "f", "create", "n-6", "", 100, "")}})
	if next[0].LSN != head+3 {
		t.Fatalf("next LSN %d, want %d", next[0].LSN, head+3)
	}
}

// LogAfter pages through the log: a reader's own records are skipped but
// covered, records outside its scope likewise, and a page cut by the limit
// or by the byte budget ends at its last record, so that nothing is lost
// between pages.
func TestHub_LogAfterPages(t *testing.T) {
	ctx := context.Background()
	h := newPushHub(t)
	// LSNs 1-12: n1 writes 1-4, n2 writes 5-8 (pk b: out of n3's scope
	// from 7 on), n1 writes 9-12.
	var vs1, vs2, vs3 []wire.Version
	for i := 1; i <= 4; i++ {
		vs1 = append(vs1, pushV("c", fmt.Sprintf("a%d", i), replica.OpCreate, fmt.Sprintf("n1-%d", i), "", 1, ""))
		pk := "a"
		if i > 2 {
			pk = "b"
		}
		vs2 = append(vs2, pushV("c", fmt.Sprintf("b%d", i), replica.OpCreate, fmt.Sprintf("n2-%d", i), "", 1, `{"pk":"`+pk+`"}`))
		vs3 = append(vs3, pushV("c", fmt.Sprintf("c%d", i), replica.OpCreate, fmt.Sprintf("n1-%d", 4+i), "", 1, ""))
	}
	doPush(t, h, pushBatch{node: "n1", versions: vs1})
	doPush(t, h, pushBatch{node: "n2", versions: vs2})
	doPush(t, h, pushBatch{node: "n1", versions: vs3})
	if h.Head() != 12 {
		t.Fatalf("head %d, want 12", h.Head())
	}
	scopeA := []wire.ScopeEntry{{Container: "c", PartitionKeys: []string{"a"}}}
	tests := []struct {
		name        string
		after       int64
		limit       int
		maxBytes    int
		scope       []wire.ScopeEntry
		skip        string
		want        []int64 // LSNs returned
		wantCovered int64
	}{
		{name: "everything", limit: 100, maxBytes: 1 << 20, want: lsns(1, 12), wantCovered: 12},
		{name: "cut by the limit", limit: 5, maxBytes: 1 << 20, want: lsns(1, 5), wantCovered: 5},
		{name: "next page", after: 5, limit: 5, maxBytes: 1 << 20, want: lsns(6, 10), wantCovered: 10},
		{name: "cut by the byte budget", limit: 100, maxBytes: 1, want: lsns(1, 1), wantCovered: 1},
		{name: "own records skipped and covered", limit: 100, maxBytes: 1 << 20, skip: "n1", want: lsns(5, 8), wantCovered: 12},
		{name: "own records skipped, cut by the limit", limit: 2, maxBytes: 1 << 20, skip: "n1", want: lsns(5, 6), wantCovered: 6},
		{name: "after the others: only own records left", after: 8, limit: 2, maxBytes: 1 << 20, skip: "n1", wantCovered: 12},
		{name: "out of scope skipped and covered", limit: 100, maxBytes: 1 << 20, scope: scopeA, skip: "n1", want: lsns(5, 6), wantCovered: 12},
		{name: "out of scope rows do not fill a page", limit: 3, maxBytes: 1 << 20, scope: scopeA, skip: "n1", want: lsns(5, 6), wantCovered: 12},
		{name: "in scope, cut by the limit", limit: 1, maxBytes: 1 << 20, scope: scopeA, skip: "n1", want: lsns(5, 5), wantCovered: 5},
		{name: "at the head", after: 12, limit: 100, maxBytes: 1 << 20, wantCovered: 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, covered, err := h.LogAfter(ctx, tt.after, tt.limit, tt.maxBytes, tt.scope, tt.skip)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, c := range out {
				got = append(got, c.LSN)
			}
			if !slices.Equal(got, tt.want) || covered != tt.wantCovered {
				t.Errorf("LSNs %v covered %d, want %v covered %d", got, covered, tt.want, tt.wantCovered)
			}
		})
	}
}

func lsns(from, to int64) []int64 {
	var out []int64
	for l := from; l <= to; l++ {
		out = append(out, l)
	}
	return out
}

// TestHub_LogAfterSkipsOtherContainers: for a scoped reader SQLite skips the
// records of containers and partition keys the scope does not cover, so they
// neither fill a page nor hold the covered position back.
func TestHub_LogAfterSkipsOtherContainers(t *testing.T) {
	ctx := context.Background()
	h := newPushHub(t)
	var others, mine []wire.Version
	for i := 1; i <= 6; i++ {
		others = append(others, pushV("m", fmt.Sprintf("o%d", i), replica.OpCreate, fmt.Sprintf("n2-%d", i), "", 1, ""))
	}
	for i := 1; i <= 3; i++ {
		mine = append(mine, pushV("c", fmt.Sprintf("c%d", i), replica.OpCreate, fmt.Sprintf("n2-%d", 6+i), "", 1, ""))
	}
	doPush(t, h, pushBatch{node: "n2", versions: others}) // LSNs 1-6
	doPush(t, h, pushBatch{node: "n2", versions: mine})   // LSNs 7-9
	tests := []struct {
		name        string
		after       int64
		limit       int
		scope       []wire.ScopeEntry
		want        []int64
		wantCovered int64
	}{
		{name: "one container", limit: 2, scope: []wire.ScopeEntry{{Container: "c"}}, want: lsns(7, 8), wantCovered: 8},
		{name: "one container, last page", after: 8, limit: 2, scope: []wire.ScopeEntry{{Container: "c"}}, want: lsns(9, 9), wantCovered: 9},
		{name: "a container with no records yet", limit: 2, scope: []wire.ScopeEntry{{Container: "prio"}}, wantCovered: 9},
		{name: "two containers", after: 4, limit: 3, scope: []wire.ScopeEntry{{Container: "c"}, {Container: "m", PartitionKeys: []string{"a"}}}, want: lsns(5, 7), wantCovered: 7},
		{name: "partition keys", limit: 10, scope: []wire.ScopeEntry{{Container: "m", PartitionKeys: []string{"b", "a"}}}, want: lsns(1, 6), wantCovered: 9},
		{name: "a partition key of no record", limit: 2, scope: []wire.ScopeEntry{{Container: "m", PartitionKeys: []string{"zz"}}}, wantCovered: 9},
		{name: "a container named twice", after: 5, limit: 10, scope: []wire.ScopeEntry{{Container: "c", PartitionKeys: []string{"x"}}, {Container: "c"}}, want: lsns(7, 9), wantCovered: 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, covered, err := h.LogAfter(ctx, tt.after, tt.limit, 1<<20, tt.scope, "n1")
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, c := range out {
				got = append(got, c.LSN)
				if len(c.Body) == 0 {
					t.Errorf("LSN %d has no body", c.LSN)
				}
			}
			if !slices.Equal(got, tt.want) || covered != tt.wantCovered {
				t.Errorf("LSNs %v covered %d, want %v covered %d", got, covered, tt.want, tt.wantCovered)
			}
		})
	}
}
