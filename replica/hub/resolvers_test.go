package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/wire"
	"github.com/edgesync/edgesync/wasmhost"
)

func readWasm(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/resolvers/" + name)
	if err != nil {
		t.Fatalf("%v (rebuild with resolvers/build.sh)", err)
	}
	return b
}

// openWithResolvers opens a hub in dir with a wasm host (its compilation
// cache in dir) and a resolver registry, all closed when the test ends.
func openWithResolvers(t *testing.T, dir string) (*hub.Hub, *wasmhost.Registry) {
	t.Helper()
	ctx := context.Background()
	wh, err := wasmhost.New(ctx, wasmhost.Config{CacheDir: dir + "/cache"})
	if err != nil {
		t.Fatal(err)
	}
	reg := wasmhost.NewRegistry(wh)
	h := hub.New(hub.Config{Dir: dir, Durability: "normal", Resolvers: reg})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(ctx); reg.Close(ctx); wh.Close(ctx) })
	return h, reg
}

// TestHub_ResolverVersions uploads two versions of a resolver and checks
// that a container runs the newest one unless it pins a version, that a
// policy change takes effect at the next conflict, and that each confirmed
// version and conflict records the resolver version that decided; and that
// the registry survives a restart.
func TestHub_ResolverVersions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() (*hub.Hub, *wasmhost.Registry) { return openWithResolvers(t, dir) }
	h, reg := open()
	v1, created, err := h.PutResolver(ctx, "r", readWasm(t, "prefer-incoming.wasm"))
	if err != nil || !created || v1.Version != 1 {
		t.Fatalf("PutResolver v1 = %+v, %v, %v", v1, created, err)
	}
	if again, created, err := h.PutResolver(ctx, "r", readWasm(t, "prefer-incoming.wasm")); err != nil || created || again.Version != 1 {
		t.Fatalf("PutResolver with the same bytes = %+v, %v, %v; want version 1, not created", again, created, err)
	}
	v2, _, err := h.PutResolver(ctx, "r", readWasm(t, "noop.wasm")) // always "existing"
	if err != nil || v2.Version != 2 {
		t.Fatalf("PutResolver v2 = %+v, %v", v2, err)
	}
	if _, _, err := h.PutResolver(ctx, "bad", readWasm(t, "malicious/wrong-abi.wasm")); !errors.Is(err, replica.ErrInvalid) {
		t.Fatalf("PutResolver(wrong ABI) = %v, want ErrInvalid", err)
	}
	if got := h.Resolvers(); len(got) != 2 {
		t.Fatalf("Resolvers() = %+v, want r@1 and r@2", got)
	}

	// conflict writes two concurrent versions of a new item over a common
	// base and returns the second one's outcome, decided by the resolver.
	n := 0
	conflict := func(h *hub.Hub, container string) wire.Outcome {
		t.Helper()
		n++
		id := fmt.Sprintf("item-%d", n)
		base, _, err := h.Upsert(ctx, container, id, []byte(`{"id":"`+id+`","pk":"a","v":0}`), hub.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		doPush(t, h, pushBatch{node: "e1", versions: []wire.Version{pushV(container, id, replica.OpReplace, fmt.Sprintf("e1-%d", n), base.Version, 1, `{"pk":"a","v":1}`)}})
		out := doPush(t, h, pushBatch{node: "e2", versions: []wire.Version{pushV(container, id, replica.OpReplace, fmt.Sprintf("e2-%d", n), base.Version, 1, `{"pk":"a","v":2}`)}})
		return out[0]
	}
	put := func(h *hub.Hub, p replica.ConflictPolicy) {
		t.Helper()
		if _, _, err := h.PutContainer(ctx, replica.Container{Name: "k", PartitionKey: "/pk", ConflictPolicy: p}); err != nil {
			t.Fatal(err)
		}
	}
	lastConflict := func(h *hub.Hub) hub.Conflict {
		t.Helper()
		cs, _, err := h.Conflicts(ctx, "k", "", 0, 1000)
		if err != nil || len(cs) == 0 {
			t.Fatalf("Conflicts() = %v, %v", cs, err)
		}
		return cs[len(cs)-1]
	}
	tests := []struct {
		name     string
		policy   replica.ConflictPolicy
		outcome  string
		resolver string
	}{
		{"newest by default", replica.ConflictPolicy{Mode: replica.ModeCustom, Resolver: "r"}, replica.OutcomeLost, "r@2"},
		{"pinned to version 1", replica.ConflictPolicy{Mode: replica.ModeCustom, Resolver: "r", ResolverVersion: 1}, replica.OutcomeConfirmed, "r@1"},
		{"switched to lww", replica.ConflictPolicy{Mode: replica.ModeLWW}, replica.OutcomeConfirmed, ""},
		{"pinned to a version the hub lacks", replica.ConflictPolicy{Mode: replica.ModeCustom, Resolver: "r", ResolverVersion: 9}, replica.OutcomeLost, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			put(h, tt.policy)
			o := conflict(h, "k")
			cf := lastConflict(h)
			if o.Outcome != tt.outcome || cf.Resolver != tt.resolver {
				t.Fatalf("outcome %s (%s), conflict resolver %q; want %s by %q", o.Outcome, o.Reason, cf.Resolver, tt.outcome, tt.resolver)
			}
			if tt.resolver == "r@1" { // incoming confirmed: its log record names the resolver
				chs, _, err := h.Changes(ctx, "k", o.LSN-1, 1)
				if err != nil || len(chs) != 1 || chs[0].Resolver != "r@1" || chs[0].Policy != replica.ModeCustom {
					t.Fatalf("log record %+v, %v; want policy custom, resolver r@1", chs, err)
				}
			}
			if tt.resolver == "" && tt.policy.Mode == replica.ModeCustom && cf.Status != replica.StatusUnresolved {
				t.Fatalf("conflict with a missing resolver version: status %s, want unresolved", cf.Status)
			}
		})
	}

	// After a restart the versions are there (compiled from the cache),
	// with the call counts of the earlier run, and the container still runs
	// the pinned one.
	before1, before2 := reg.Stats("r", 1), reg.Stats("r", 2)
	if before1.Calls == 0 || before2.Calls == 0 {
		t.Fatalf("calls before the restart: r@1 %d, r@2 %d; want both called", before1.Calls, before2.Calls)
	}
	h.Close(ctx)
	h, reg = open()
	if got := h.Resolvers(); len(got) != 2 || got[1].SHA256 != v2.SHA256 {
		t.Fatalf("after restart Resolvers() = %+v", got)
	}
	for _, c := range []struct {
		version int
		want    wasmhost.Stats
	}{{1, before1}, {2, before2}} {
		got := reg.Stats("r", c.version)
		if got.Calls != c.want.Calls || !maps.Equal(got.Failures, c.want.Failures) {
			t.Fatalf("r@%d after restart: %d calls, failures %v; want %d, %v", c.version, got.Calls, got.Failures, c.want.Calls, c.want.Failures)
		}
	}
	put(h, replica.ConflictPolicy{Mode: replica.ModeCustom, Resolver: "r", ResolverVersion: 1})
	if o := conflict(h, "k"); o.Outcome != replica.OutcomeConfirmed || lastConflict(h).Resolver != "r@1" {
		t.Fatalf("after restart: outcome %+v, want confirmed by r@1", o)
	}
}

// TestHub_HostileResolvers runs the malicious corpus (testdata/resolvers/
// malicious) through the hub with its default limits: a module that is not a
// resolver is refused at upload with the reason; a resolver that runs away,
// traps or answers garbage leaves its conflict unresolved in the feed with
// the reason, keeps the existing version, and the write pushed behind the
// conflict in the same batch is confirmed.
func TestHub_HostileResolvers(t *testing.T) {
	ctx := context.Background()
	h, reg := openWithResolvers(t, t.TempDir())
	var expect struct {
		Refused, Failing map[string]string
	}
	if err := json.Unmarshal(readWasm(t, "malicious/expect.json"), &expect); err != nil {
		t.Fatal(err)
	}
	refused, failing := expect.Refused, expect.Failing
	if len(refused) == 0 || len(failing) == 0 {
		t.Fatalf("testdata/resolvers/malicious/expect.json: %v", expect)
	}
	for file, message := range refused {
		_, _, err := h.PutResolver(ctx, "refused", readWasm(t, "malicious/"+file))
		if !errors.Is(err, replica.ErrInvalid) || !strings.Contains(err.Error(), message) {
			t.Errorf("PutResolver(%s) = %v, want ErrInvalid saying %q", file, err, message)
		}
	}
	if got := h.Resolvers(); len(got) != 0 {
		t.Fatalf("refused modules were stored: %+v", got)
	}

	type test struct{ file, reason string }
	var tests []test
	for file, reason := range failing {
		tests = append(tests, test{file, reason})
	}
	for i, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			name := strings.TrimSuffix(tt.file, ".wasm")
			if _, _, err := h.PutResolver(ctx, name, readWasm(t, "malicious/"+tt.file)); err != nil {
				t.Fatalf("PutResolver: %v", err)
			}
			container := fmt.Sprint("c", i)
			if _, _, err := h.PutContainer(ctx, replica.Container{Name: container, PartitionKey: "/pk",
				ConflictPolicy: replica.ConflictPolicy{Mode: replica.ModeCustom, Resolver: name}}); err != nil {
				t.Fatal(err)
			}
			base, _, err := h.Upsert(ctx, container, "x", []byte(`{"id":"x","pk":"a","v":0}`), hub.WriteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// Version ids are unique across the hub: a pushed id it has seen
			// gets its first outcome again.
			v1, v2, v3 := fmt.Sprint("e1-", i), fmt.Sprint("e2-", 2*i), fmt.Sprint("e2-", 2*i+1)
			doPush(t, h, pushBatch{node: "e1", versions: []wire.Version{
				pushV(container, "x", replica.OpReplace, v1, base.Version, 1, `{"pk":"a","v":1}`)}})
			out := doPush(t, h, pushBatch{node: "e2", versions: []wire.Version{
				pushV(container, "x", replica.OpReplace, v2, base.Version, 1, `{"pk":"a","v":2}`),
				pushV(container, "behind", replica.OpCreate, v3, "", 1, `{"pk":"a"}`)}})
			if out[0].Outcome != replica.OutcomeLost || !strings.Contains(out[0].Reason, tt.reason) {
				t.Errorf("the conflicting write: %s (%s), want lost with reason %s", out[0].Outcome, out[0].Reason, tt.reason)
			}
			if out[1].Outcome != replica.OutcomeConfirmed {
				t.Errorf("the write behind the conflict: %s (%s), want confirmed", out[1].Outcome, out[1].Reason)
			}
			cs, _, err := h.Conflicts(ctx, container, replica.StatusUnresolved, 0, 10)
			if err != nil || len(cs) != 1 || !strings.Contains(cs[0].Reason, tt.reason) || cs[0].Incoming == nil || cs[0].Incoming.Version != v2 {
				t.Fatalf("unresolved conflicts %+v, %v; want %s's with reason %s", cs, err, v2, tt.reason)
			}
			item, err := h.Get(ctx, container, "x")
			if err != nil || item.Version != v1 || item.LSN == 0 {
				t.Fatalf("item x = %+v, %v; want the existing version %s kept", item, err, v1)
			}
			if st := reg.Stats(name, 1); st.Failures[tt.reason] != 1 {
				t.Errorf("stats of %s@1: %+v, want one %s failure", name, st, tt.reason)
			}
		})
	}
}
