package loadtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edgesync/edgesync/replica/wire"
)

// loadEdge is one lightweight edge: a registered token and node id, one
// WebSocket, one goroutine. Like a real edge it pings the hub once welcomed
// and then at the interval the welcome asks for (wire.Heartbeat), each ping
// carrying its clock in unix milliseconds (a timer, not a goroutine, sends
// them). It reconnects after any failure with jittered
// exponential backoff, waiting as a 503's Retry-After asks, and never gives
// up while the test runs.
type loadEdge struct {
	name, token, node string
	source            net.IP // loopback address it dials from

	lsn      atomic.Int64 // last position received (its resume point)
	welcomed atomic.Int64 // generation of the test at its last welcome
	attempts atomic.Int64 // connection attempts since the last reset
}

// errBusy is a handshake the hub refused with 503.
type errBusy struct{ retryAfter time.Duration }

func (e *errBusy) Error() string { return fmt.Sprintf("hub busy, retry after %s", e.retryAfter) }

func (e *loadEdge) run(t *test) {
	failures := 0
	for t.stop.Err() == nil {
		e.attempts.Add(1)
		welcomed, err := e.session(t)
		if t.stop.Err() != nil {
			return
		}
		if welcomed {
			failures = 0
		}
		var wait time.Duration
		var busy *errBusy
		if errors.As(err, &busy) {
			t.refused.Add(1)
			wait = busy.retryAfter/2 + rand.N(busy.retryAfter+1)
		} else {
			d := min(100*time.Millisecond<<min(failures, 6), 5*time.Second)
			wait = d/2 + rand.N(d/2+1)
		}
		failures++
		select {
		case <-t.stop.Done():
			return
		case <-time.After(wait):
		}
	}
}

// session runs one connection until it fails; it reports whether the hub
// welcomed the edge.
func (e *loadEdge) session(t *test) (bool, error) {
	d := websocket.Dialer{
		NetDialContext:   (&net.Dialer{LocalAddr: &net.TCPAddr{IP: e.source}, Timeout: 10 * time.Second}).DialContext,
		HandshakeTimeout: 10 * time.Second,
		Subprotocols:     []string{wire.Subprotocol},
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
	}
	ctx, cancel := context.WithTimeout(t.stop, 15*time.Second)
	conn, resp, err := d.DialContext(ctx, "ws://"+t.addr+"/api/v1/sync",
		http.Header{"Authorization": {"Bearer " + e.token}, wire.FeaturesHeader: {wire.FeatureHeartbeat}})
	cancel()
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusServiceUnavailable {
			secs, _ := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After")))
			return false, &errBusy{retryAfter: time.Duration(max(secs, 1)) * time.Second}
		}
		return false, err
	}
	defer conn.Close()
	stop := context.AfterFunc(t.stop, func() { conn.Close() })
	defer stop()
	conn.SetReadLimit(wire.MaxFrameBytes)
	// Until the welcome, and after it a ping interval more than the hub's
	// timeout: the tool's edges leave a hub only when it is gone.
	wait := wire.PongWait + wire.PingInterval
	extend := func() { conn.SetReadDeadline(time.Now().Add(wait)) }
	conn.SetPingHandler(func(data string) error {
		t.hubPings.Add(1)
		extend()
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(wire.WriteWait))
		var ne net.Error
		if errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) {
			return nil
		}
		return err
	})
	conn.SetPongHandler(func(string) error { extend(); return nil })
	done := make(chan struct{})
	defer close(done)
	if err := write(conn, &wire.Frame{Type: wire.TypeHello, NodeID: e.node, Protocol: wire.ProtocolVersion, ResumeLSN: e.lsn.Load()}); err != nil {
		return false, err
	}
	welcomed := false
	for {
		extend()
		_, data, err := conn.ReadMessage()
		if err != nil {
			return welcomed, err
		}
		f, err := wire.Decode(data)
		if err != nil {
			return welcomed, err
		}
		switch f.Type {
		case wire.TypeWelcome:
			every, timeout := wire.Heartbeat(f, 0)
			wait = timeout + every
			t.pingEvery.Store(int64(every))
			if !welcomed {
				time.AfterFunc(0, func() { ping(conn, every, &t.edgePings, done) })
			}
			welcomed = true
			e.welcomed.Store(t.gen.Load())
		case wire.TypeError:
			return welcomed, fmt.Errorf("hub refused: %s: %s", f.Code, f.Message)
		case wire.TypeChanges:
			now := time.Now()
			for _, c := range f.Changes {
				t.received(c.ID, now)
			}
			e.lsn.Store(f.LSN)
			if err := write(conn, &wire.Frame{Type: wire.TypeAck, LSN: f.LSN}); err != nil {
				return welcomed, err
			}
		}
	}
}

// ping sends a ping with this machine's clock, as a real edge's sync writer
// does, and again every interval until done is closed or a ping fails (the
// session's read then fails too); it counts the pings it sent.
func ping(conn *websocket.Conn, every time.Duration, sent *atomic.Int64, done <-chan struct{}) {
	select {
	case <-done:
		return
	default:
	}
	payload := strconv.AppendInt(nil, time.Now().UnixMilli(), 10)
	if err := conn.WriteControl(websocket.PingMessage, payload, time.Now().Add(wire.WriteWait)); err != nil {
		return
	}
	sent.Add(1)
	time.AfterFunc(every, func() { ping(conn, every, sent, done) })
}

func write(conn *websocket.Conn, f *wire.Frame) error {
	b, err := wire.Encode(f)
	if err != nil {
		return err
	}
	conn.SetWriteDeadline(time.Now().Add(wire.WriteWait))
	return conn.WriteMessage(websocket.TextMessage, b)
}
