package loadtest_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/edgesync/edgesync/internal/loadtest"
	"github.com/edgesync/edgesync/internal/proctest"
)

func TestMain(m *testing.M) { os.Exit(proctest.Main(m)) }

// TestLoadtest_1000Edges runs the load tool with 1,000 edges against the
// cloudhub binary and checks, with bounds scaled from the targets at 10,000
// edges and generous for a shared 2-core machine, that every edge gets in
// and back after a restart, that the hub is cheap when idle, and that a
// write reaches every edge from one encoded frame per commit.
//
// It takes about a minute; set EDGESYNC_LOADTEST=1 to run it (.ci/run does).
// EDGESYNC_LOADTEST_HUB_BIN runs it against another cloudhub binary.
func TestLoadtest_1000Edges(t *testing.T) {
	if os.Getenv("EDGESYNC_LOADTEST") != "1" {
		t.Skip("a minute of 1,000 edges: set EDGESYNC_LOADTEST=1 to run it")
	}
	bin := os.Getenv("EDGESYNC_LOADTEST_HUB_BIN")
	if bin == "" {
		bin = proctest.Build(t, proctest.Cloudhub)[0]
	}
	const edges, writes = 1000, 20
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := loadtest.Measure(ctx, loadtest.Config{Edges: edges, Writes: writes, Idle: 10 * time.Second, Storm: true,
		HubBin: bin, Sources: 16, Timeout: time.Minute, Dir: t.TempDir(), Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	checks := []struct {
		name      string
		got, want float64
	}{
		// Cost: today's sessions hold four goroutines each and encode
		// one frame per session per commit.
		{"goroutines per idle edge", res.GoroutinesPerEdge, 2.5},
		// The edges ping the hub, so it need not ping them: a few
		// pings, of edges that were silent for a moment, at most.
		{"hub pings per idle edge", float64(res.IdleHubPings) / edges, 0.05},
		// The edges ping at the hub's interval, 20 s: once at the
		// welcome, then 20 s later, mostly after the 10 s idle window
		// that starts 2 s after the last welcome. At the 10 s of an
		// older hub every edge pings once in it.
		{"edge pings per idle edge", float64(res.IdleEdgePings) / edges, 0.75},
		{"frames encoded per write", float64(res.FanoutFramesEncoded) / writes, 4},
		// Bounds of the targets at 10,000 edges, scaled or kept.
		// 0.4-1.1% measured at 1,000 edges, at load 13-20; the
		// target at 10,000 is 5%.
		{"idle CPU percent", res.IdleCPUPercent, 2},
		{"idle RSS MB", float64(res.IdleRSSBytes) / 1e6, 2048 / 10 * 2},
		{"fan-out p99 seconds", res.FanoutP99Seconds, 3},
		{"connect seconds", res.ConnectSeconds, 30},
		{"restart storm seconds", res.StormSeconds, 30},
	}
	for _, c := range checks {
		if c.got > c.want {
			t.Errorf("%s: %.2f, want at most %.2f", c.name, c.got, c.want)
		}
	}
	if res.PingIntervalSeconds != 20 {
		t.Errorf("edges ping every %.1f s, want the hub's default 20 s", res.PingIntervalSeconds)
	}
	if res.FanoutFramesEncoded < 0 {
		t.Errorf("the hub does not count the frames it encodes (edgesync_hub_stream_frames_encoded_total)")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}
