package main

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var unauthorizedMetricRE = regexp.MustCompile(`(?m)^edgesync_hub_sync_unauthorized_total (\d+)$`)

// hubUnauthorized reads edgesync_hub_sync_unauthorized_total from /metrics.
func hubUnauthorized(t *testing.T, h *e2eNode) int {
	t.Helper()
	b := h.call(http.MethodGet, "/metrics", nil, http.StatusOK, nil)
	m := unauthorizedMetricRE.FindSubmatch(b)
	if m == nil {
		t.Fatalf("hub /metrics has no edgesync_hub_sync_unauthorized_total")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestE2E_RejectedTokenWarnsAndBacksOff: an edge whose token the hub does
// not know logs a warning with the hub's reason, shows it in its status,
// and retries with a growing wait; the hub counts the refused attempts.
func TestE2E_RejectedTokenWarnsAndBacksOff(t *testing.T) {
	c := newE2ECluster(t)
	if n := hubUnauthorized(t, c.hub); n != 0 {
		t.Fatalf("edgesync_hub_sync_unauthorized_total=%d before any edge, want 0", n)
	}
	e := c.startEdge("stranger", "est_not-a-token-the-hub-issued")
	start := time.Now()
	e2eWaitFor(t, 10*time.Second, "the edge warns twice about its token", func() error {
		var warns int
		for line := range strings.Lines(e.log.String()) {
			if strings.Contains(line, "level=WARN") && strings.Contains(line, "hub refused the edge token") &&
				strings.Contains(line, "sync needs a valid edge token") {
				warns++
			}
		}
		if warns < 2 {
			return fmt.Errorf("%d warnings with the hub's reason, want 2", warns)
		}
		return nil
	})
	if strings.Contains(e.log.String(), "sync session ended") {
		t.Errorf("edge logs the refusal as a session that ended")
	}
	st := e.mustEdgeStatus()
	if st.Connected || !strings.Contains(st.LastError, "hub refused the edge token") {
		t.Errorf("edge status connected=%v lastError=%q, want disconnected and the refusal", st.Connected, st.LastError)
	}
	time.Sleep(3 * time.Second)
	n, elapsed := hubUnauthorized(t, c.hub), time.Since(start)
	// Waits drawn from [0, 0.5 s], [0, 1 s], [0, 2 s], ... (full jitter):
	// more than 4+log2(elapsed/125ms) attempts has a probability under
	// one in a million; a wait that did not grow would make about
	// elapsed/250ms.
	if limit := 4 + int(elapsedLog2(elapsed/(125*time.Millisecond))); n < 2 || n > limit {
		t.Errorf("edgesync_hub_sync_unauthorized_total=%d after %v, want 2..%d (a growing wait)", n, elapsed.Round(time.Millisecond), limit)
	}
}

func elapsedLog2(d time.Duration) int {
	n := 0
	for d > 1 {
		d /= 2
		n++
	}
	return n
}
