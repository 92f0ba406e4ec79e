package edge_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/pghub"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
	"github.com/edgesync/edgesync/replica/wire"
	"github.com/edgesync/edgesync/web"
)

// tierHub is one hub process of a tier, in process: a hub on the shared
// PostgreSQL database served with its HTTP API on a loopback address, which
// it can be stopped on and started again at.
type tierHub struct {
	t      *testing.T
	db     string
	addr   string
	h      *hub.Hub
	srv    *http.Server
	cancel context.CancelFunc
	tap    *frameTap
	served chan struct{}
}

// startTierHub starts a hub on db listening at addr (127.0.0.1:0: any
// port); the test's end stops it.
func startTierHub(t *testing.T, db, addr string) *tierHub {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen at %s: %v", addr, err)
	}
	h := hub.New(hub.Config{Store: pghub.New(pghub.Config{URL: db})})
	if err := h.Open(context.Background()); err != nil {
		ln.Close()
		t.Fatalf("open hub: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	th := &tierHub{t: t, db: db, addr: ln.Addr().String(), h: h, cancel: cancel, tap: &frameTap{}, served: make(chan struct{})}
	th.srv = &http.Server{
		Handler:           th.tap.wrap(web.NewHub(h, web.HubOptions{AdminToken: "admin-token", BaseContext: ctx})),
		ReadHeaderTimeout: 5 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		defer close(th.served)
		th.srv.Serve(ln)
	}()
	t.Cleanup(th.stop)
	return th
}

func (th *tierHub) url() string { return "http://" + th.addr }

// stop ends the hub's sync sessions, closes its listener and the hub.
func (th *tierHub) stop() {
	if th.h == nil {
		return
	}
	th.cancel()
	th.srv.Close()
	<-th.served
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := th.h.Close(ctx); err != nil {
		th.t.Errorf("close hub at %s: %v", th.addr, err)
	}
	th.h = nil
}

// frameTap records the bytes of every WebSocket connection a handler
// hijacks, both ways, to read the frames that crossed it.
type frameTap struct {
	mu    sync.Mutex
	conns []*tapConn
}

func (ft *frameTap) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&tapWriter{ResponseWriter: w, ft: ft}, r)
	})
}

type tapWriter struct {
	http.ResponseWriter
	ft *frameTap
}

func (w *tapWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *tapWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if brw.Reader.Buffered() > 0 {
		c.Close()
		return nil, nil, errors.New("tap: data before the handshake completed")
	}
	tc := &tapConn{Conn: c}
	w.ft.mu.Lock()
	w.ft.conns = append(w.ft.conns, tc)
	w.ft.mu.Unlock()
	return tc, bufio.NewReadWriter(bufio.NewReader(tc), bufio.NewWriter(tc)), nil
}

// tapConn keeps what was read (from the edge) and written (to the edge).
type tapConn struct {
	net.Conn
	mu            sync.Mutex
	fromEdge, out bytes.Buffer
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.fromEdge.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *tapConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.out.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// session is the frames of one tapped connection: from the edge, and to it.
type tappedSession struct{ fromEdge, toEdge []*wire.Frame }

// sessions decodes every tapped connection's frames so far.
func (ft *frameTap) sessions(t *testing.T) []tappedSession {
	t.Helper()
	ft.mu.Lock()
	conns := append([]*tapConn(nil), ft.conns...)
	ft.mu.Unlock()
	var out []tappedSession
	for _, c := range conns {
		c.mu.Lock()
		in, sent := bytes.Clone(c.fromEdge.Bytes()), bytes.Clone(c.out.Bytes())
		c.mu.Unlock()
		// What went out starts with the handshake's HTTP response.
		if i := bytes.Index(sent, []byte("\r\n\r\n")); i >= 0 {
			sent = sent[i+4:]
		} else {
			sent = nil
		}
		out = append(out, tappedSession{fromEdge: wsFrames(t, in), toEdge: wsFrames(t, sent)})
	}
	return out
}

// wsFrames decodes the text messages of a stream of WebSocket frames
// (RFC 6455, section 5.2; masked or not, no extensions), up to the last
// whole frame.
func wsFrames(t *testing.T, b []byte) []*wire.Frame {
	t.Helper()
	var frames []*wire.Frame
	var msg []byte
	text := false
	for len(b) >= 2 {
		fin, op := b[0]&0x80 != 0, b[0]&0x0f
		masked, n := b[1]&0x80 != 0, uint64(b[1]&0x7f)
		h := 2
		switch n {
		case 126:
			if len(b) < 4 {
				return frames
			}
			n, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			if len(b) < 10 {
				return frames
			}
			n, h = binary.BigEndian.Uint64(b[2:]), 10
		}
		var key []byte
		if masked {
			if len(b) < h+4 {
				return frames
			}
			key, h = b[h:h+4], h+4
		}
		if uint64(len(b)-h) < n {
			return frames
		}
		payload := bytes.Clone(b[h : h+int(n)])
		for i := range payload {
			if masked {
				payload[i] ^= key[i%4]
			}
		}
		b = b[h+int(n):]
		switch op {
		case 1:
			msg, text = payload, true
		case 0:
			msg = append(msg, payload...)
		default: // control frames
			continue
		}
		if fin && text {
			f, err := wire.Decode(msg)
			if err != nil {
				t.Fatalf("tapped frame: %v", err)
			}
			frames = append(frames, f)
			msg, text = nil, false
		}
	}
	return frames
}

// helloResume is the resume point of the first hello of a session.
func (s tappedSession) helloResume() (int64, bool) {
	if len(s.fromEdge) == 0 || s.fromEdge[0].Type != wire.TypeHello {
		return 0, false
	}
	return s.fromEdge[0].ResumeLSN, true
}

// waitFor retries f until it returns nil or d has passed.
func waitFor(t *testing.T, d time.Duration, f func() error) {
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
		time.Sleep(20 * time.Millisecond)
	}
}

// An edge started with two hubs of one tier syncs with the first; when it
// goes away the edge moves to the second and resumes from its last applied
// LSN (its hello says so, and the second hub streams nothing at or below
// it); its writes confirm there; when the first hub is back at its address,
// the edge returns to it within the probe bound, and its writes confirm
// there. Every write is confirmed exactly once. Writes go through the hub
// the edge is on, and the hubs share the log's numbering through the
// database, so the test holds whether or not each hub sequences its own
// edges' writes.
func TestSyncer_RehomesAcrossHubsOfOneDatabase(t *testing.T) {
	db := pgtest.Database(t)
	ctx := context.Background()
	a := startTierHub(t, db, "127.0.0.1:0")
	if _, _, err := a.h.PutContainer(ctx, replica.Container{Name: "orders", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	token, err := a.h.RegisterEdge(ctx, "laptop", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := startTierHub(t, db, "127.0.0.1:0")

	const probe = 200 * time.Millisecond
	r := openReplica(t, t.TempDir())
	link, err := edge.NewLink(r, edge.SyncConfig{Hubs: []string{a.url(), b.url()}, Token: token,
		MaxBackoff: time.Second, ProbeInterval: probe, HeartbeatTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := link.SetOnline(true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { link.Close(context.Background()) })
	api := newHTTP(t, web.NewEdge(r, web.EdgeOptions{Sync: link, Hubs: []string{a.url(), b.url()}}))

	syncURL := func(th *tierHub) string { u, _ := edge.SyncURL(th.url()); return u }
	onHub := func(th *tierHub) func() error {
		return func() error {
			if st := link.Status(); !st.Connected || st.Hub != syncURL(th) {
				return fmt.Errorf("edge status %+v, want connected to %s", st, syncURL(th))
			}
			return nil
		}
	}
	written := map[string]bool{}
	write := func(id string) {
		t.Helper()
		if _, _, err := r.Upsert(ctx, "orders", id, []byte(`{"id":"`+id+`","pk":"p"}`), edge.WriteOptions{}); err != nil {
			t.Fatalf("write %s: %v", id, err)
		}
		written[id] = true
	}
	synced := func(th *tierHub) func() error {
		return func() error {
			if n := r.Pending(); n != 0 {
				return fmt.Errorf("%d writes pending", n)
			}
			if got, want := r.ResumeLSN(), th.h.Head(); got < want {
				return fmt.Errorf("edge applied up to %d, hub at %d", got, want)
			}
			return nil
		}
	}

	waitFor(t, 10*time.Second, onHub(a))
	waitFor(t, 10*time.Second, func() error { _, err := r.Container("orders"); return err })
	for i := range 5 {
		write(fmt.Sprintf("on-a-%d", i))
	}
	// Writes at the hub itself reach the edge through the stream: a
	// second stream from the start would carry them again.
	for i := range 3 {
		id := fmt.Sprintf("at-a-%d", i)
		if _, _, err := a.h.Upsert(ctx, "orders", id, []byte(`{"id":"`+id+`","pk":"p"}`), hub.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, synced(a))
	resume := r.ResumeLSN()
	if resume < 8 {
		t.Fatalf("ResumeLSN()=%d after 8 confirmed writes", resume)
	}

	a.stop()
	stopped := time.Now()
	waitFor(t, 10*time.Second, onHub(b))
	t.Logf("on the second hub %s after the first stopped", time.Since(stopped).Round(time.Millisecond))
	for i := range 5 {
		write(fmt.Sprintf("on-b-%d", i))
	}
	waitFor(t, 10*time.Second, synced(b))
	sessions := b.tap.sessions(t)
	if len(sessions) != 1 {
		t.Fatalf("%d sessions at the second hub, want 1", len(sessions))
	}
	if got, ok := sessions[0].helloResume(); !ok || got != resume {
		t.Fatalf("hello to the second hub resumed from %d (hello seen: %v), want the last applied LSN %d", got, ok, resume)
	}
	for _, f := range sessions[0].toEdge {
		for _, c := range f.Changes {
			if c.LSN <= resume {
				t.Fatalf("the second hub streamed LSN %d (%s), at or below the resume point %d", c.LSN, c.ID, resume)
			}
		}
	}

	a = startTierHub(t, db, a.addr)
	back := time.Now()
	waitFor(t, 3*probe/2+5*time.Second, onHub(a))
	t.Logf("back on the first hub %s after it listened again", time.Since(back).Round(time.Millisecond))
	for i := range 5 {
		write(fmt.Sprintf("back-on-a-%d", i))
	}
	waitFor(t, 10*time.Second, synced(a))

	// Every edge write confirmed, each exactly once in the log.
	for id := range written {
		it, err := r.Get(ctx, "orders", id, edge.ReadOptions{Consistency: edge.ConsistencyConfirmed})
		if err != nil || it.LSN == 0 {
			t.Fatalf("Get(%s) confirmed: %+v, %v", id, it, err)
		}
	}
	changes, _, err := a.h.LogAfter(ctx, 0, 1000, 64<<20, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int64{}
	for _, c := range changes {
		if lsn, dup := seen[c.Version]; dup {
			t.Fatalf("version %s of %s is in the log twice: LSN %d and %d", c.Version, c.ID, lsn, c.LSN)
		}
		seen[c.Version] = c.LSN
	}
	if got, want := len(changes), len(written)+3; got != want {
		t.Fatalf("%d versions in the log, want %d", got, want)
	}

	st := link.Status()
	if st.Rehomes != 2 || st.ConnectedAt.IsZero() {
		t.Fatalf("Status()=%+v, want 2 rehomes and a connection time", st)
	}
	status := api.getJSON(t, "/api/v1/status")
	if status["hub"] != syncURL(a) || status["rehomes"] != 2.0 || status["connectedAt"] == nil {
		t.Fatalf("GET /api/v1/status: hub %v, rehomes %v, connectedAt %v; want %s, 2 and a time",
			status["hub"], status["rehomes"], status["connectedAt"], syncURL(a))
	}
	if m := api.get(t, "/metrics"); !strings.Contains(m, "\nedgesync_edge_rehomes_total 2\n") {
		t.Fatalf("metrics lack edgesync_edge_rehomes_total 2")
	}
}

// httpAPI is an edge's local API served on loopback.
type httpAPI struct{ url string }

func newHTTP(t *testing.T, h http.Handler) *httpAPI {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &httpAPI{url: "http://" + ln.Addr().String()}
}

func (a *httpAPI) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(a.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s %v", path, resp.StatusCode, b, err)
	}
	return string(b)
}

func (a *httpAPI) getJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(a.get(t, path)), &m); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return m
}
