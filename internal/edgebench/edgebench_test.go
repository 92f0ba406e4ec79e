package edgebench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// TestBenchCommand runs `edgenode bench` small: the command works end to end.
func TestBenchCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	var out io.Writer = io.Discard
	if testing.Verbose() {
		out = &testWriter{t}
	}
	if err := Run(context.Background(), []string{"--seq-docs", "50", "--docs", "300", "--clients", "8", "--dir", t.TempDir()}, out, out); err != nil {
		t.Fatalf("bench: %v", err)
	}
}

// TestBenchJSON checks the JSON report: every step, and the probes' figures
// beside the writes'.
func TestBenchJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	var out, errs bytes.Buffer
	if err := Run(context.Background(), []string{"--json", "--rounds", "2", "--seq-docs", "30", "--docs", "200", "--clients", "4", "--dir", t.TempDir()}, &out, &errs); err != nil {
		t.Fatalf("bench: %v: %s", err, errs.String())
	}
	var rep struct {
		Rows []struct {
			Name      string  `json:"name"`
			Ops       int     `json:"ops"`
			OpsPerSec float64 `json:"opsPerSec"`
		} `json:"rows"`
		DiskSync8KiB   float64 `json:"diskSync8KiBP50us"`
		DiskSync128KiB float64 `json:"diskSync128KiBP50us"`
		Loopback       float64 `json:"loopbackRoundTripP50us"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out.String())
	}
	if len(rep.Rows) != 9 {
		t.Fatalf("%d rows, want 9: %+v", len(rep.Rows), rep.Rows)
	}
	for _, r := range rep.Rows {
		if r.Ops <= 0 || r.OpsPerSec <= 0 {
			t.Errorf("row %q: %d ops, %.0f/s", r.Name, r.Ops, r.OpsPerSec)
		}
	}
	if probe := rep.Rows[7]; probe.Ops != 2*syncProbeOps || !strings.HasPrefix(probe.Name, "disk: 128 KiB") {
		t.Errorf("row 8 %+v, want the 128 KiB disk probe with %d syncs", probe, 2*syncProbeOps)
	}
	if rep.DiskSync8KiB <= 0 || rep.DiskSync128KiB <= 0 || rep.Loopback <= 0 {
		t.Errorf("probe p50s %.0f, %.0f and %.0f µs, want all measured", rep.DiskSync8KiB, rep.DiskSync128KiB, rep.Loopback)
	}
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
