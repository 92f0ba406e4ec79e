package hub_test

import (
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edgesync/edgesync/replica/hub"
)

// Heartbeat timings of these tests: pings every 100 ms, a session ends
// after 400 ms without anything from its edge.
const (
	testPingInterval = 100 * time.Millisecond
	testPongWait     = 400 * time.Millisecond
)

// heartbeat is what an edge saw of the hub's heartbeat over a while.
type heartbeat struct {
	pings, pongs int64         // control frames from the hub
	ended        error         // the read error that ended the watch
	after        time.Duration // from the welcome to the end of the watch
}

// watchHeartbeat connects a raw edge and reads for at most d. The edge
// pings the hub every testPingInterval/2 if pings is set, and answers the
// hub's pings if answer is set; it sends nothing else after its hello.
func watchHeartbeat(t *testing.T, name string, pings, answer bool, d time.Duration) heartbeat {
	t.Helper()
	c := newCluster(t)
	r, _ := helloRaw(t, c, name, nil, 0)
	welcomed := time.Now()
	var got heartbeat
	var hubPings, hubPongs atomic.Int64
	r.conn.SetPingHandler(func(data string) error {
		hubPings.Add(1)
		if !answer {
			return nil
		}
		return r.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	r.conn.SetPongHandler(func(string) error { hubPongs.Add(1); return nil })
	done := make(chan struct{})
	defer close(done)
	if pings {
		go pingClock(r.conn, testPingInterval/2, done)
	}
	r.conn.SetReadDeadline(welcomed.Add(d))
	for got.ended == nil {
		_, _, got.ended = r.conn.ReadMessage()
	}
	got.after = time.Since(welcomed)
	got.pings, got.pongs = hubPings.Load(), hubPongs.Load()
	return got
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestSync_PingingEdgeIsNotPinged: the hub sends no pings of its own to an
// edge that pings it within every ping interval, answers each of the edge's
// pings, and keeps the session well past the pong wait.
func TestSync_PingingEdgeIsNotPinged(t *testing.T) {
	t.Cleanup(hub.SetHeartbeat(testPingInterval, testPongWait)) // after the cluster has closed
	got := watchHeartbeat(t, "pinging", true, true, 3*testPongWait)
	if !isTimeout(got.ended) {
		t.Fatalf("session ended after %s: %v, want it to outlast the watch", got.after, got.ended)
	}
	if got.pings != 0 {
		t.Errorf("the hub pinged an edge that pings it %d times in %s, want 0", got.pings, got.after)
	}
	if got.pongs == 0 {
		t.Errorf("the hub answered none of the edge's pings")
	}
}

// TestSync_SilentEdgeIsPinged: an edge that only answers pings is pinged
// every interval and keeps its session well past the pong wait.
func TestSync_SilentEdgeIsPinged(t *testing.T) {
	t.Cleanup(hub.SetHeartbeat(testPingInterval, testPongWait)) // after the cluster has closed
	got := watchHeartbeat(t, "silent", false, true, 3*testPongWait)
	if !isTimeout(got.ended) {
		t.Fatalf("session ended after %s: %v, want it to outlast the watch", got.after, got.ended)
	}
	// One ping per interval (its pongs do not count as the edge speaking:
	// counted, they would halve the pings), less the first slot and some
	// slack for a busy machine.
	if want := int64(3*testPongWait/testPingInterval) * 2 / 3; got.pings < want {
		t.Errorf("the hub pinged a silent edge %d times in %s, want at least %d", got.pings, got.after, want)
	}
}

// TestSync_DeadEdgeIsPingedThenDropped: an edge that stops answering is pinged and its
// session ends once nothing came from it for the pong wait.
func TestSync_DeadEdgeIsPingedThenDropped(t *testing.T) {
	t.Cleanup(hub.SetHeartbeat(testPingInterval, testPongWait)) // after the cluster has closed
	got := watchHeartbeat(t, "dead", false, false, 10*testPongWait)
	if isTimeout(got.ended) {
		t.Fatalf("session still up after %s, want it ended after about %s", got.after, testPongWait)
	}
	if got.pings == 0 {
		t.Errorf("the hub ended the session without pinging the edge")
	}
	if got.after < testPongWait-testPingInterval {
		t.Errorf("session ended %s after the welcome, want not before the pong wait %s", got.after, testPongWait)
	}
}

// pingClock pings the hub every interval with the clock payload an edge
// sends, as an edge does, until done is closed or a ping cannot be written.
func pingClock(conn *websocket.Conn, every time.Duration, done <-chan struct{}) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		payload := strconv.AppendInt(nil, time.Now().UnixMilli(), 10)
		if err := conn.WriteControl(websocket.PingMessage, payload, time.Now().Add(time.Second)); err != nil {
			return
		}
		select {
		case <-done:
			return
		case <-tick.C:
		}
	}
}
