package hubbench

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgesync/edgesync/internal/proctest"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
)

// smallBench are sizes that run in seconds.
func smallBench(t *testing.T) []string {
	return []string{"--docs", "300", "--catchup-docs", "1000", "--edges", "3", "--writes", "20",
		"--interval", "1ms", "--clients", "4", "--durability", "normal", "--timeout", "1m", "--dir", t.TempDir()}
}

// TestBenchCommand runs `cloudhub bench` small: every run works end to end
// and reports its headline row.
func TestBenchCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	var stdout, stderr proctest.Buffer
	if err := Run(context.Background(), smallBench(t), &stdout, &stderr); err != nil {
		t.Fatalf("bench: %v; stderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []struct{ run, row string }{
		{"sync", "end to end"},
		{"catchup", "new edge catch-up"},
		{"fanout", "last of 3 edges applied"},
	} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, want.run+" ") && strings.Contains(line, want.row) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %q row %q in the output:\n%s", want.run, want.row, out)
		}
	}
	for _, want := range []string{"GOMAXPROCS", "durability: normal"} {
		if !strings.Contains(out, want) {
			t.Errorf("output has no %q:\n%s", want, out)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("stdout:\n%s\nstderr:\n%s", out, stderr.String())
	}
}

func TestBenchCommand_JSON(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	var stdout, stderr proctest.Buffer
	if err := Run(context.Background(), append(smallBench(t), "--run", "sync", "--json"), &stdout, &stderr); err != nil {
		t.Fatalf("bench: %v; stderr:\n%s", err, stderr.String())
	}
	var got struct {
		Durability string
		Rows       []benchRow
	}
	if err := json.Unmarshal([]byte(stdout.String()), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
	}
	if len(got.Rows) != 3 || got.Rows[2].Run != "sync" || got.Rows[2].Docs != 300 || got.Rows[2].DocsPerSec <= 0 || got.Rows[2].Met == nil {
		t.Fatalf("rows %+v, want 3 sync rows, the last the end-to-end one for 300 docs", got.Rows)
	}
	if got.Durability != "normal" {
		t.Fatalf("durability %q, want normal", got.Durability)
	}
}

// TestBenchCommand_Postgres runs the sync run on both hub stores: each
// reports its end-to-end row, and the comparison row has the ratio and its
// target. (The hub tier's rows, which need the cloudhub binary, are
// TestBenchCommand_Tier's.)
func TestBenchCommand_Postgres(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	url := pgtest.Database(t)
	var stdout, stderr proctest.Buffer
	if err := Run(context.Background(), append(smallBench(t), "--run", "sync", "--postgres", url, "--tier-hubs", "0", "--json"), &stdout, &stderr); err != nil {
		t.Fatalf("bench: %v; stderr:\n%s", err, stderr.String())
	}
	var got struct{ Rows []benchRow }
	if err := json.Unmarshal([]byte(stdout.String()), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
	}
	e2e := map[string]benchRow{}
	var ratio *benchRow
	for i, r := range got.Rows {
		switch {
		case r.Ratio > 0:
			ratio = &got.Rows[i]
		case strings.HasPrefix(r.Name, "end to end"):
			e2e[r.Hub] = r
		}
	}
	for _, store := range []string{hubSQLite, hubPostgres} {
		if r, ok := e2e[store]; !ok || r.Docs != 300 || r.DocsPerSec <= 0 || r.Met == nil {
			t.Errorf("%s end-to-end row %+v (found %v), want 300 docs with a rate and a target", store, r, ok)
		}
	}
	if ratio == nil || ratio.Met == nil {
		t.Fatalf("no ratio row with a target in %+v", got.Rows)
	}
	if want := e2e[hubPostgres].DocsPerSec / e2e[hubSQLite].DocsPerSec; ratio.Ratio != want {
		t.Errorf("ratio %v, want %v", ratio.Ratio, want)
	}
	// The run's schema is gone.
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'cloudhub_bench_%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d bench schemas left in the database, want 0", n)
	}
}

func TestAppliedLatencies_LastIsTheSlowestEdgePerWrite(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	sent := []time.Time{ms(0), ms(10)}
	applied := [][]time.Time{
		{ms(3), ms(12)}, // edge 0
		{ms(1), ms(19)}, // edge 1
		{ms(5), ms(11)}, // edge 2
	}
	last, each := appliedLatencies(sent, applied)
	d := time.Millisecond
	if want := []time.Duration{5 * d, 9 * d}; !slices.Equal(last, want) {
		t.Errorf("last = %v, want %v", last, want)
	}
	if want := []time.Duration{3 * d, 1 * d, 5 * d, 2 * d, 9 * d, 1 * d}; !slices.Equal(each, want) {
		t.Errorf("each = %v, want %v", each, want)
	}
}
