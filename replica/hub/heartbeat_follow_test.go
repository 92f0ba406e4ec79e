package hub_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/wire"
)

// dialFollowing connects a raw edge that names wire.FeatureHeartbeat in its
// upgrade request, says hello and returns the welcome as it came.
func dialFollowing(t *testing.T, c *cluster, name string) (*rawEdge, []byte) {
	t.Helper()
	tok, err := c.hub.RegisterEdge(c.ctx, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}, HandshakeTimeout: 5 * time.Second}
	hdr := http.Header{"Authorization": {"Bearer " + tok}, wire.FeaturesHeader: {"clocks, " + wire.FeatureHeartbeat}}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(c.srv.URL, "http"), hdr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	r := &rawEdge{t: t, conn: conn}
	node := fmt.Sprintf("e%016x", len(name)+0xf011)
	if err := r.send(fmt.Sprintf(`{"type":"hello","nodeId":%q,"protocol":1}`, node)); err != nil {
		t.Fatal(err)
	}
	b, f, err := r.next(10 * time.Second)
	if err != nil || f.Type != wire.TypeWelcome {
		t.Fatalf("welcome: %+v, %v", f, err)
	}
	return r, b
}

// TestSync_WelcomeCarriesHeartbeat: an edge that says it follows the hub's
// heartbeat gets the hub's ping interval and twice it as the timeout; an
// older edge gets a welcome without them, which its strict decoder takes.
func TestSync_WelcomeCarriesHeartbeat(t *testing.T) {
	c := newCluster(t)
	_, b := dialFollowing(t, c, "following")
	f, err := wire.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.PingIntervalMs, hub.DefaultPingInterval.Milliseconds(); got != want {
		t.Errorf("welcome pingIntervalMs=%d, want %d", got, want)
	}
	if got, want := f.HeartbeatTimeoutMs, 2*hub.DefaultPingInterval.Milliseconds(); got != want {
		t.Errorf("welcome heartbeatTimeoutMs=%d, want %d", got, want)
	}

	r := dialRaw(t, c.srv.URL, mustRegister(t, c, "older"))
	if err := r.send(`{"type":"hello","nodeId":"e000000000000b0b0","protocol":1}`); err != nil {
		t.Fatal(err)
	}
	b, f, err = r.next(10 * time.Second)
	if err != nil || f.Type != wire.TypeWelcome {
		t.Fatalf("welcome: %+v, %v", f, err)
	}
	for _, member := range []string{"pingIntervalMs", "heartbeatTimeoutMs"} {
		if bytes.Contains(b, []byte(member)) {
			t.Errorf("welcome to an edge that does not follow the hub's heartbeat has %s: %s", member, b)
		}
	}
}

func mustRegister(t *testing.T, c *cluster, name string) string {
	t.Helper()
	tok, err := c.hub.RegisterEdge(c.ctx, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestSync_FollowingEdgeHeartbeat: with a ping interval of 1 s, an edge that
// follows it and pings every second is never pinged and keeps its session,
// and one that falls silent is pinged and dropped after the welcome's
// timeout, 2 s, not at the 400 ms an older edge gets.
func TestSync_FollowingEdgeHeartbeat(t *testing.T) {
	t.Cleanup(hub.SetHeartbeat(testPingInterval, testPongWait)) // after the cluster has closed
	const interval, timeout = time.Second, 2 * time.Second
	tests := []struct {
		name  string
		pings bool
	}{
		{name: "pinging", pings: true},
		{name: "dead", pings: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClusterWith(t, hub.Config{PingInterval: interval})
			r, b := dialFollowing(t, c, tt.name)
			f, err := wire.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := time.Duration(f.HeartbeatTimeoutMs)*time.Millisecond, timeout; got != want {
				t.Fatalf("welcome heartbeatTimeoutMs=%d, want %d", f.HeartbeatTimeoutMs, want.Milliseconds())
			}
			welcomed := time.Now()
			var hubPings atomic.Int64
			r.conn.SetPingHandler(func(string) error { hubPings.Add(1); return nil }) // never answered
			done := make(chan struct{})
			defer close(done)
			if tt.pings {
				go pingClock(r.conn, interval, done)
			}
			watch := 3 * timeout
			r.conn.SetReadDeadline(welcomed.Add(watch))
			var ended error
			for ended == nil {
				_, _, ended = r.conn.ReadMessage()
			}
			after := time.Since(welcomed)
			switch {
			case tt.pings && !isTimeout(ended):
				t.Fatalf("session of an edge pinging every %s ended after %s: %v", interval, after, ended)
			case tt.pings && hubPings.Load() != 0:
				t.Errorf("the hub pinged an edge that pings at its interval %d times", hubPings.Load())
			case !tt.pings && isTimeout(ended):
				t.Fatalf("silent edge's session still up after %s, want it dropped after %s", after, timeout)
			case !tt.pings && (after < timeout-testPingInterval || after > timeout+interval):
				t.Errorf("silent edge's session ended %s after the welcome, want about %s", after, timeout)
			case !tt.pings && hubPings.Load() == 0:
				t.Errorf("the hub dropped a silent edge without pinging it")
			}
		})
	}
}

// BenchmarkSession_Ping: an edge's clock ping and the hub's pong, one
// after the other over loopback; the hub's share is its ping handler
// (clock, pong, read deadline) and the frame's read and write.
func BenchmarkSession_Ping(b *testing.B) {
	c := newCluster(b)
	r, _ := helloRaw(b, c, "pinger", nil, 0)
	pongs := make(chan struct{}, 1)
	r.conn.SetPongHandler(func(string) error { pongs <- struct{}{}; return nil })
	go func() {
		for {
			if _, _, err := r.conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		payload := strconv.AppendInt(nil, time.Now().UnixMilli(), 10)
		if err := r.conn.WriteControl(websocket.PingMessage, payload, time.Now().Add(time.Second)); err != nil {
			b.Fatal(err)
		}
		<-pongs
	}
}
