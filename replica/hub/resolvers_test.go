package hub_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/wire"
	"github.com/edgesync/edgesync/wasmhost"
	"github.com/edgesync/edgesync/wasmhost/resolvertest"
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
	return openWithLimits(t, dir, wasmhost.Limits{})
}

// openWithLimits is openWithResolvers with resolver limits (zero fields
// take the defaults).
func openWithLimits(t *testing.T, dir string, limits wasmhost.Limits) (*hub.Hub, *wasmhost.Registry) {
	t.Helper()
	ctx := context.Background()
	if limits.CompileTimeout == 0 {
		limits.CompileTimeout = time.Hour // the Go examples, under -race
	}
	wh, err := wasmhost.New(ctx, wasmhost.Config{CacheDir: dir + "/cache", Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	reg := wasmhost.NewRegistry(wh)
	h := hub.New(hub.Config{Store: newStore(t, dir), Resolvers: reg})
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
// malicious, and the modules resolvertest.Hostile generates) through the hub
// with its default limits: a module that is not a resolver, or that is over
// a structural limit, is refused at upload with the reason; a resolver that
// runs away, overflows its stack, amplifies host calls, exits, traps or
// answers garbage leaves its conflict unresolved in the feed with the
// reason, keeps the existing version, and the write pushed behind the
// conflict in the same batch is confirmed.
func TestHub_HostileResolvers(t *testing.T) {
	ctx := context.Background()
	// The corpus names the limit each module reaches with the default fuel
	// and memory. The wall-clock bound is a backstop with tests of its own
	// (TestHub_ResolverDoesNotHoldWriter); under -race on a busy machine the
	// default fuel of host calls can outlast its 2 s, so it is set out of
	// the way here.
	h, reg := openWithLimits(t, t.TempDir(), wasmhost.Limits{Timeout: time.Minute})
	corpus := resolvertest.LoadCorpus(t, "../../testdata/resolvers/malicious")
	refused, failing := corpus.Refused, corpus.Failing
	for file, message := range refused {
		_, _, err := h.PutResolver(ctx, "refused", corpus.Module(t, file))
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
			if _, _, err := h.PutResolver(ctx, name, corpus.Module(t, tt.file)); err != nil {
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

// TestHub_ResolverDoesNotHoldWriter runs a hostile resolver on a conflict
// while a write is made at the hub: the resolver holds the hub's writer for
// at most the call's bound (fuel, which host calls are charged against, or
// the wall-clock timeout behind it), so the other write is confirmed within
// the timeout and a second, and the conflict lands in the feed unresolved
// with the reason. (Host calls were not charged: the fd_write module ran for
// hours, and every other write waited.)
func TestHub_ResolverDoesNotHoldWriter(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		limits wasmhost.Limits
		reason string
	}{
		{"host-call amplification, default limits", "fd-write-iovecs.wasm", wasmhost.Limits{}, wasmhost.ReasonFuel},
		{"random_get amplification, default limits", "random-get.wasm", wasmhost.Limits{}, wasmhost.ReasonFuel},
		{"fuel to spare, stopped by the timeout", "infinite-loop.wasm", wasmhost.Limits{Fuel: 1 << 60, Timeout: 500 * time.Millisecond}, wasmhost.ReasonTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			h, reg := openWithLimits(t, t.TempDir(), tt.limits)
			timeout := reg.Limits().Timeout
			if _, _, err := h.PutResolver(ctx, "hostile", readWasm(t, "malicious/"+tt.file)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := h.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk",
				ConflictPolicy: replica.ConflictPolicy{Mode: replica.ModeCustom, Resolver: "hostile"}}); err != nil {
				t.Fatal(err)
			}
			base, _, err := h.Upsert(ctx, "c", "x", []byte(`{"id":"x","pk":"a","v":0}`), hub.WriteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			doPush(t, h, pushBatch{node: "e1", versions: []wire.Version{pushV("c", "x", replica.OpReplace, "e1-1", base.Version, 1, `{"pk":"a","v":1}`)}})
			type result struct {
				out []wire.Outcome
				err error
			}
			pushed := make(chan result, 1)
			go func() {
				out, _, err := h.Push(ctx, "e2", nil, []wire.Version{pushV("c", "x", replica.OpReplace, "e2-1", base.Version, 1, `{"pk":"a","v":2}`)})
				pushed <- result{out, err}
			}()
			time.Sleep(20 * time.Millisecond) // the resolver runs
			start := time.Now()
			if _, _, err := h.Upsert(ctx, "c", "other", []byte(`{"id":"other","pk":"b"}`), hub.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > timeout+time.Second {
				t.Fatalf("the other write took %v, want under %v", took, timeout+time.Second)
			}
			var r result
			select {
			case r = <-pushed:
			case <-time.After(timeout + time.Second):
				t.Fatal("the conflicting push is still running")
			}
			if r.err != nil || len(r.out) != 1 || r.out[0].Outcome != replica.OutcomeLost || !strings.Contains(r.out[0].Reason, tt.reason) {
				t.Fatalf("conflicting push: %+v, %v; want lost with reason %s", r.out, r.err, tt.reason)
			}
			cs, _, err := h.Conflicts(ctx, "c", replica.StatusUnresolved, 0, 10)
			if err != nil || len(cs) != 1 || !strings.Contains(cs[0].Reason, tt.reason) {
				t.Fatalf("unresolved conflicts %+v, %v; want one with reason %s", cs, err, tt.reason)
			}
		})
	}
}

// TestHub_PutResolver_concurrent uploads a module that compiles for longer
// than the compile timeout and, while it compiles, a small one: the small
// one is stored at once (uploads were serialized: it waited for the other
// compile), and the slow one is refused with the reason in time.
func TestHub_PutResolver_concurrent(t *testing.T) {
	ctx := context.Background()
	h, reg := openWithLimits(t, t.TempDir(), wasmhost.Limits{CompileTimeout: 2 * time.Second})
	// 4,000 functions of 512 blocks each: within every structural limit,
	// and tens of seconds of compiling, each function in a few hundredths
	// of a second (under -race, tenths), the time by which an upload may
	// overrun its compile timeout.
	var body []byte
	for range 512 / 8 {
		body = append(body, bytes.Repeat([]byte{0x02, 0x40}, 8)...)
		body = append(body, bytes.Repeat([]byte{0x0b}, 8)...)
	}
	slow := resolvertest.WithFunctions(4000, body)
	slowDone := make(chan error, 1)
	start := time.Now()
	go func() {
		_, _, err := h.PutResolver(ctx, "slow", slow)
		slowDone <- err
	}()
	time.Sleep(300 * time.Millisecond) // the slow one compiles
	if _, _, err := h.PutResolver(ctx, "quick", readWasm(t, "prefer-incoming.wasm")); err != nil {
		t.Fatalf("PutResolver(quick) = %v", err)
	}
	quick := time.Since(start)
	select {
	case err := <-slowDone:
		t.Fatalf("the slow upload ended (%v) before the quick one (%v): uploads are serialized or the module is not slow", err, quick)
	default:
	}
	err := <-slowDone
	took := time.Since(start)
	if !errors.Is(err, replica.ErrInvalid) || !strings.Contains(err.Error(), "compiling took longer than 2s") {
		t.Fatalf("PutResolver(slow) = %v, want refused for its compile time", err)
	}
	// The bound is the compile timeout, plus the parts that cannot stop: the
	// metering pass, wazero's decoding, the functions being compiled. Under
	// -race those take many seconds.
	if limit := reg.Limits().CompileTimeout + 2*time.Second; took > limit && !raceEnabled {
		t.Fatalf("the slow upload was answered after %v, want under %v", took, limit)
	}
	if got := h.Resolvers(); len(got) != 1 || got[0].Name != "quick" {
		t.Fatalf("Resolvers() = %+v, want only quick", got)
	}
}
