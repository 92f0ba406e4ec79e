package edge_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/wire"
)

// fakeHub accepts one sync connection, reads the hello, sends frame and
// reports how the edge ended the connection.
func fakeHub(t *testing.T, frame []byte) (url string, closed <-chan error) {
	t.Helper()
	done := make(chan error, 1)
	up := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := conn.ReadMessage(); err != nil {
			select {
			case done <- err:
			default:
			}
			return
		}
		conn.WriteMessage(websocket.TextMessage, frame)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				select {
				case done <- err:
				default:
				}
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, done
}

// Invalid UTF-8 in a text frame from the hub fails the connection with
// close code 1007 (RFC 6455, section 8.1).
func TestSyncer_InvalidUTF8FromHubFailsConnection(t *testing.T) {
	url, closed := fakeHub(t, []byte("{\"type\":\"welcome\",\"hubId\":\"h\xff\",\"protocol\":1,\"edge\":\"a\",\"headLsn\":0}"))
	r := openReplica(t, t.TempDir())
	s, err := edge.NewSyncer(r, edge.SyncConfig{Hubs: []string{url}, Token: "t", MaxBackoff: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s.Open(context.Background())
	defer s.Close(context.Background())
	select {
	case err := <-closed:
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseInvalidFramePayloadData {
			t.Fatalf("edge ended the connection with %v, want close code 1007", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the edge did not end the connection")
	}
}

// A hub's refusal of the node id shows in the edge's status with what to
// do about it.
func TestSyncer_NodeMismatchShownInStatus(t *testing.T) {
	url, _ := fakeHub(t, []byte(`{"type":"error","code":"node_mismatch","message":"the token is bound to another node: revoke the edge at the hub and register it again"}`))
	r := openReplica(t, t.TempDir())
	s, err := edge.NewSyncer(r, edge.SyncConfig{Hubs: []string{url}, Token: "t", MaxBackoff: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s.Open(context.Background())
	defer s.Close(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := s.Status()
		if strings.Contains(st.LastError, wire.CodeNodeMismatch) && strings.Contains(st.LastError, "register it again") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Status().LastError=%q, want the hub's node_mismatch refusal", st.LastError)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scriptedHub is a hub's sync endpoint that follows a script: it welcomes
// every edge, records the frames it reads, and runs onPush for each push.
type scriptedHub struct {
	url    string
	health atomic.Int32 // status of GET /healthz; 0: 200
	refuse atomic.Bool  // answer the sync endpoint with 503
	mu     sync.Mutex
	hellos []*wire.Frame
	pushes []*wire.Frame
	events []string // "push", "outcomes sent", "closed by edge", in order
	onPush func(conn *websocket.Conn, f *wire.Frame)
}

func newScriptedHub(t *testing.T) *scriptedHub {
	t.Helper()
	sh := &scriptedHub{}
	up := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			code := int(sh.health.Load())
			if code == 0 {
				code = http.StatusOK
			}
			w.WriteHeader(code)
			return
		}
		if sh.refuse.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		hello, err := readTestFrame(conn)
		if err != nil {
			return
		}
		sh.record(func() { sh.hellos = append(sh.hellos, hello) })
		b, _ := wire.Encode(&wire.Frame{Type: wire.TypeWelcome, HubID: "hub", HubName: "scripted", Protocol: wire.ProtocolVersion, Edge: "e"})
		conn.WriteMessage(websocket.TextMessage, b)
		for {
			f, err := readTestFrame(conn)
			if err != nil {
				sh.record(func() { sh.events = append(sh.events, "closed by edge") })
				return
			}
			if f.Type == wire.TypePush {
				sh.record(func() { sh.pushes, sh.events = append(sh.pushes, f), append(sh.events, "push") })
				if sh.onPush != nil {
					sh.onPush(conn, f)
				}
			}
		}
	}))
	t.Cleanup(srv.Close)
	sh.url = srv.URL
	return sh
}

func (sh *scriptedHub) record(f func()) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	f()
}

func (sh *scriptedHub) snapshot() (hellos, pushes []*wire.Frame, events []string) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return slices.Clone(sh.hellos), slices.Clone(sh.pushes), slices.Clone(sh.events)
}

func readTestFrame(conn *websocket.Conn) (*wire.Frame, error) {
	_, data, err := conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	return wire.Decode(data)
}

// Returning to an earlier hub waits for the outcome of the push in flight
// at the later one: the edge closes that session only after the outcome
// came, applies it, and tells the earlier hub it has nothing pending and
// pushes nothing again.
func TestSyncer_ReturnWaitsForPushInFlight(t *testing.T) {
	first, second := newScriptedHub(t), newScriptedHub(t)
	first.refuse.Store(true)
	first.health.Store(http.StatusServiceUnavailable)
	release := make(chan struct{})
	second.onPush = func(conn *websocket.Conn, f *wire.Frame) {
		<-release
		outs := make([]wire.Outcome, len(f.Versions))
		for i, v := range f.Versions {
			outs[i] = wire.Outcome{Version: v.Version, Container: v.Container, ID: v.ID, Outcome: wire.OutcomeConfirmed, LSN: int64(i + 1), CRTS: 1}
		}
		b, _ := wire.Encode(&wire.Frame{Type: wire.TypeOutcomes, Batch: f.Batch, Outcomes: outs, LSN: int64(len(outs))})
		second.record(func() { second.events = append(second.events, "outcomes sent") })
		conn.WriteMessage(websocket.TextMessage, b)
	}

	r := openReplica(t, t.TempDir())
	defineProducts(t, r)
	s, err := edge.NewSyncer(r, edge.SyncConfig{Hubs: []string{first.url, second.url}, Token: "t", MaxBackoff: time.Second, ProbeInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Open(context.Background())
	defer s.Close(context.Background())
	ctx := context.Background()
	if _, _, err := r.Upsert(ctx, "products", "p1", []byte(`{"id":"p1","category":"c"}`), edge.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, func() error {
		if _, pushes, _ := second.snapshot(); len(pushes) == 0 {
			return errors.New("no push at the second hub yet")
		}
		return nil
	})
	// The first hub is back while the push waits for its outcome.
	first.refuse.Store(false)
	first.health.Store(http.StatusOK)
	time.Sleep(500 * time.Millisecond) // several probes
	if _, _, events := second.snapshot(); slices.Contains(events, "closed by edge") {
		t.Fatalf("the edge left the second hub with a push in flight: %v", events)
	}
	close(release)
	waitUntil(t, 5*time.Second, func() error {
		if st := s.Status(); st.Hub != mustSyncURL(t, first.url) {
			return fmt.Errorf("status %+v, want on the first hub", st)
		}
		return nil
	})
	waitUntil(t, 5*time.Second, func() error {
		_, _, events := second.snapshot()
		if want := []string{"push", "outcomes sent", "closed by edge"}; !slices.Equal(events, want) {
			return fmt.Errorf("at the second hub: %v, want %v", events, want)
		}
		return nil
	})
	hellos, _, _ := first.snapshot()
	if len(hellos) != 1 || hellos[0].Pending != 0 || hellos[0].ResumeLSN != 1 {
		t.Fatalf("hellos at the first hub: %+v, want one with nothing pending, resuming from 1", hellos)
	}
	time.Sleep(200 * time.Millisecond)
	if _, pushes, _ := first.snapshot(); len(pushes) != 0 {
		t.Fatalf("the first hub got %d pushes of a version already answered", len(pushes))
	}
	if st := s.Status(); st.Rehomes != 1 || st.HubName != "scripted" {
		t.Fatalf("Status()=%+v, want 1 rehome, on the hub named scripted", st)
	}
}

// When its hub goes away, the edge tries the next hub of the list first,
// not the one it lost: a hub that no longer answers the handshake does not
// hold it for the handshake timeout.
func TestSyncer_LostHubMovesToNextFirst(t *testing.T) {
	second := newScriptedHub(t)
	var calls atomic.Int32
	hang := make(chan struct{})
	up := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}}
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) > 1 {
			<-hang // answers no more handshakes
			return
		}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		if _, err := readTestFrame(conn); err != nil {
			return
		}
		b, _ := wire.Encode(&wire.Frame{Type: wire.TypeWelcome, HubID: "hub", Protocol: wire.ProtocolVersion, Edge: "e"})
		conn.WriteMessage(websocket.TextMessage, b)
		time.Sleep(100 * time.Millisecond) // then goes away
	}))
	t.Cleanup(first.Close)
	t.Cleanup(func() { close(hang) }) // before first.Close, which waits for its handlers
	r := openReplica(t, t.TempDir())
	s, err := edge.NewSyncer(r, edge.SyncConfig{Hubs: []string{first.URL, second.url}, Token: "t", MaxBackoff: time.Minute, ProbeInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s.Open(context.Background())
	defer s.Close(context.Background())
	waitUntil(t, 3*time.Second, func() error {
		if st := s.Status(); st.Hub != mustSyncURL(t, second.url) {
			return fmt.Errorf("status %+v, want on the second hub", st)
		}
		return nil
	})
}

func mustSyncURL(t *testing.T, hub string) string {
	t.Helper()
	u, err := edge.SyncURL(hub)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func waitUntil(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", d, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A hub that falls silent (no frame, no pong: a paused process keeps its
// connections open) is left after the heartbeat timeout for the next hub.
func TestSyncer_SilentHubLeftAfterHeartbeatTimeout(t *testing.T) {
	second := newScriptedHub(t)
	quiet := make(chan struct{})
	up := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}}
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		if _, err := readTestFrame(conn); err != nil {
			return
		}
		b, _ := wire.Encode(&wire.Frame{Type: wire.TypeWelcome, HubID: "hub", Protocol: wire.ProtocolVersion, Edge: "e"})
		conn.WriteMessage(websocket.TextMessage, b)
		<-quiet // reads nothing, so answers no ping
	}))
	t.Cleanup(first.Close)
	t.Cleanup(func() { close(quiet) })
	r := openReplica(t, t.TempDir())
	s, err := edge.NewSyncer(r, edge.SyncConfig{Hubs: []string{first.URL, second.url}, Token: "t",
		HeartbeatTimeout: time.Second, MaxBackoff: time.Second, ProbeInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s.Open(context.Background())
	defer s.Close(context.Background())
	waitUntil(t, 5*time.Second, func() error {
		if st := s.Status(); st.Hub != mustSyncURL(t, first.URL) {
			return fmt.Errorf("status %+v, want on the first hub", st)
		}
		return nil
	})
	start := time.Now()
	waitUntil(t, 4*time.Second, func() error {
		if st := s.Status(); st.Hub != mustSyncURL(t, second.url) {
			return fmt.Errorf("status %+v, want on the second hub", st)
		}
		return nil
	})
	if took := time.Since(start); took < 500*time.Millisecond {
		t.Fatalf("left the silent hub after %s, before the heartbeat timeout", took)
	}
}

// A hub that answers /healthz but refuses edges draws the edge back from
// the later hub at a slowing rate, not at every probe.
func TestSyncer_RefusingEarlierHubProbedLessOften(t *testing.T) {
	first, second := newScriptedHub(t), newScriptedHub(t)
	first.refuse.Store(true)
	first.health.Store(http.StatusServiceUnavailable)
	r := openReplica(t, t.TempDir())
	s, err := edge.NewSyncer(r, edge.SyncConfig{Hubs: []string{first.url, second.url}, Token: "t", ProbeInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Open(context.Background())
	defer s.Close(context.Background())
	waitUntil(t, 5*time.Second, func() error {
		if hellos, _, _ := second.snapshot(); len(hellos) == 0 {
			return errors.New("not on the second hub yet")
		}
		return nil
	})
	first.health.Store(http.StatusOK) // answers probes, still refuses edges
	time.Sleep(2 * time.Second)
	// Without slowing down: a return every 25-75 ms, 25 or more in 2 s.
	// Doubling up to 16 times 50 ms: at most about 9.
	if hellos, _, _ := second.snapshot(); len(hellos) > 12 {
		t.Fatalf("%d sessions at the second hub in 2 s, want the returns to slow down", len(hellos))
	}
	if st := s.Status(); st.Rehomes != 0 {
		t.Fatalf("Status().Rehomes=%d, want 0: the edge never synced with another hub", st.Rehomes)
	}
}

// A hub that falls silent while the edge waits to leave it for an earlier
// hub sends the edge to that earlier hub, not down the list.
func TestSyncer_SilentWhileLeavingStillReturns(t *testing.T) {
	first, second, third := newScriptedHub(t), newScriptedHub(t), newScriptedHub(t)
	first.refuse.Store(true)
	first.health.Store(http.StatusServiceUnavailable)
	silent := make(chan struct{})
	t.Cleanup(func() { close(silent) })
	second.onPush = func(*websocket.Conn, *wire.Frame) { <-silent } // never answers, reads nothing more
	r := openReplica(t, t.TempDir())
	defineProducts(t, r)
	s, err := edge.NewSyncer(r, edge.SyncConfig{Hubs: []string{first.url, second.url, third.url}, Token: "t",
		HeartbeatTimeout: time.Second, MaxBackoff: time.Second, ProbeInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Open(context.Background())
	defer s.Close(context.Background())
	if _, _, err := r.Upsert(context.Background(), "products", "p1", []byte(`{"id":"p1","category":"c"}`), edge.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, func() error {
		if _, pushes, _ := second.snapshot(); len(pushes) == 0 {
			return errors.New("no push at the second hub yet")
		}
		return nil
	})
	first.refuse.Store(false)
	first.health.Store(http.StatusOK)
	waitUntil(t, 5*time.Second, func() error {
		if st := s.Status(); st.Hub != mustSyncURL(t, first.url) {
			return fmt.Errorf("status %+v, want on the first hub", st)
		}
		return nil
	})
	if hellos, _, _ := third.snapshot(); len(hellos) != 0 {
		t.Fatalf("the edge went to the third hub %d times on its way back to the first", len(hellos))
	}
}
