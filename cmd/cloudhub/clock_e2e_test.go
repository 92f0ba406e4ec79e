package main

// End-to-end tests of clock skew: edgenode --clock-offset shifts an edge's
// own clock, as a device whose clock is wrong; the hub clamps a _ts from
// the future and edges correct theirs with the offset they measured.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// e2eClockStatus is the clock part of an edge's status.
type e2eClockStatus struct {
	NodeID          string `json:"nodeId"`
	ClockOffset     int64  `json:"clockOffset"`
	ClockMeasuredAt int64  `json:"clockMeasuredAt"`
	LastTS          int64  `json:"lastTs"`
}

func (n *e2eNode) clockStatus() e2eClockStatus {
	n.t.Helper()
	var st e2eClockStatus
	n.call(http.MethodGet, "/api/v1/status", nil, http.StatusOK, &st)
	return st
}

// e2eEdgeClock is an edge as the hub's edge list shows it.
type e2eEdgeClock struct {
	Name            string `json:"name"`
	ClockSkew       int64  `json:"clockSkew"`
	ClockMeasuredAt int64  `json:"clockMeasuredAt"`
	Clamped         int64  `json:"clamped"`
	ClockSuspect    bool   `json:"clockSuspect"`
}

func (c *e2eCluster) edgeClock(name string) e2eEdgeClock {
	c.t.Helper()
	var resp struct {
		Edges []e2eEdgeClock `json:"edges"`
	}
	c.hub.call(http.MethodGet, "/api/v1/edges", nil, http.StatusOK, &resp)
	for _, e := range resp.Edges {
		if e.Name == name {
			return e
		}
	}
	c.t.Fatalf("edge %s is not in the hub's edge list", name)
	return e2eEdgeClock{}
}

// e2eClampedMetric reads edgesync_hub_clock_clamped_total from the hub.
func (c *e2eCluster) clampedMetric() float64 {
	c.t.Helper()
	b := c.hub.call(http.MethodGet, "/metrics", nil, http.StatusOK, nil)
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "edgesync_hub_clock_clamped_total "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				c.t.Fatal(err)
			}
			return f
		}
	}
	c.t.Fatal("no edgesync_hub_clock_clamped_total in /metrics")
	return 0
}

// startClockEdge starts an edge with --clock-offset off syncing with hub
// (an address where nothing listens makes it an edge that cannot reach a
// hub).
func (c *e2eCluster) startClockEdge(name, token, hub string, off time.Duration) *e2eNode {
	c.t.Helper()
	e := newE2ENode(c.t, "edge "+name, "edgenode listening", c.edgeBin, c.t.TempDir())
	e.flags = clockEdgeFlags(token, hub, off)
	e.start()
	return e
}

func clockEdgeFlags(token, hub string, off time.Duration) []string {
	return []string{"--hub", "http://" + hub, "--token", token, "--durability", "normal", "--clock-offset", off.String()}
}

// e2eDeadAddr is a loopback address where nothing listens.
func e2eDeadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// waitMeasured waits until an edge has measured its offset from the hub and
// checks it is about want.
func waitMeasured(t *testing.T, e *e2eNode, want time.Duration) e2eClockStatus {
	t.Helper()
	var st e2eClockStatus
	e2eWaitFor(t, 15*time.Second, e.name+" measures its clock offset", func() error {
		st = e.clockStatus()
		if st.ClockMeasuredAt == 0 {
			return fmt.Errorf("not measured: %+v", st)
		}
		if d := st.ClockOffset - want.Milliseconds(); d < -1000 || d > 1000 {
			return fmt.Errorf("clockOffset %d ms, want about %d", st.ClockOffset, want.Milliseconds())
		}
		return nil
	})
	return st
}

func e2eTS(d e2eDoc) int64 {
	f, _ := d["_ts"].(float64)
	return int64(f)
}

// e2eSleepPast sleeps until the wall clock's unix second is past sec.
func e2eSleepPast(sec int64) {
	for time.Now().Unix() <= sec {
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *e2eNode) put(container, id, body string) e2eDoc {
	n.t.Helper()
	var d e2eDoc
	status, b, err := n.do(http.MethodPut, "/api/v1/containers/"+container+"/docs/"+id, body)
	if err != nil || (status != http.StatusOK && status != http.StatusCreated) {
		n.t.Fatalf("%s: PUT %s/%s: status %d %s %v", n.name, container, id, status, b, err)
	}
	d, err = e2eDecodeDoc(b)
	if err != nil {
		n.t.Fatal(err)
	}
	return d
}

func (c *e2eCluster) record(container, version string) e2eClampedRecord {
	c.t.Helper()
	var page struct {
		Changes []e2eClampedRecord `json:"changes"`
	}
	c.hub.call(http.MethodGet, "/api/v1/containers/"+container+"/changes?limit=1000", nil, http.StatusOK, &page)
	for _, r := range page.Changes {
		if r.Version == version {
			return r
		}
	}
	c.t.Fatalf("hub: no change record of %s", version)
	return e2eClampedRecord{}
}

type e2eClampedRecord struct {
	Version   string `json:"version"`
	TS        int64  `json:"ts"`
	CRTS      int64  `json:"crts"`
	ClampedTS int64  `json:"clampedTs"`
}

// An edge whose clock is an hour ahead writes before it ever reached a hub
// (so it has no offset to correct with), then reaches the hub; a correct
// edge, offline meanwhile, writes the same item two seconds later. The
// later write wins at the hub and on both edges; the change record and the
// conflicts feed show the fast write's _ts and the receipt time that
// decided instead; the hub counts the clamp and flags the edge.
func TestE2E_ClockAheadCannotWin(t *testing.T) {
	c := newE2ECluster(t)
	c.hub.call(http.MethodPut, "/api/v1/containers/notes", `{"partitionKey":"/pk"}`, http.StatusCreated, nil)
	fastTok, slowTok := c.registerEdge("fast", nil), c.registerEdge("slow", nil)
	slow := c.startEdge("slow", slowTok)
	e2eWaitKnows(t, slow, "notes")
	slow.call(http.MethodPost, "/api/v1/sync/offline", nil, http.StatusNoContent, nil)

	c.hub.stop()
	fast := c.startClockEdge("fast", fastTok, c.hub.listen, time.Hour)
	fast.call(http.MethodPut, "/api/v1/containers/notes", `{"partitionKey":"/pk"}`, http.StatusCreated, nil)
	wrote := time.Now().Unix()
	fd := fast.put("notes", "x", `{"id":"x","pk":"a","by":"fast"}`)
	if ts := e2eTS(fd); ts < wrote+3599 {
		t.Fatalf("fast edge's _ts %d, want about an hour ahead of %d (no offset known yet)", ts, wrote)
	}
	c.hub.start()
	c.waitSynced(15*time.Second, fast)
	waitMeasured(t, fast, -time.Hour)
	fv := fd["_etag"].(string)
	fastVersion := strings.Trim(fv, `"`)
	rec := c.record("notes", fastVersion)
	if rec.TS != e2eTS(fd) || rec.ClampedTS == 0 || rec.ClampedTS != rec.CRTS {
		t.Fatalf("hub's record of the fast write %+v: want ts %d kept and clampedTs the receipt time", rec, e2eTS(fd))
	}

	e2eSleepPast(max(wrote+1, rec.ClampedTS)) // two seconds after the fast write, in real time
	sd := slow.put("notes", "x", `{"id":"x","pk":"a","by":"slow"}`)
	slow.call(http.MethodPost, "/api/v1/sync/online", nil, http.StatusNoContent, nil)
	c.waitSynced(15*time.Second, fast, slow)
	for _, n := range []*e2eNode{c.hub, fast, slow} {
		if _, d := n.getDoc("notes", "x", ""); d["by"] != "slow" {
			t.Fatalf("%s: x=%v, want the later write (by slow) to win", n.name, d)
		}
	}
	cs := c.hub.conflicts("notes", "")
	if len(cs) != 1 || cs[0].Existing == nil || cs[0].Existing.Version != fastVersion {
		t.Fatalf("conflicts %+v, want one with the fast write as the existing side", cs)
	}
	var raw struct {
		Conflicts []struct {
			Existing struct {
				TS        int64 `json:"ts"`
				ClampedTS int64 `json:"clampedTs"`
			} `json:"existing"`
		} `json:"conflicts"`
	}
	c.hub.call(http.MethodGet, "/api/v1/containers/notes/conflicts", nil, http.StatusOK, &raw)
	if got := raw.Conflicts[0].Existing; got.TS != e2eTS(fd) || got.ClampedTS != rec.ClampedTS {
		t.Fatalf("conflict's existing side ts %d clampedTs %d, want %d and %d", got.TS, got.ClampedTS, e2eTS(fd), rec.ClampedTS)
	}
	if e2eTS(sd) <= rec.ClampedTS {
		t.Fatalf("slow _ts %d not after the fast write's receipt %d: the test proves nothing", e2eTS(sd), rec.ClampedTS)
	}
	ec := c.edgeClock("fast")
	if ec.Clamped != 1 || !ec.ClockSuspect || math.Abs(float64(ec.ClockSkew-3600_000)) > 1000 {
		t.Fatalf("hub's edge list for fast: %+v, want 1 clamp, flagged, skew about +3600000 ms", ec)
	}
	if got := c.clampedMetric(); got != 1 {
		t.Fatalf("edgesync_hub_clock_clamped_total %v, want 1", got)
	}
	// Its _ts never goes backwards: its next write keeps the _ts it issued
	// an hour ahead (until real time catches up), and the hub clamps it
	// too, so it is decided at its receipt time.
	nd := fast.put("notes", "y", `{"id":"y","pk":"a"}`)
	if e2eTS(nd) != e2eTS(fd) {
		t.Fatalf("fast edge's next _ts %d, want it held at %d", e2eTS(nd), e2eTS(fd))
	}
	c.waitSynced(15*time.Second, fast, slow)
	if r := c.record("notes", strings.Trim(nd["_etag"].(string), `"`)); r.ClampedTS != r.CRTS {
		t.Fatalf("hub's record of the held write %+v, want it clamped to its receipt time", r)
	}
}

// An edge whose clock is an hour behind and that synced recently writes
// two seconds after a correct edge, both offline: its _ts is corrected by
// the offset it measured, and its write, the later one, wins everywhere.
func TestE2E_ClockBehindCorrected(t *testing.T) {
	c := newE2ECluster(t)
	c.hub.call(http.MethodPut, "/api/v1/containers/notes", `{"partitionKey":"/pk"}`, http.StatusCreated, nil)
	slowTok, okTok := c.registerEdge("behind", nil), c.registerEdge("ok", nil)
	behind := c.startClockEdge("behind", slowTok, c.hub.listen, -time.Hour)
	ok := c.startEdge("ok", okTok)
	e2eWaitKnows(t, behind, "notes")
	e2eWaitKnows(t, ok, "notes")
	waitMeasured(t, behind, time.Hour)
	for _, e := range []*e2eNode{behind, ok} {
		e.call(http.MethodPost, "/api/v1/sync/offline", nil, http.StatusNoContent, nil)
	}
	od := ok.put("notes", "x", `{"id":"x","pk":"a","by":"ok"}`)
	e2eSleepPast(e2eTS(od) + 1) // at least a second later in real time
	time.Sleep(time.Second)
	bd := behind.put("notes", "x", `{"id":"x","pk":"a","by":"behind"}`)
	if d := e2eTS(bd) - time.Now().Unix(); d < -2 || d > 2 {
		t.Fatalf("behind edge's _ts is %d s off real time, want corrected", d)
	}
	for _, e := range []*e2eNode{behind, ok} {
		e.call(http.MethodPost, "/api/v1/sync/online", nil, http.StatusNoContent, nil)
	}
	c.waitSynced(15*time.Second, behind, ok)
	for _, n := range []*e2eNode{c.hub, behind, ok} {
		if _, d := n.getDoc("notes", "x", ""); d["by"] != "behind" {
			t.Fatalf("%s: x=%v, want the later write (by behind) to win", n.name, d)
		}
	}
	if ec := c.edgeClock("behind"); ec.Clamped != 0 || math.Abs(float64(ec.ClockSkew+3600_000)) > 1000 || !ec.ClockSuspect {
		t.Fatalf("hub's edge list for behind: %+v, want no clamp, flagged, skew about -3600000 ms", ec)
	}
}

// An edge offline for a day whose clock drifts: first a day behind, then a
// day ahead, restarted each time with no hub reachable, then reconnected.
// Its _ts never goes backwards (a clock a day behind holds it where it was;
// a clock a day ahead moves it a day on, as nothing can correct it
// offline); once it reconnects it measures the new offset, and its offline
// write from the clock a day ahead is clamped at the hub, so it cannot win
// against a write that reaches the hub after it.
func TestE2E_ClockDriftsOffline(t *testing.T) {
	c := newE2ECluster(t)
	c.hub.call(http.MethodPut, "/api/v1/containers/notes", `{"partitionKey":"/pk"}`, http.StatusCreated, nil)
	driftTok, okTok := c.registerEdge("drift", nil), c.registerEdge("ok", nil)
	drift := c.startClockEdge("drift", driftTok, c.hub.listen, 0)
	ok := c.startEdge("ok", okTok)
	e2eWaitKnows(t, drift, "notes")
	e2eWaitKnows(t, ok, "notes")
	waitMeasured(t, drift, 0)
	ts1 := e2eTS(drift.put("notes", "a1", `{"id":"a1","pk":"a"}`))
	c.waitSynced(15*time.Second, drift, ok)
	last := drift.clockStatus().LastTS
	if last != ts1 {
		t.Fatalf("lastTs %d, want %d", last, ts1)
	}

	dead := e2eDeadAddr(t)
	drift.stop()
	drift.flags = clockEdgeFlags(driftTok, dead, -24*time.Hour)
	drift.start()
	ts2 := e2eTS(drift.put("notes", "a2", `{"id":"a2","pk":"a"}`))
	if ts2 < ts1 || ts2 > time.Now().Unix()+1 {
		t.Fatalf("offline, clock a day behind: _ts %d, want held at or after %d and not ahead of real time", ts2, ts1)
	}

	drift.stop()
	drift.flags = clockEdgeFlags(driftTok, dead, 24*time.Hour)
	drift.start()
	if got := drift.clockStatus().LastTS; got != ts2 {
		t.Fatalf("after a restart lastTs %d, want %d", got, ts2)
	}
	zd := drift.put("notes", "z", `{"id":"z","pk":"a","by":"drift"}`)
	ts3 := e2eTS(zd)
	if ts3 < ts2 || ts3 < time.Now().Unix()+86400-5 {
		t.Fatalf("offline, clock a day ahead: _ts %d, want a day ahead and not before %d", ts3, ts2)
	}

	ok.call(http.MethodPost, "/api/v1/sync/offline", nil, http.StatusNoContent, nil)
	drift.stop()
	drift.flags = clockEdgeFlags(driftTok, c.hub.listen, 24*time.Hour)
	drift.start()
	c.waitSynced(15*time.Second, drift)
	waitMeasured(t, drift, -24*time.Hour)
	rec := c.record("notes", strings.Trim(zd["_etag"].(string), `"`))
	if rec.TS != ts3 || rec.ClampedTS == 0 || rec.ClampedTS != rec.CRTS {
		t.Fatalf("hub's record of the offline write %+v: want ts %d kept, clamped to the receipt time", rec, ts3)
	}
	e2eSleepPast(rec.ClampedTS)
	ok.put("notes", "z", `{"id":"z","pk":"a","by":"ok"}`)
	ok.call(http.MethodPost, "/api/v1/sync/online", nil, http.StatusNoContent, nil)
	c.waitSynced(15*time.Second, drift, ok)
	for _, n := range []*e2eNode{c.hub, drift, ok} {
		if _, d := n.getDoc("notes", "z", ""); d["by"] != "ok" {
			t.Fatalf("%s: z=%v, want the write that reached the hub later (by ok) to win", n.name, d)
		}
	}
	if ts4 := e2eTS(drift.put("notes", "a4", `{"id":"a4","pk":"a"}`)); ts4 < ts3 {
		t.Fatalf("reconnected: _ts %d went back before %d", ts4, ts3)
	}
}

// --max-clock-skew (and CLOUDHUB_MAX_CLOCK_SKEW) must be a duration of at
// least a second.
func TestServe_MaxClockSkewFlag(t *testing.T) {
	testServeFlagRefused(t, "CLOUDHUB_MAX_CLOCK_SKEW", []serveFlagCase{
		{name: "below a second", args: []string{"--max-clock-skew", "500ms"}, wantStderr: "want at least 1s"},
		{name: "negative", args: []string{"--max-clock-skew", "-1m"}, wantStderr: "want at least 1s"},
		{name: "not a duration", args: []string{"--max-clock-skew", "soon"}, wantStderr: "soon"},
		{name: "from env", env: "0s", wantStderr: "want at least 1s"},
	})
}

// A version pushed over the sync protocol with a _ts an hour ahead cannot
// win against a later write; the hub answers a clock ping with its clock;
// sync frames never carry clampedTs (protocol 1 frames are decoded
// strictly), and a real edge following along stays in sync.
func TestE2E_ClockPushedOverProtocol(t *testing.T) {
	c := newE2ECluster(t)
	c.hub.call(http.MethodPut, "/api/v1/containers/notes", `{"partitionKey":"/pk"}`, http.StatusCreated, nil)
	good := c.startEdge("good", c.registerEdge("good", nil))
	c.waitSynced(15*time.Second, good)
	conn, _, err := e2eDial(t, c.hub.addr, c.registerEdge("raw", nil))
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	pongs := make(chan string, 4)
	conn.SetPongHandler(func(data string) error { pongs <- data; return nil })
	read := func(until string) map[string]any {
		t.Helper()
		for {
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, b, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("waiting for %s: %v", until, err)
			}
			frames = append(frames, b)
			var f map[string]any
			if err := json.Unmarshal(b, &f); err != nil {
				t.Fatal(err)
			}
			if f["type"] == until {
				return f
			}
		}
	}
	send := func(s string) {
		t.Helper()
		if err := conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"type":"hello","nodeId":"e00000000000000c1","protocol":1,"wantConflicts":true}`)
	read("welcome")

	sent := time.Now().UnixMilli()
	if err := conn.WriteControl(websocket.PingMessage, []byte(strconv.FormatInt(sent, 10)), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	send(fmt.Sprintf(`{"type":"push","batch":1,"versions":[{"container":"notes","id":"x","op":"create","version":"e00000000000000c1-1","ts":%d,"body":{"id":"x","pk":"a","by":"future"}}]}`,
		time.Now().Unix()+3600))
	out := read("outcomes")
	select {
	case p := <-pongs:
		echo, hubMs, ok := strings.Cut(p, " ")
		hub, err := strconv.ParseInt(hubMs, 10, 64)
		if !ok || echo != strconv.FormatInt(sent, 10) || err != nil || hub < sent-1000 || hub > time.Now().UnixMilli()+1000 {
			t.Fatalf("pong %q to ping %d, want the ping's payload and the hub's clock", p, sent)
		}
	default:
		t.Fatal("no pong to the clock ping")
	}
	if o := out["outcomes"].([]any)[0].(map[string]any); o["outcome"] != "confirmed" {
		t.Fatalf("first push: %v, want confirmed", o)
	}
	rec := c.record("notes", "e00000000000000c1-1")
	e2eSleepPast(max(rec.ClampedTS, rec.CRTS) + 1)
	send(fmt.Sprintf(`{"type":"push","batch":2,"versions":[{"container":"notes","id":"x","op":"create","version":"e00000000000000c1-2","ts":%d,"body":{"id":"x","pk":"a","by":"later"}}]}`,
		time.Now().Unix()))
	if o := read("outcomes")["outcomes"].([]any)[0].(map[string]any); o["outcome"] != "confirmed" {
		t.Fatalf("the later write: %v, want confirmed over the one from the future", o)
	}
	read("conflicts")
	for _, b := range frames {
		if strings.Contains(string(b), "clampedTs") {
			t.Fatalf("a sync frame carries clampedTs: %s", b)
		}
	}
	c.waitSynced(15*time.Second, good)
	if _, d := good.getDoc("notes", "x", ""); d["by"] != "later" {
		t.Fatalf("good edge: x=%v, want the later write", d)
	}
	if cs := c.hub.conflicts("notes", ""); len(cs) != 1 || cs[0].Loser != "existing" || !strings.Contains(cs[0].Reason, "lww: incoming wins") {
		t.Fatalf("hub conflicts %+v, want the write from the future as the loser", cs)
	}
	if rec.ClampedTS == 0 {
		t.Fatalf("hub's record of the write from the future %+v, want it clamped", rec)
	}
}
