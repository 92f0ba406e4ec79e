package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
)

// tierStatus is the tier's part of GET /api/v1/status.
type tierStatus struct {
	Name      string `json:"name"`
	Sequencer string `json:"sequencer"`
	Hubs      []struct {
		Name      string `json:"name"`
		Order     int64  `json:"order"`
		Online    bool   `json:"online"`
		Sequencer bool   `json:"sequencer"`
	} `json:"hubs"`
	Takeovers []struct {
		Epoch    int64  `json:"epoch"`
		Holder   string `json:"holder"`
		Previous string `json:"previous"`
		GapMs    int64  `json:"gapMs"`
	} `json:"takeovers"`
}

// metric reads one unlabelled value of GET /metrics.
func (n *e2eNode) metric(name string) string {
	n.t.Helper()
	body := n.call(http.MethodGet, "/metrics", nil, http.StatusOK, nil)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	n.t.Fatalf("%s: no metric %s", n.name, name)
	return ""
}

func (n *e2eNode) tierStatus() tierStatus {
	n.t.Helper()
	var st tierStatus
	n.call(http.MethodGet, "/api/v1/status", nil, http.StatusOK, &st)
	return st
}

// waitStopped waits until every thread of process pid is stopped (state T
// in /proc), so that nothing the test sends after it reaches the process
// before it is resumed.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			t.Skipf("cannot read the process's threads: %v", err)
		}
		stopped := 0
		for _, task := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
			if err != nil {
				continue // a thread that ended
			}
			// pid (comm) state ...: comm may hold spaces, not ')'.
			if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) && b[i+2] == 'T' {
				stopped++
			}
		}
		if stopped == len(tasks) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d: %d of %d threads stopped after SIGSTOP", pid, stopped, len(tasks))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestE2E_TierPausedSequencerCommitsNothing runs two cloudhub processes on
// one database. The sequencer is paused with SIGSTOP past its lease while
// a write to it waits; the other hub takes over; resumed, the old
// sequencer commits nothing under its lost lease: the waiting write is
// decided by the new sequencer, the log has no gap or duplicate, and the
// old sequencer serves on as a follower, never taking the lease back.
func TestE2E_TierPausedSequencerCommitsNothing(t *testing.T) {
	const lease = time.Second
	hubBin, _ := e2eBinaries(t)
	url := pgtest.Database(t)
	start := func(name string) *e2eNode {
		n := newE2ENode(t, "hub "+name, "cloudhub listening", hubBin, t.TempDir(), "--admin-token", e2eAdminToken,
			"--postgres", url, "--hub-name", name, "--lease-timeout", lease.String())
		n.auth = e2eAdminToken
		n.start()
		return n
	}
	a := start("a")
	b := start("b")
	if st := b.tierStatus(); st.Sequencer != "a" || len(st.Hubs) != 2 || st.Hubs[0].Name != "a" || st.Hubs[1].Name != "b" {
		t.Fatalf("status on b: %+v, want a (sequencer), b", st)
	}
	a.call(http.MethodPut, "/api/v1/containers/notes", `{"partitionKey":"/pk"}`, http.StatusCreated, nil)
	put := func(n *e2eNode, id string) int64 {
		var doc struct {
			LSN int64 `json:"_lsn"`
		}
		n.call(http.MethodPut, "/api/v1/containers/notes/docs/"+id, fmt.Sprintf(`{"id":%q,"pk":"p"}`, id), http.StatusCreated, &doc)
		return doc.LSN
	}
	put(a, "d1")
	put(b, "d2") // forwarded
	writes := a.metric("edgesync_hub_writes_total")

	if err := a.proc.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	resumed := false
	defer func() {
		if !resumed {
			a.proc.Cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	waitStopped(t, a.proc.Cmd.Process.Pid)
	// A write to the paused sequencer waits in its socket.
	waiting := make(chan int64, 1)
	go func() {
		status, body, err := a.do(http.MethodPut, "/api/v1/containers/notes/docs/d3", `{"id":"d3","pk":"p"}`)
		var doc struct {
			LSN int64 `json:"_lsn"`
		}
		if err != nil || status != http.StatusCreated || json.Unmarshal(body, &doc) != nil {
			t.Errorf("PUT d3 on the resumed hub: status %d, %v: %s", status, err, body)
		}
		waiting <- doc.LSN
	}()
	deadline := time.Now().Add(lease + lease/5 + 2*time.Second)
	for b.tierStatus().Sequencer != "b" {
		if time.Now().After(deadline) {
			t.Fatalf("b did not take over within %s of the pause", time.Since(paused))
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := b.tierStatus()
	t.Logf("takeover from the paused sequencer: %s after the pause by this test's clock, %d ms without a sequencer by the database's",
		time.Since(paused).Round(time.Millisecond), st.Takeovers[0].GapMs)
	if k := st.Takeovers[0]; k.Epoch != 2 || k.Holder != "b" || k.Previous != "a" || k.GapMs > (lease+lease/5+time.Second).Milliseconds() {
		t.Fatalf("takeover %+v: want epoch 2 from a to b within the lease timeout plus 1s", k)
	}
	d4 := put(b, "d4")
	time.Sleep(lease) // paused well past its lease
	if err := a.proc.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	var d3 int64
	select {
	case d3 = <-waiting:
	case <-time.After(15 * time.Second):
		t.Fatal("the write waiting on the resumed hub got no answer")
	}
	if d3 <= d4 {
		t.Fatalf("d3 confirmed at LSN %d, before d4 (%d) which the new sequencer confirmed during the pause: the old sequencer committed it", d3, d4)
	}
	put(a, "d5") // the resumed hub forwards
	time.Sleep(2 * lease)
	st = a.tierStatus()
	if st.Sequencer != "b" || len(st.Hubs) != 2 || !st.Hubs[0].Online || st.Hubs[0].Sequencer {
		t.Fatalf("status on the resumed hub: %+v, want a online as a follower and b the sequencer", st)
	}
	if got := a.metric("edgesync_hub_lease_held"); got != "0" {
		t.Fatalf("a's edgesync_hub_lease_held %s, want 0", got)
	}
	if got := a.metric("edgesync_hub_writes_total"); got != writes {
		t.Fatalf("a committed write jobs after the pause: edgesync_hub_writes_total %s, was %s before", got, writes)
	}

	// The log: LSNs 1..5, each document once, every one after the pause
	// at a takeover's epoch decided by b.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT lsn, id FROM log ORDER BY lsn`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var lsn int64
		var id string
		if err := rows.Scan(&lsn, &id); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d:%s", lsn, id))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := "1:d1 2:d2 3:d4 4:d3 5:d5"; strings.Join(got, " ") != want {
		t.Fatalf("log %v, want %s", got, want)
	}
}
