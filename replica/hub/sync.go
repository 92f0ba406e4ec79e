package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/wire"
)

// upgrader keeps little per connection: reads go through the 4 KiB buffer
// net/http already holds for the connection (ReadBufferSize 0 reuses it; a
// frame is read into a slice of its own size whatever the buffer), and a
// write buffer is taken from a pool only while a frame is being written.
// Frames shared by many sessions are written from prepared messages, without
// a write buffer.
var upgrader = websocket.Upgrader{
	HandshakeTimeout: 10 * time.Second,
	WriteBufferSize:  32 << 10,
	WriteBufferPool:  new(sync.Pool),
	Subprotocols:     []string{wire.Subprotocol},
	// Edges are not browsers; the bearer token authenticates them.
	CheckOrigin: func(*http.Request) bool { return true },
}

// ServeSync serves GET /api/v1/sync: it authenticates the edge's bearer
// token, upgrades to a WebSocket and runs the sync session until either side
// ends it. ctx ends every session (cancel it before http.Server.Shutdown).
func (h *Hub) ServeSync(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	t := h.admit.enter(r.Context())
	if t == nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterBusy))
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]string{"code": "unavailable", "message": "the hub is at its limit of sync handshakes or sessions: retry later"})
		return
	}
	defer t.leave()
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	e, err := h.Authenticate(r.Context(), strings.TrimSpace(token))
	if err != nil {
		status, code := http.StatusUnauthorized, "unauthorized"
		if !errors.Is(err, ErrUnauthorized) {
			status, code = http.StatusInternalServerError, "internal"
			h.log.Error("authenticate edge", "err", err)
		} else {
			h.conns.unauthorized.Add(1)
			h.log.Info("sync refused: missing, unknown or revoked edge token", "remote", r.RemoteAddr)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"code": code, "message": "sync needs a valid edge token: Authorization: Bearer <token>"})
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	s := &session{h: h, conn: conn, edge: e, scopeKey: scopeKey(e.Scope), log: h.log.With("edge", e.Name, "remote", r.RemoteAddr),
		outcomes: make(chan pendingOutcomes, wire.MaxInFlightPush+1), queued: make(chan queuedPush, wire.MaxInFlightPush), admitted: t.handshakeDone,
		slot: rand.N(pingSlots), follows: wire.HasFeature(r.Header.Get(wire.FeaturesHeader), wire.FeatureHeartbeat)}
	s.every, s.wait = h.heartbeat(s.follows)
	s.heard.Store(time.Now().UnixNano())
	s.ctx, s.cancel = context.WithCancelCause(ctx)
	s.run()
}

// session is one edge's sync connection: the HTTP handler's goroutine reads
// (pushes and acks), one goroutine writes (the confirmed stream and
// outcomes), and while pushes wait for their commit a third hands their
// outcomes to the writer. The hub's pinger pings the edge when it is silent
// (heartbeat.go).
type session struct {
	h       *Hub
	conn    *websocket.Conn
	edge    Edge
	log     *slog.Logger
	nodeID  string
	acked   atomic.Int64
	pending atomic.Int64 // the edge's writes without an outcome, as it last reported
	clock   sessionClock // the edge's clock, measured from its pings
	heard   atomic.Int64 // when the edge last sent a frame or a ping of its own, unix nanoseconds
	slot    int          // the session's ping slot (heartbeat.go)
	// every and wait are the session's heartbeat (Hub.heartbeat): the
	// welcome tells them to an edge that follows it.
	every, wait time.Duration
	follows     bool

	ctx      context.Context
	cancel   context.CancelCauseFunc
	stopOnce sync.Once
	outcomes chan pendingOutcomes
	queued   chan queuedPush
	wmu      sync.Mutex // data frames: the sender, and the reader's error frame

	scopeKey string // sessions with equal keys share frames (fanout.go)
	admitted func() // ends the handshake's admission (admission.go)

	cmu        sync.Mutex     // guards starting the completer
	completing atomic.Bool    // a completer is running
	cwg        sync.WaitGroup // the completer
}

// queuedPush is a push the writer has queued, in arrival order.
type queuedPush struct {
	batch int64
	wait  func() ([]wire.Outcome, int64, error)
}

// startCompleter starts the completer unless it runs. The reader calls it
// after queueing a push.
func (s *session) startCompleter() {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.completing.Load() {
		return
	}
	s.completing.Store(true)
	s.cwg.Add(1)
	go func() {
		defer s.cwg.Done()
		if err := s.completer(); err != nil {
			s.cancel(err)
			s.conn.Close()
		}
	}()
}

// completer waits for queued pushes in order and hands their outcomes to
// the sender; it returns when no push is queued, so that an idle session
// holds no goroutine for it. A storage failure ends the session (the edge
// pushes again).
func (s *session) completer() error {
	for {
		select {
		case q := <-s.queued:
			outs, lsn, err := q.wait()
			if errors.Is(err, ErrPushOutOfOrder) {
				// The rest of the session's pushes are held back too:
				// the edge pushes its outbox again, in order, on its
				// next session.
				s.log.Warn("push decided in part: ending the session", "err", err)
			}
			if err != nil {
				return fmt.Errorf("push: %w", err)
			}
			select {
			case s.outcomes <- pendingOutcomes{batch: q.batch, outcomes: outs, lsn: lsn}:
			case <-s.ctx.Done():
				return context.Cause(s.ctx)
			}
		case <-s.ctx.Done():
			return context.Cause(s.ctx)
		default:
			// The reader queues before it calls startCompleter, which
			// takes cmu: a push queued after this check finds
			// completing false and starts a new completer.
			s.cmu.Lock()
			if len(s.queued) == 0 {
				s.completing.Store(false)
				s.cmu.Unlock()
				return nil
			}
			s.cmu.Unlock()
		}
	}
}

// pendingOutcomes are a push's outcomes, sent once the stream has passed lsn
// so that the edge holds the confirmed state they refer to.
type pendingOutcomes struct {
	batch    int64
	outcomes []wire.Outcome
	lsn      int64
}

var errSessionStopped = errors.New("session stopped")

// stop ends the session from outside (revocation, shutdown) with a close
// frame carrying the reason.
func (s *session) stop(code, msg string) {
	s.stopOnce.Do(func() {
		reason := code + ": " + msg
		if len(reason) > 120 {
			reason = reason[:120]
		}
		s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, reason), time.Now().Add(time.Second))
		s.cancel(fmt.Errorf("%w: %s", errSessionStopped, reason))
		s.conn.Close()
	})
}

func (s *session) run() {
	defer s.conn.Close()
	defer s.cancel(nil)
	defer s.admitted()
	s.conn.SetReadLimit(wire.MaxFrameBytes)
	if s.conn.Subprotocol() != wire.Subprotocol {
		s.sendError(wire.CodeProtocol, fmt.Sprintf("subprotocol %q is required", wire.Subprotocol))
		return
	}
	hello, err := s.readHello()
	if err != nil {
		s.log.Info("sync refused", "err", err)
		return
	}
	// The edge's binding waits for a group commit, which the handshakes
	// after this one share: it is not held to the handshake limit.
	s.admitted()
	s.nodeID = hello.NodeID
	s.pending.Store(hello.Pending)
	s.log = s.log.With("node", s.nodeID)
	if err := s.bind(hello); err != nil {
		s.log.Info("sync refused", "err", err)
		return
	}
	mismatched := s.adoptContainers(hello.Containers)
	if !s.h.conns.add(s) {
		s.sendError(wire.CodeShutdown, "the hub is shutting down")
		return
	}
	defer s.h.conns.remove(s)
	if t := s.h.cfg.Tier; t != nil {
		mu := s.h.conns.edgeLock(s.edge.Name)
		mu.Lock()
		err := t.EdgeHub(s.ctx, s.edge.Name, true)
		mu.Unlock()
		if err != nil {
			s.log.Warn("record the edge's hub", "err", err)
		}
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if t := s.h.cfg.Tier; t != nil {
			// Cleared unless another session of the edge started here
			// meanwhile (the lock orders the two records).
			mu := s.h.conns.edgeLock(s.edge.Name)
			mu.Lock()
			var err error
			if s.h.conns.count(s.edge.Name) == 1 {
				err = t.EdgeHub(ctx, s.edge.Name, false)
			}
			mu.Unlock()
			if err != nil {
				s.log.Warn("record the edge's hub", "err", err)
			}
		}
		if err := s.h.recordSessionEnd(ctx, s.edge.Name, s.nodeID, s.pending.Load(), s.acked.Load()); err != nil && !errors.Is(err, replica.ErrClosed) {
			s.log.Warn("record session end", "err", err)
		}
		if at := s.clock.measuredAt.Load(); at != 0 {
			if err := s.h.recordClock(ctx, s.edge.Name, s.clock.skewMs.Load(), at); err != nil && !errors.Is(err, replica.ErrClosed) {
				s.log.Warn("record edge clock", "err", err)
			}
		}
	}()
	if s.h.cfg.Tier != nil {
		// Another hub of the tier may have defined containers since this
		// one last read them: the welcome lists what the database holds.
		if err := s.h.followDefs(s.ctx); err != nil {
			s.log.Warn("read container definitions", "err", err)
		}
	}
	var defs []replica.Container
	for _, c := range s.h.Containers() {
		if wire.ContainerInScope(s.edge.Scope, c.Name) {
			defs = append(defs, c)
		}
	}
	welcome := &wire.Frame{Type: wire.TypeWelcome, HubID: s.h.hubID, HubName: s.h.Name(), Protocol: wire.ProtocolVersion, Edge: s.edge.Name,
		Scope: s.edge.Scope, HeadLSN: s.h.Head(), Containers: defs, Mismatched: mismatched}
	if s.follows {
		welcome.PingIntervalMs, welcome.HeartbeatTimeoutMs = s.every.Milliseconds(), s.wait.Milliseconds()
	}
	if err := s.write(welcome); err != nil {
		return
	}
	s.log.Info("edge connected", "resume", hello.ResumeLSN, "head", welcome.HeadLSN, "pending", hello.Pending)
	conflicts := int64(-1) // not asked for
	if hello.WantConflicts {
		conflicts = hello.ConflictSeq
	}
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		s.cancel(s.sender(hello.ResumeLSN, conflicts, defs))
		s.conn.Close() // ends the reader
	}()
	s.cancel(s.reader())
	s.conn.Close()
	<-sent
	s.cwg.Wait()
	s.log.Info("edge disconnected", "reason", context.Cause(s.ctx), "acked", s.acked.Load())
}

func (s *session) readHello() (*wire.Frame, error) {
	s.conn.SetReadDeadline(time.Now().Add(pongWait))
	data, err := s.readText()
	if err != nil {
		return nil, fmt.Errorf("read hello: %w", err)
	}
	f, err := wire.Decode(data)
	if err != nil {
		s.sendError(wire.CodeBadFrame, err.Error())
		return nil, err
	}
	if f.Type != wire.TypeHello {
		s.sendError(wire.CodeBadFrame, "the first frame must be hello")
		return nil, fmt.Errorf("first frame %q", f.Type)
	}
	if f.Protocol != wire.ProtocolVersion {
		msg := fmt.Sprintf("protocol version %d is not supported: this hub speaks %d", f.Protocol, wire.ProtocolVersion)
		s.sendError(wire.CodeProtocol, msg)
		return nil, errors.New(msg)
	}
	return f, nil
}

// bind checks the hello's node id and binds the edge to it (see
// Hub.bindSession); a refusal is answered with an error frame. The edge's
// applied LSN starts at its resume point, but never past the log's head.
func (s *session) bind(hello *wire.Frame) error {
	if err := wire.CheckEdgeNodeID(hello.NodeID); err != nil {
		s.sendError(wire.CodeBadNodeID, err.Error())
		return err
	}
	if hello.NodeID == s.h.hubID {
		err := fmt.Errorf("%w: %s is the hub's id", wire.ErrBadNodeID, hello.NodeID)
		s.sendError(wire.CodeBadNodeID, err.Error())
		return err
	}
	s.acked.Store(min(hello.ResumeLSN, s.h.Head()))
	err := s.h.bindSession(s.ctx, s.edge.Name, s.nodeID, hello.Pending, s.acked.Load())
	switch {
	case errors.Is(err, ErrNodeMismatch):
		s.sendError(wire.CodeNodeMismatch, err.Error()+
			": a token belongs to one edge node; if this edge's data directory was lost or replaced, revoke the edge at the hub and register it again")
	case errors.Is(err, ErrUnauthorized):
		s.sendError(wire.CodeRevoked, err.Error())
	case errors.Is(err, replica.ErrClosed):
		s.sendError(wire.CodeShutdown, "the hub is shutting down")
	case err != nil:
		s.sendError(wire.CodeInternal, "cannot record the session")
	}
	return err
}

// adoptContainers reconciles the containers an edge defined locally: the
// hub creates those it does not have (when the edge's scope allows), adopts
// those that agree, and reports the others as mismatched.
func (s *session) adoptContainers(defs []replica.Container) []string {
	var mismatched []string
	for _, d := range defs {
		d, err := d.Normalize()
		if err != nil || !wire.ContainerInScope(s.edge.Scope, d.Name) {
			mismatched = append(mismatched, d.Name)
			continue
		}
		cur, err := s.h.Container(d.Name)
		if err == nil {
			if cur.PartitionKey != d.PartitionKey {
				mismatched = append(mismatched, d.Name)
			}
			continue
		}
		if _, _, err := s.h.PutContainer(s.ctx, d); err != nil && !errors.Is(err, replica.ErrContainerMismatch) {
			s.log.Warn("create container from edge", "container", d.Name, "err", err)
			mismatched = append(mismatched, d.Name)
		}
	}
	return mismatched
}

func (s *session) sendError(code, msg string) {
	s.write(&wire.Frame{Type: wire.TypeError, Code: code, Message: msg})
	s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, code), time.Now().Add(time.Second))
}

func (s *session) write(f *wire.Frame) error {
	b, err := wire.Encode(f)
	if err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.conn.SetWriteDeadline(time.Now().Add(wire.WriteWait))
	return s.conn.WriteMessage(websocket.TextMessage, b)
}

// readText reads one message, which must be a text frame of valid UTF-8:
// a binary frame is a bad frame, and invalid UTF-8 in a text frame fails
// the connection with close code 1007 (RFC 6455, section 8.1).
func (s *session) readText() ([]byte, error) {
	typ, data, err := s.conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	if typ != websocket.TextMessage {
		s.sendError(wire.CodeBadFrame, "frames are JSON text")
		return nil, errors.New("binary frame")
	}
	if !utf8.Valid(data) {
		s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInvalidFramePayloadData, "invalid UTF-8 in a text frame"),
			time.Now().Add(time.Second))
		return nil, errInvalidUTF8
	}
	return data, nil
}

var errInvalidUTF8 = errors.New("invalid UTF-8 in a text frame")

// reader handles the edge's frames. A push is sequenced before the next
// frame is read, so a fast edge is held back by TCP, not by a queue.
func (s *session) reader() error {
	extend := func() { s.conn.SetReadDeadline(time.Now().Add(s.wait)) }
	// A frame or a ping is the edge speaking on its own: it is alive and
	// needs no ping from the hub (silentSince). A pong only answers one.
	heard := func() {
		now := time.Now()
		s.heard.Store(now.UnixNano())
		s.conn.SetReadDeadline(now.Add(s.wait))
	}
	s.conn.SetPongHandler(func(string) error { extend(); return nil })
	// A ping carrying the edge's clock is how the edge measures its offset
	// from the hub (the pong adds the hub's clock) and how the hub measures
	// the edge's skew.
	s.conn.SetPingHandler(func(data string) error {
		heard()
		now := s.h.cfg.Now()
		s.clock.observe(data, now)
		err := s.conn.WriteControl(websocket.PongMessage, []byte(clockPong(data, now)), time.Now().Add(wire.WriteWait))
		var ne net.Error
		if errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) {
			return nil // as gorilla's own ping handler: the read that follows reports it
		}
		return err
	})
	for {
		heard()
		data, err := s.readText()
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		f, err := wire.Decode(data)
		if err != nil {
			s.sendError(wire.CodeBadFrame, err.Error())
			return err
		}
		switch f.Type {
		case wire.TypePush:
			// Queued in order; the completer waits for each in turn, so
			// the next push is read (and decoded) while this one commits
			// and consecutive pushes can share a group commit.
			wait, err := s.h.QueuePush(s.ctx, s.nodeID, s.edge.Scope, f.Versions)
			if err != nil {
				return fmt.Errorf("push: %w", err)
			}
			select {
			case s.queued <- queuedPush{batch: f.Batch, wait: wait}:
			case <-s.ctx.Done():
				return context.Cause(s.ctx)
			}
			s.startCompleter()
		case wire.TypeAck:
			// Every position the hub sends is at most its head: an ack
			// past it is a broken or hostile edge, not to be shown.
			if head := s.h.Head(); f.LSN > head {
				err := fmt.Errorf("ack of lsn %d beyond the log's head %d", f.LSN, head)
				s.sendError(wire.CodeBadFrame, err.Error())
				return err
			}
			if f.LSN > s.acked.Load() {
				s.acked.Store(f.LSN)
			}
			s.pending.Store(f.Pending)
		default:
			err := fmt.Errorf("unexpected %s frame from an edge", f.Type)
			s.sendError(wire.CodeBadFrame, err.Error())
			return err
		}
	}
}

// sender streams the confirmed log from the edge's resume point, then live,
// and sends outcomes once the stream has passed what they refer to. It reads
// the log at its own pace from its own cursor: a slow edge falls behind in
// the log instead of growing a queue in memory. If the edge asked for them
// (conflicts >= 0), it streams the conflicts feed the same way, from
// conflict sequence number conflicts.
func (s *session) sender(cursor, conflicts int64, known []replica.Container) error {
	var queue []pendingOutcomes
	sent := map[string]bool{} // container definitions the edge has
	for _, c := range known {
		sent[c.Name] = true
	}
	for {
		changed := s.h.Changed()
		if cursor < s.h.Head() {
			changes, last, shared, err := s.readLog(cursor, len(queue) > 0, sent)
			if err != nil {
				return err
			}
			// A frame goes out when it has changes, or when the edge has
			// reached the head through changes it is not sent (out of
			// scope, or its own), so that its resume point moves on;
			// unless outcomes are about to go out, which carry it.
			outcomesDue := len(queue) > 0 && queue[0].lsn <= last || len(s.outcomes) > 0
			if shared != nil && (len(changes) > 0 || last > cursor && last >= s.h.Head() && !outcomesDue) {
				if err := s.writePrepared(shared); err != nil {
					return err
				}
			} else if len(changes) > 0 || last > cursor && last >= s.h.Head() && !outcomesDue {
				s.h.frames.encodes.Add(1)
				f := &wire.Frame{Type: wire.TypeChanges, Changes: changes, LSN: last, HeadLSN: s.h.Head()}
				for _, c := range changes {
					if !sent[c.Container] {
						if def, err := s.h.Container(c.Container); err == nil {
							f.Containers = append(f.Containers, def)
						}
						sent[c.Container] = true
					}
				}
				if err := s.write(f); err != nil {
					return err
				}
			}
			if last == cursor {
				// Nothing readable yet; wait for the next commit.
				select {
				case <-changed:
				case <-s.ctx.Done():
					return context.Cause(s.ctx)
				}
				continue
			}
			cursor = last
		}
	drain:
		for {
			select {
			case p := <-s.outcomes:
				queue = append(queue, p)
			default:
				break drain
			}
		}
		for len(queue) > 0 && queue[0].lsn <= cursor {
			p := queue[0]
			queue = queue[1:]
			if err := s.write(&wire.Frame{Type: wire.TypeOutcomes, Batch: p.batch, Outcomes: p.outcomes, LSN: cursor}); err != nil {
				return err
			}
		}
		if conflicts >= 0 && conflicts < s.h.ConflictHead() {
			cs, last, err := s.h.ConflictsAfter(s.ctx, conflicts, wire.MaxChangesFrame, wire.MaxChangesBytes, s.edge.Scope)
			if err != nil {
				return err
			}
			// Sent also when the scope filtered every record out, so
			// that the edge's resume point moves on.
			if last > conflicts {
				withoutClamps(cs)
				if err := s.write(&wire.Frame{Type: wire.TypeConflicts, Conflicts: cs, ConflictSeq: last}); err != nil {
					return err
				}
			}
			conflicts = last
		}
		if cursor < s.h.Head() || conflicts >= 0 && conflicts < s.h.ConflictHead() {
			if err := s.ctx.Err(); err != nil {
				return context.Cause(s.ctx)
			}
			continue
		}
		select {
		case <-changed:
		case p := <-s.outcomes:
			queue = append(queue, p)
		case <-s.ctx.Done():
			return context.Cause(s.ctx)
		}
	}
}

// readLog reads the changes after cursor for the session: the frame shared
// by the sessions at cursor with its scope (fanout.go), unless the session
// waits for outcomes of its own pushes, whose records it reads past in the
// store without their bodies. shared is set when the session may write the
// shared frame as it is: none of the changes are its own and it has every
// container's definition.
func (s *session) readLog(cursor int64, awaiting bool, sent map[string]bool) (changes []wire.Change, last int64, shared *websocket.PreparedMessage, err error) {
	if !awaiting && len(s.outcomes) == 0 && !s.completing.Load() {
		f, err := s.h.frames.shared(s.ctx, s.h, cursor, s.scopeKey, s.edge.Scope)
		if err != nil {
			return nil, cursor, nil, err
		}
		if f != nil {
			changes, shared = f.changes, f.msg
			if _, own := f.origins[s.nodeID]; own {
				changes, shared = withoutOrigin(changes, s.nodeID), nil
			}
			for _, c := range changes {
				if !sent[c.Container] {
					shared = nil
					break
				}
			}
			return changes, f.last, shared, nil
		}
	}
	s.h.frames.reads.Add(1)
	changes, last, err = s.h.LogAfter(s.ctx, cursor, wire.MaxChangesFrame, wire.MaxChangesBytes, s.edge.Scope, s.nodeID)
	return changes, last, nil, err
}

// withoutOrigin returns the changes not written by node, in a new slice.
func withoutOrigin(changes []wire.Change, node string) []wire.Change {
	out := make([]wire.Change, 0, len(changes))
	for _, c := range changes {
		if c.Origin != node {
			out = append(out, c)
		}
	}
	return out
}

func (s *session) writePrepared(m *websocket.PreparedMessage) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.conn.SetWriteDeadline(time.Now().Add(wire.WriteWait))
	return s.conn.WritePreparedMessage(m)
}
