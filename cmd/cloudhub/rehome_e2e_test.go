package main

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
)

// An edgenode started with --hub a,b where both cloudhub processes keep
// the hub in one PostgreSQL database: it syncs with a; when a is killed
// it moves to b and resumes from its last LSN (b's log shows the resume
// point), its writes confirm there; when a is back at its address the
// edge returns to it within the probe bound, and its writes confirm
// there. Writes go through the hub the edge is on, so the test holds
// whether each hub sequences its own edges' writes or hands them to one
// sequencer.
func TestE2E_EdgeRehomesBetweenHubsOfOneDatabase(t *testing.T) {
	hubBin, edgeBin := e2eBinaries(t)
	db := pgtest.Database(t)
	flags := []string{"--admin-token", e2eAdminToken, "--durability", "normal", "--postgres", db}
	a := newE2ENode(t, "hub a", "cloudhub listening", hubBin, t.TempDir(), flags...)
	a.auth = e2eAdminToken
	a.start()
	a.listen = a.addr
	if status, b, err := a.do(http.MethodPut, "/api/v1/containers/orders", `{"partitionKey":"/pk"}`); err != nil || status != http.StatusCreated {
		t.Fatalf("define orders at hub a: %d %s %v", status, b, err)
	}
	reg, err := a.api.RegisterEdge(context.Background(), "laptop", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := newE2ENode(t, "hub b", "cloudhub listening", hubBin, t.TempDir(), flags...)
	b.auth = e2eAdminToken
	b.start()

	const probe = 300 * time.Millisecond
	e := newE2ENode(t, "edge", "edgenode listening", edgeBin, t.TempDir(),
		"--hub", "http://"+a.addr+",http://"+b.addr, "--token", reg.Token, "--durability", "normal",
		"--hub-probe-interval", probe.String(), "--hub-timeout", "3s")
	e.start()

	onHub := func(h *e2eNode) func() error {
		want := "ws://" + h.addr + "/api/v1/sync"
		return func() error {
			st, err := e.edgeStatus()
			if err == nil && (!st.Connected || st.Hub != want) {
				err = fmt.Errorf("connected %v to %q, want %s", st.Connected, st.Hub, want)
			}
			return err
		}
	}
	n := 0
	writeAndConfirm := func(count int) {
		t.Helper()
		for range count {
			n++
			id := "o" + strconv.Itoa(n)
			e.call(http.MethodPut, "/api/v1/containers/orders/docs/"+id, `{"id":"`+id+`","pk":"p"}`, http.StatusCreated, nil)
		}
		e2eWaitFor(t, 15*time.Second, "edge writes confirmed", func() error {
			st, err := e.edgeStatus()
			if err == nil && st.Pending != 0 {
				err = fmt.Errorf("%d writes pending", st.Pending)
			}
			return err
		})
	}

	e2eWaitFor(t, 15*time.Second, "edge on hub a", onHub(a))
	e2eWaitKnows(t, e, "orders")
	writeAndConfirm(5)
	resume := e.mustEdgeStatus().LastLSN
	if resume < 5 {
		t.Fatalf("lastLsn %d after 5 confirmed writes", resume)
	}

	a.kill9()
	killed := time.Now()
	e2eWaitFor(t, 15*time.Second, "edge on hub b", onHub(b))
	t.Logf("edge on hub b %s after hub a was killed", time.Since(killed).Round(time.Millisecond))
	writeAndConfirm(5)
	// The hub logs the resume point of each edge's hello.
	if !regexp.MustCompile(`msg="edge connected".* resume=` + strconv.FormatInt(resume, 10) + `\b`).MatchString(b.log.String()) {
		t.Fatalf("hub b's log has no session resumed from %d:\n%s", resume, b.log.String())
	}

	a.start()
	back := time.Now()
	e2eWaitFor(t, 3*probe/2+10*time.Second, "edge back on hub a", onHub(a))
	t.Logf("edge back on hub a %s after it answered", time.Since(back).Round(time.Millisecond))
	writeAndConfirm(5)

	for i := 1; i <= n; i++ {
		status, d := e.getDoc("orders", "o"+strconv.Itoa(i), "?consistency=confirmed")
		if status != http.StatusOK {
			t.Fatalf("edge: o%d confirmed: status %d", i, status)
		}
		e2eWantConfirmed(t, "edge", d)
	}
	if got := len(b.listDocs("orders")); got != n {
		t.Fatalf("hub b lists %d documents, want %d", got, n)
	}
	st := e.mustEdgeStatus()
	if st.Rehomes != 2 || st.ConnectedAt.IsZero() {
		t.Fatalf("edge status: rehomes %d, connectedAt %v; want 2 and a time", st.Rehomes, st.ConnectedAt)
	}
	if got := strings.Count(e.log.String(), "msg=rehomed"); got != 2 {
		t.Fatalf("edge logged %d moves, want 2:\n%s", got, e.log.String())
	}
}
