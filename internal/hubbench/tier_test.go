package hubbench

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/edgesync/edgesync/internal/cli"
	"github.com/edgesync/edgesync/internal/proctest"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
)

func TestMain(m *testing.M) { os.Exit(proctest.Main(m)) }

// TestBenchCommand_Tier runs the hub tier's rows small: sync over three
// cloudhub processes, fan-out to edges spread over them, and two kills of
// the sequencer, each row with its figures and, where the issue set one,
// its target; the takeovers took less than a minute each.
func TestBenchCommand_Tier(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	url := pgtest.Database(t)
	bin := proctest.Build(t, proctest.Cloudhub)[0]
	var stdout, stderr proctest.Buffer
	args := append(smallBench(t), "--run", "sync,fanout,takeover", "--postgres", url, "--cloudhub", bin,
		"--edges", "6", "--kills", "2", "--lease-timeout", "1s", "--json")
	if err := Run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("bench: %v; stderr:\n%s", err, stderr.String())
	}
	var got struct{ Rows []benchRow }
	if err := json.Unmarshal([]byte(stdout.String()), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
	}
	found := map[string]benchRow{}
	for _, r := range got.Rows {
		if r.Hub == hubTier {
			found[r.Run+": "+r.Name] = r
		}
	}
	want := []struct {
		key   string
		check func(benchRow) bool
	}{
		{"sync: end to end: 3 hubs, 3 edges over them (scope: own), all outcomes", func(r benchRow) bool {
			// The CPU per document of each process: the hubs', this
			// process's, and PostgreSQL's sessions of the hubs, found.
			return r.Docs == 300 && r.DocsPerSec > 0 && r.Met != nil &&
				r.CPU != nil && len(r.CPU.Hubs) == 3 && r.CPU.Bench > 0 && r.CPU.Backends > 0
		}},
		{"sync: end to end, 3-hub tier / sqlite hub", func(r benchRow) bool { return r.Ratio > 0 && r.Met != nil }},
		{"fanout: each of 6 edges over 3 hubs applied (per write and edge)", func(r benchRow) bool { return r.Docs == 6*20 && r.P50ms > 0 && r.P99ms >= r.P50ms }},
		{"takeover: kill -9 of the sequencer until a write at another hub is confirmed (2 kills)", func(r benchRow) bool {
			return r.Docs == 2 && r.P50ms > 0 && r.MaxMs < 60000 && r.Met != nil
		}},
	}
	for _, w := range want {
		if r, ok := found[w.key]; !ok || !w.check(r) {
			t.Errorf("tier row %q: %+v (found %v)", w.key, r, ok)
		}
	}
	if t.Failed() {
		t.Logf("rows: %+v\nstderr:\n%s", got.Rows, stderr.String())
	}
}

// TestRun_TierUsage: the tier's flags are checked before anything runs.
func TestRun_TierUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"takeover without --postgres", []string{"--run", "takeover"}},
		{"one hub is no tier", []string{"--tier-hubs", "1"}},
		{"too many hubs", []string{"--tier-hubs", "17"}},
		{"takeover without a tier", []string{"--run", "takeover", "--postgres", "postgres://127.0.0.1:1/x", "--tier-hubs", "0"}},
		{"lease under a second", []string{"--lease-timeout", "500ms"}},
		{"no kills", []string{"--kills", "0"}},
		{"negative GOMAXPROCS", []string{"--tier-gomaxprocs", "-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr proctest.Buffer
			err := Run(context.Background(), tc.args, &stdout, &stderr)
			if !errors.As(err, new(cli.UsageError)) {
				t.Fatalf("Run(%q) = %v, want a usage error", tc.args, err)
			}
		})
	}
}
