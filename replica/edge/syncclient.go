package edge

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/wire"
)

// SyncConfig configures a Syncer.
type SyncConfig struct {
	// Hubs are tried in order: base URLs (http(s)://host:port) or full
	// WebSocket URLs (ws(s)://host:port/api/v1/sync).
	Hubs   []string
	Token  string
	Logger *slog.Logger
	// MaxBackoff caps the wait between rounds of connection attempts
	// (rehome.go). Default 10s; the first wait is at most BaseBackoff.
	MaxBackoff time.Duration
	// HeartbeatTimeout: a hub from which nothing arrives (no frame, ping
	// or pong) for this long is taken as gone, and the edge moves to the
	// next hub of the list. 0: the one the hub's welcome names, or
	// wire.PongWait with a hub that names none (and until the welcome).
	// The edge pings at the interval the welcome names (wire.PingInterval
	// when it names none), at most every half of the timeout
	// (wire.Heartbeat).
	HeartbeatTimeout time.Duration
	// ProbeInterval is how often, while syncing with a hub other than the
	// first of Hubs, the edge checks whether an earlier one answers again
	// (GET /healthz) to return to it; each wait is uniform in
	// [ProbeInterval/2, 3*ProbeInterval/2]. Default DefaultProbeInterval.
	ProbeInterval time.Duration
	// ProgressEvery is how often catch-up progress is logged. Default 2s.
	ProgressEvery time.Duration
	// TLS verifies wss:// hubs (RootCAs: a private CA); nil: the system's
	// roots. A certificate that does not verify is never accepted.
	TLS *tls.Config
}

// Syncer keeps an edge replica in sync with the first hub of its list that
// answers: it pushes the outbox, applies the confirmed stream and the
// outcomes of its writes, moves to the next hub when its hub goes away and
// returns to an earlier one when that one is back (rehome.go).
type Syncer struct {
	r   *Replica
	cfg SyncConfig
	log *slog.Logger
	// ownTimeout is the configured HeartbeatTimeout; 0: the hub's.
	ownTimeout time.Duration
	urls       []string
	health     []string // the hubs' /healthz URLs, for probes
	probes     *http.Client
	jitter     func(time.Duration) time.Duration
	home       *home

	cancel context.CancelFunc
	done   chan struct{}

	mu          sync.Mutex
	connected   bool
	hub         string
	hubName     string
	connectedAt time.Time
	lastErr     string
	headLSN     atomic.Int64 // newest LSN the hub has announced
	sessions    atomic.Int64
}

// SyncStatus is the sync client's state.
type SyncStatus struct {
	Connected bool   `json:"connected"`
	Hub       string `json:"hub"`               // the hub's sync URL; "" when not connected
	HubName   string `json:"hubName,omitempty"` // the hub's name in its tier, if it tells
	// ConnectedAt is when the session with Hub got going (zero: not
	// connected).
	ConnectedAt time.Time `json:"connectedAt,omitzero"`
	// Rehomes counts the moves from one hub of the list to another.
	Rehomes   int64  `json:"rehomes"`
	LastError string `json:"lastError,omitempty"`
	HeadLSN   int64  `json:"headLsn"`
}

// NewSyncer returns a sync client for r; call Open.
func NewSyncer(r *Replica, cfg SyncConfig) (*Syncer, error) {
	if len(cfg.Hubs) == 0 {
		return nil, errors.New("sync: no hub configured")
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 2 * time.Second
	}
	ownTimeout := max(cfg.HeartbeatTimeout, 0)
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = wire.PongWait
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Syncer{r: r, cfg: cfg, ownTimeout: ownTimeout, log: cfg.Logger, done: make(chan struct{}), jitter: fullJitter, home: &home{},
		probes: &http.Client{Timeout: probeTimeout, Transport: &http.Transport{TLSClientConfig: cfg.TLS, DisableKeepAlives: true}}}
	for _, h := range cfg.Hubs {
		u, err := SyncURL(h)
		if err != nil {
			return nil, err
		}
		health, err := healthURL(u)
		if err != nil {
			return nil, err
		}
		s.urls, s.health = append(s.urls, u), append(s.health, health)
	}
	return s, nil
}

// SyncURL turns a --hub value into the WebSocket URL of its sync endpoint.
func SyncURL(hub string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(hub))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("hub %q: want http(s)://host:port or ws(s)://host:port/api/v1/sync", hub)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return "", fmt.Errorf("hub %q: scheme %q: want http, https, ws or wss", hub, u.Scheme)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/api/v1/sync"
	}
	return u.String(), nil
}

// Open starts the sync loop. The loop outlives the context of the call;
// Close ends it.
func (s *Syncer) Open(context.Context) error {
	var ctx context.Context
	ctx, s.cancel = context.WithCancel(context.Background())
	go s.loop(ctx)
	return nil
}

// Close stops syncing and waits for the loop to end.
func (s *Syncer) Close(ctx context.Context) error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close syncer: %w", ctx.Err())
	}
}

// Status returns the sync client's state.
func (s *Syncer) Status() SyncStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SyncStatus{Connected: s.connected, Hub: s.hub, HubName: s.hubName, ConnectedAt: s.connectedAt,
		Rehomes: s.home.rehomes.Load(), LastError: s.lastErr, HeadLSN: s.headLSN.Load()}
}

// disconnected records the end of a session, or a failed attempt.
func (s *Syncer) disconnected(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connected, s.hub, s.hubName, s.connectedAt = false, "", "", time.Time{}
	if err != nil {
		s.lastErr = err.Error()
	}
}

// connectedTo records a session with hub u that got going and logs the
// move when the edge came from another hub (why: why it left that one).
func (s *Syncer) connectedTo(u, name, why string) {
	s.mu.Lock()
	s.connected, s.hub, s.hubName, s.connectedAt, s.lastErr = true, u, name, time.Now(), ""
	s.mu.Unlock()
	if from := s.home.arrived(u); from != "" {
		s.log.Info("rehomed", "from", from, "to", u, "hubName", name, "reason", why, "rehomes", s.home.rehomes.Load())
	}
}

// ErrTokenRejected means a hub refused the edge's token (unknown or
// revoked): no retry mends that until the hub knows the token again.
var ErrTokenRejected = errors.New("hub refused the edge token")

// errNewDefinitions ends a session when this node defined a container the
// hub has not been told of: the next hello tells it, at once.
var errNewDefinitions = errors.New("containers defined on this node since the hello")

// MaxRejectedBackoff caps the wait between attempts while every hub refuses
// the edge's token.
const MaxRejectedBackoff = 5 * time.Minute

// loop runs one session after another, choosing the hub of each
// (hubChoice in rehome.go) until the Syncer is closed.
func (s *Syncer) loop(ctx context.Context) {
	defer close(s.done)
	choice := newHubChoice(len(s.urls), s.cfg.MaxBackoff, s.jitter)
	i, wait := 0, time.Duration(0)
	why := "syncing started"
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		u, start := s.urls[i], time.Now()
		established, err := s.session(ctx, choice, i, why)
		if errors.Is(err, errNewDefinitions) {
			s.disconnected(nil)
			if ctx.Err() != nil {
				return
			}
			why, wait = "", 0
			s.log.Info("new sync session to tell the hub of containers defined here", "hub", u)
			continue
		}
		s.disconnected(err)
		if ctx.Err() != nil {
			return
		}
		var back *errReturn
		var re *errRemote
		var certErr *tls.CertificateVerificationError
		switch {
		case errors.As(err, &back):
			why = fmt.Sprintf("%s answers again and comes before %s in the list", s.urls[back.hub], u)
			s.log.Info("returning to an earlier hub", "from", u, "to", s.urls[back.hub])
			i, wait = choice.back(back.hub)
			continue
		case established:
			why = fmt.Sprintf("session with %s ended: %v", u, err)
			i, wait = choice.lost(i, time.Since(start) >= stableSession)
		default:
			if s.home.lastHub() == u {
				why = fmt.Sprintf("%s does not answer: %v", u, err)
			}
			i, wait = choice.failed(i, errors.Is(err, ErrTokenRejected))
		}
		switch {
		case err == nil:
		case errors.As(err, &re) && (re.code == wire.CodeNodeMismatch || re.code == wire.CodeBadNodeID):
			// Retrying will not help: the operator must act.
			s.log.Error("the hub refused this node's id; revoke the edge at the hub and register it again",
				"hub", u, "node", s.r.NodeID(), "err", err)
		case errors.Is(err, ErrTokenRejected):
			s.log.Warn("hub refused the edge token", "hub", u, "err", err)
		case errors.As(err, &certErr):
			s.log.Warn("hub certificate not trusted", "hub", u, "err", err)
		default:
			s.log.Info("sync session ended", "hub", u, "err", err, "next", s.urls[i], "wait", wait.Round(time.Millisecond))
		}
	}
}

// refusal is the reason in a hub's {"code","message"} error response.
func refusal(resp *http.Response) string {
	var e struct{ Code, Message string }
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		return e.Message
	}
	return "no reason given"
}

// errRemote is an error frame or close reason from the hub.
type errRemote struct{ code, msg string }

func (e *errRemote) Error() string { return fmt.Sprintf("hub refused: %s: %s", e.code, e.msg) }

// session runs one connection with hub i of the list (why: why the edge
// left its previous hub, for the log). It reports whether the hub welcomed
// the edge. It ends with *errReturn when an earlier hub answered a probe.
func (s *Syncer) session(ctx context.Context, choice *hubChoice, i int, why string) (bool, error) {
	u := s.urls[i]
	dialer := websocket.Dialer{HandshakeTimeout: min(10*time.Second, s.cfg.HeartbeatTimeout), TLSClientConfig: s.cfg.TLS, Subprotocols: []string{wire.Subprotocol}, ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer "+s.cfg.Token)
	hdr.Set(wire.FeaturesHeader, wire.FeatureHeartbeat)
	conn, resp, err := dialer.DialContext(ctx, u, hdr)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return false, fmt.Errorf("connect %s: %s: %w: %s", u, resp.Status, ErrTokenRejected, refusal(resp))
		}
		if resp != nil {
			return false, fmt.Errorf("connect %s: %s", u, resp.Status)
		}
		return false, fmt.Errorf("connect %s: %w", u, err)
	}
	defer conn.Close()
	conn.SetReadLimit(wire.MaxFrameBytes)
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() { // unblock reads and writes when the session ends
		<-sctx.Done()
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		conn.Close()
	}()

	defs := &hubDefs{defined: s.r.defined.Load(), told: map[string]bool{}, known: map[string]bool{}}
	hello := &wire.Frame{Type: wire.TypeHello, NodeID: s.r.NodeID(), Protocol: wire.ProtocolVersion,
		ResumeLSN: s.r.ResumeLSN(), Pending: s.r.Pending(), Containers: s.r.Containers(),
		WantConflicts: true, ConflictSeq: s.r.ConflictSeq()}
	for _, c := range hello.Containers {
		defs.told[c.Name] = true
	}
	if err := writeFrame(conn, hello); err != nil {
		return false, fmt.Errorf("send hello: %w", err)
	}
	conn.SetReadDeadline(time.Now().Add(s.cfg.HeartbeatTimeout))
	welcome, err := readFrame(conn)
	if err != nil {
		return false, fmt.Errorf("read welcome: %w", err)
	}
	if welcome.Type == wire.TypeError {
		return false, &errRemote{welcome.Code, welcome.Message}
	}
	if welcome.Type != wire.TypeWelcome {
		return false, fmt.Errorf("hub sent %s before welcome", welcome.Type)
	}
	if welcome.Protocol != wire.ProtocolVersion {
		return false, fmt.Errorf("hub speaks protocol %d, this node %d", welcome.Protocol, wire.ProtocolVersion)
	}
	if err := s.r.Welcome(ctx, welcome); err != nil {
		return false, fmt.Errorf("apply welcome: %w", err)
	}
	// The hub has created or adopted each container of the hello that it
	// does not report as mismatched.
	for _, c := range slices.Concat(hello.Containers, welcome.Containers) {
		if !slices.Contains(welcome.Mismatched, c.Name) {
			defs.known[c.Name] = true
		}
	}
	every, timeout := wire.Heartbeat(welcome, s.ownTimeout)
	s.headLSN.Store(welcome.HeadLSN)
	s.sessions.Add(1)
	choice.welcomed(i)
	s.connectedTo(u, welcome.HubName, why)
	if len(welcome.Mismatched) > 0 {
		s.log.Warn("containers differ from the hub's definitions; their writes are held", "containers", strings.Join(welcome.Mismatched, ","))
	}
	s.log.Info("connected to hub", "hub", u, "hubName", welcome.HubName, "hubId", welcome.HubID, "edge", welcome.Edge,
		"resume", hello.ResumeLSN, "head", welcome.HeadLSN, "pending", hello.Pending, "pingEvery", every, "hubTimeout", timeout)

	out := &outQueue{kick: make(chan struct{}, 1), slots: make(chan struct{}, wire.MaxInFlightPush), defs: defs}
	queued := make(chan queuedFrame, 2*wire.MaxInFlightPush)
	errc := make(chan error, 4)
	workers := 3
	if i > 0 {
		workers++
		interval := choice.probeInterval(s.cfg.ProbeInterval)
		go func() { errc <- s.prober(sctx, i, interval, out) }()
	}
	go func() {
		defer close(queued)
		errc <- s.reader(sctx, conn, out, queued, timeout)
	}()
	go func() { errc <- s.applier(queued, out, hello.ResumeLSN, welcome.HeadLSN) }()
	go func() { errc <- s.writer(sctx, conn, out, every) }()
	// The reader and the writer end only with an error (or the session's
	// end); the applier ends when the reader has, once it has waited for
	// what the reader queued, or at the first write that failed.
	err = nil
	for range workers {
		if e := <-errc; e != nil && err == nil {
			err = e
			cancel(err)
		}
	}
	var back *errReturn
	if j := out.returnTo.Load(); j > 0 && !errors.As(err, &back) {
		// The session ended otherwise while leaving: go where it was
		// leaving for all the same.
		err = &errReturn{hub: int(j - 1), cause: err}
	}
	return true, err
}

// outQueue connects the reader to the writer without a queue: the latest
// applied LSN to acknowledge, and free push slots.
type outQueue struct {
	ack   atomic.Int64
	kick  chan struct{}
	slots chan struct{} // one token per push frame in flight
	// saveClock: a pong measured an offset worth storing (Replica.SaveClock).
	saveClock atomic.Bool
	// returnTo is 1 + the index of the earlier hub to return to (0: stay).
	returnTo atomic.Int64
	defs     *hubDefs
}

// hubDefs is what the hub of a session knows of this node's containers.
// The writer pushes the writes of a container only once the hub has its
// definition as this node has it: the hello or the welcome named it and
// the welcome did not report it as mismatched, or the stream brought it. A
// container defined here after the hello ends the session, so that the
// next hello tells the hub (errNewDefinitions); meanwhile its writes wait
// in the outbox. A hub that rejects a write for want of its container
// anyway has the container held too (Replica.QueueOutcomes).
type hubDefs struct {
	told    map[string]bool // named in the hello; read-only
	defined int64           // Replica.defined as the writer last saw it

	mu    sync.Mutex
	known map[string]bool // the hub's definition is this node's: writes go
}

func (d *hubDefs) pushable(container string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.known[container]
}

func (d *hubDefs) learn(defs []replica.Container) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range defs {
		d.known[c.Name] = true
	}
}

// untold reports whether r has a container, defined since the hello, of
// which the hub knows nothing. Only the writer calls it.
func (d *hubDefs) untold(r *Replica) bool {
	n := r.defined.Load()
	if n == d.defined {
		return false
	}
	d.defined = n
	for _, c := range r.Containers() {
		if !d.told[c.Name] && !d.pushable(c.Name) {
			return true
		}
	}
	return false
}

// leave asks the writer to end the session for the earlier hub j once the
// pushes in flight are answered.
func (q *outQueue) leave(j int) {
	q.returnTo.CompareAndSwap(0, int64(j)+1)
	q.poke()
}

func (q *outQueue) poke() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// queuedFrame is a frame from the hub whose work is queued on the replica's
// writer: the applier waits for it, in the order frames came, and only then
// acknowledges it.
type queuedFrame struct {
	typ  string
	lsn  int64 // stream position the frame covers; 0 for conflicts
	wait func() error
}

// reader reads the hub's frames and queues their work on the replica's
// writer without waiting for it: while one frame commits, the next is read,
// decoded and queued, and several frames can share a commit. At most
// cap(queued) frames wait to be applied. A hub silent for timeout is gone.
func (s *Syncer) reader(ctx context.Context, conn *websocket.Conn, out *outQueue, queued chan<- queuedFrame, timeout time.Duration) error {
	extend := func() { conn.SetReadDeadline(time.Now().Add(timeout)) }
	conn.SetPingHandler(func(data string) error {
		extend()
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(wire.WriteWait))
	})
	first := true
	conn.SetPongHandler(func(data string) error {
		extend()
		measured, save := s.r.ObserveHubClock(data)
		if measured && first {
			first = false
			c := s.r.Clock()
			s.log.Info("hub clock measured", "offsetMs", c.OffsetMs, "rttMs", c.RTTMs)
		}
		if save {
			out.saveClock.Store(true)
			out.poke()
		}
		return nil
	})
	for {
		extend()
		f, err := readFrame(conn)
		if err != nil {
			return err
		}
		q := queuedFrame{typ: f.Type}
		switch f.Type {
		case wire.TypeChanges:
			out.defs.learn(f.Containers)
			s.headLSN.Store(max(s.headLSN.Load(), f.HeadLSN))
			q.lsn = f.LSN
			q.wait, err = s.r.QueueConfirmed(ctx, f.Containers, f.Changes, f.LSN)
		case wire.TypeOutcomes:
			// Only the reader takes slots back, so one is there to take
			// below. The slot is freed once the outcomes are queued for
			// the applier (a writer that leaves for another hub when no
			// push is in flight drops none) and before they commit, so
			// that the next push goes out meanwhile.
			if len(out.slots) == 0 {
				return errors.New("hub sent outcomes for no push")
			}
			q.lsn = f.LSN
			if q.wait, err = s.r.QueueOutcomes(ctx, f.Outcomes, f.LSN); err != nil {
				return fmt.Errorf("apply %s: %w", f.Type, err)
			}
			select {
			case queued <- q:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			<-out.slots
			out.poke()
			continue
		case wire.TypeConflicts:
			q.wait, err = s.r.QueueConflicts(ctx, f.Conflicts, f.ConflictSeq)
		case wire.TypeError:
			return &errRemote{f.Code, f.Message}
		default:
			return fmt.Errorf("unexpected %s frame from the hub", f.Type)
		}
		if err != nil {
			return fmt.Errorf("apply %s: %w", f.Type, err)
		}
		select {
		case queued <- q:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// applier waits for the frames the reader queued, in order, until the reader
// closes queued: once a frame is durable it acknowledges its stream position
// (outcomes included). It logs catch-up progress.
func (s *Syncer) applier(queued <-chan queuedFrame, out *outQueue, resume, head int64) error {
	start, applied := time.Now(), resume
	lastLog, caughtUp := time.Now(), head <= resume
	for q := range queued {
		if err := q.wait(); err != nil {
			return fmt.Errorf("apply %s: %w", q.typ, err)
		}
		if q.typ == wire.TypeOutcomes {
			out.poke() // the pending count fell: the writer reports it
		}
		if q.lsn <= applied {
			continue
		}
		applied = q.lsn
		out.ack.Store(applied)
		out.poke()
		if q.typ == wire.TypeChanges && !caughtUp {
			if applied >= head {
				caughtUp = true
				s.log.Info("caught up with hub", "lsn", applied, "took", time.Since(start).Round(time.Millisecond))
			} else if time.Since(lastLog) >= s.cfg.ProgressEvery {
				lastLog = time.Now()
				s.log.Info("catching up", "lsn", applied, "head", head, "percent", fmt.Sprintf("%.1f", 100*float64(applied-resume)/float64(max(1, head-resume))))
			}
		}
	}
	return nil
}

// writer is the only goroutine writing to conn: pushes (at most
// MaxInFlightPush unanswered), acks and pings, one every pingEvery. Every ping carries this
// node's clock, the first one goes out at once: the hub's pongs measure the
// clock's offset (clock.go), which the writer stores when it moved. Asked
// to leave for an earlier hub (outQueue.leave), it pushes nothing more and
// ends the session with *errReturn once every push in flight is answered,
// or after drainTimeout. When this node defines a container the hub does
// not know of, it likewise ends the session with errNewDefinitions.
func (s *Syncer) writer(ctx context.Context, conn *websocket.Conn, out *outQueue, pingEvery time.Duration) error {
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	leaving := -1
	var drained <-chan time.Time
	if err := conn.WriteControl(websocket.PingMessage, s.r.ClockPing(), time.Now().Add(wire.WriteWait)); err != nil {
		return err
	}
	var cursor, acked, batch int64
	reported := s.r.Pending() // as the hello said
	rehello := false
	for {
		changed := s.r.LocalChanged()
		if j := out.returnTo.Load(); j > 0 && leaving < 0 {
			leaving = int(j - 1)
			t := time.NewTimer(drainTimeout)
			defer t.Stop()
			drained = t.C
		}
		if leaving >= 0 && len(out.slots) == 0 {
			return &errReturn{hub: leaving}
		}
		if !rehello && out.defs.untold(s.r) {
			rehello = true
		}
		if rehello && len(out.slots) == 0 {
			return errNewDefinitions
		}
		for leaving < 0 && !rehello && len(out.slots) < cap(out.slots) {
			versions, last, err := s.r.outbox(ctx, cursor, wire.MaxPushVersions, wire.MaxPushBytes, out.defs.pushable)
			if err != nil {
				return err
			}
			cursor = last
			if len(versions) == 0 {
				break
			}
			batch++
			out.slots <- struct{}{}
			if err := writeFrame(conn, &wire.Frame{Type: wire.TypePush, Batch: batch, Versions: versions}); err != nil {
				return err
			}
		}
		// An ack carries the applied position and the pending count, sent
		// when either has changed, so that the hub shows both live.
		if a, p := out.ack.Load(), s.r.Pending(); a > acked || p != reported {
			if err := writeFrame(conn, &wire.Frame{Type: wire.TypeAck, LSN: max(a, acked), Pending: p}); err != nil {
				return err
			}
			acked, reported = max(a, acked), p
		}
		if out.saveClock.Swap(false) {
			if err := s.r.SaveClock(ctx); err != nil {
				return err
			}
		}
		select {
		case <-changed:
		case <-out.kick:
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, s.r.ClockPing(), time.Now().Add(wire.WriteWait)); err != nil {
				return err
			}
		case <-drained:
			s.log.Warn("pushes still unanswered when leaving for an earlier hub; it answers them again", "unanswered", len(out.slots))
			return &errReturn{hub: leaving}
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func writeFrame(conn *websocket.Conn, f *wire.Frame) error {
	b, err := wire.Encode(f)
	if err != nil {
		return err
	}
	conn.SetWriteDeadline(time.Now().Add(wire.WriteWait))
	return conn.WriteMessage(websocket.TextMessage, b)
}

func readFrame(conn *websocket.Conn) (*wire.Frame, error) {
	typ, data, err := conn.ReadMessage()
	if err != nil {
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == websocket.ClosePolicyViolation && ce.Text != "" {
			code, msg, _ := strings.Cut(ce.Text, ": ")
			return nil, &errRemote{code, msg}
		}
		return nil, err
	}
	if typ != websocket.TextMessage {
		return nil, errors.New("binary frame from the hub")
	}
	if !utf8.Valid(data) {
		// RFC 6455, section 8.1: fail the connection, close code 1007.
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInvalidFramePayloadData, "invalid UTF-8 in a text frame"),
			time.Now().Add(time.Second))
		return nil, errors.New("invalid UTF-8 in a text frame from the hub")
	}
	return wire.Decode(data)
}
