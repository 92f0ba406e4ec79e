package hub

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgesync/edgesync/replica/wire"
)

// The direct hand-off. A hub of a tier that does not sequence hands an
// edge's push to the sequencer's hub over HTTP (POST HandoffPath on the
// sequencer's listener), instead of through the tier's queue of forwarded
// decisions: the same payload as a queued push, decided by the same job
// (queuePush), answered with the same result bytes, but with no queue row
// to write, read back, mark decided, notify and delete.
//
// The exchange is one request per push, in two steps on one response:
// the sequencer queues the push in its writer and sends handoffQueued at
// once, then handoffAlive every LeaseTimeout/5 while the push waits for
// its commit, then handoffResult and the result (or handoffFailed and a
// message: not decided, or not known to be). The follower's QueuePush
// returns after the first step, so a session's pushes are queued in the
// sequencer's writer in the order the edge sent them, and the next push
// is read while this one commits, as with the queue.
//
// Whatever goes wrong on the way (no sequencer known, connection refused,
// the hub answers that it does not sequence, nothing heard within twice
// the lease timeout from a stalled sequencer, handoffFailed), the follower
// queues the same push in the tier's queue. That stays correct: a push is
// idempotent by its version ids (a version decided before gets its stored
// outcome), and a sequencer that lost its lease commits nothing (fenced).
// Hub API writes and resolutions keep the queue: they have no version ids
// of their own to be decided once by.

// HandoffTier is a Tier whose hubs hand their edges' pushes to the
// sequencer's hub directly (replica/hub/pghub.Tier).
type HandoffTier interface {
	Tier
	// Sequencer returns the name and the address (host:port) of the hub
	// that holds the lease, as the tier recorded them; "" when no hub
	// holds it. It may answer from what it read a moment ago; fresh reads
	// them again.
	Sequencer(ctx context.Context, fresh bool) (name, address string, err error)
	// Secret is the tier's shared secret, which a hub presents to another
	// (kept in the database).
	Secret() []byte
	// LeaseTimeout is the tier's lease timeout.
	LeaseTimeout() time.Duration
}

// HandoffPath is the sequencer's endpoint for pushes handed to it by the
// other hubs of its tier.
const HandoffPath = "/api/v1/tier/push"

// handoffHubHeader names, in a hand-off, the hub the follower takes for
// the sequencer: another hub answers 409.
const handoffHubHeader = "Edgesync-Sequencer"

// The bytes of a hand-off's response body.
const (
	handoffQueued = 'Q' // queued in the sequencer's writer
	handoffAlive  = ' ' // still waiting for its commit
	handoffResult = 'R' // then the result (forwardResult), to the end
	handoffFailed = 'F' // then why, to the end: fall back to the queue
)

// handoffConns bounds a hub's connections to the sequencer's hub: a push
// beyond it waits for one (within the hand-off's time bound) and then
// goes to the queue.
const handoffConns = 64

// errHandoff means a push handed to the sequencer's hub was not decided by
// that route (or is not known to be): it goes to the tier's queue.
var errHandoff = errors.New("hand-off to the sequencer")

// errHandoffStalled means nothing came from the sequencer's hub within
// the hand-off's bound.
var errHandoffStalled = fmt.Errorf("%w: the sequencer's hub is silent", errHandoff)

// handoff is a follower's client of the sequencer's hub.
type handoff struct {
	tier   HandoffTier
	client *http.Client
	scheme string
	idle   time.Duration // nothing heard for this long: the sequencer is stalled

	pushes    atomic.Int64 // pushes decided through the hand-off
	fallbacks atomic.Int64 // pushes that went to the queue instead (after a failed hand-off, or during a pause)
	// pausedUntil (unix nanoseconds): after a hand-off fails, pushes go
	// to the queue for a fifth of the lease timeout without trying, so
	// that an unreachable or stalled sequencer costs each push neither a
	// connection attempt nor a wait.
	pausedUntil atomic.Int64
}

// pause sends pushes to the queue for a while after a failed hand-off.
func (d *handoff) pause() {
	d.pausedUntil.Store(time.Now().Add(d.idle / 10).UnixNano())
}

// newHandoff returns the client of tier's sequencer; tlsConfig, if not nil,
// makes it speak HTTPS (the hubs serve TLS).
func newHandoff(tier HandoffTier, tlsConfig *tls.Config) *handoff {
	idle := 2 * tier.LeaseTimeout()
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: idle, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: idle,
		MaxIdleConns:        handoffConns,
		MaxIdleConnsPerHost: handoffConns,
		MaxConnsPerHost:     handoffConns,
		IdleConnTimeout:     90 * time.Second,
	}
	d := &handoff{tier: tier, client: &http.Client{Transport: tr}, scheme: "http", idle: idle}
	if tlsConfig != nil {
		d.scheme = "https"
	}
	return d
}

func (d *handoff) close() { d.client.CloseIdleConnections() }

// push hands a push's payload (pushRequest, gob) to the sequencer's hub.
// It returns once the sequencer has queued it, with a function that waits
// for its result; an error (errHandoff) if it was not handed off: the
// caller queues it.
func (d *handoff) push(ctx context.Context, self string, payload []byte) (func(ctx context.Context) ([]byte, error), error) {
	if time.Now().UnixNano() < d.pausedUntil.Load() {
		return nil, fmt.Errorf("%w: paused after a failed hand-off", errHandoff)
	}
	name, addr, err := d.tier.Sequencer(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errHandoff, err)
	}
	if name == "" || addr == "" || name == self {
		return nil, fmt.Errorf("%w: no other hub sequences", errHandoff)
	}
	rctx, cancel := context.WithCancelCause(ctx)
	stalled := time.AfterFunc(d.idle, func() { cancel(errHandoffStalled) })
	fail := func(err error) (func(ctx context.Context) ([]byte, error), error) {
		stalled.Stop()
		cancel(nil)
		if ctx.Err() == nil {
			d.pause()
		}
		_, _, _ = d.tier.Sequencer(ctx, true) // the sequencer may have changed
		return nil, fmt.Errorf("%w: %v", errHandoff, err)
	}
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, d.scheme+"://"+addr+HandoffPath, bytes.NewReader(payload))
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Authorization", "Bearer "+string(d.tier.Secret()))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(handoffHubHeader, name)
	resp, err := d.client.Do(req)
	if err != nil {
		if c := context.Cause(rctx); c != nil && ctx.Err() == nil {
			err = c
		}
		return fail(err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return fail(fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg))))
	}
	br := bufio.NewReader(resp.Body)
	if b, err := br.ReadByte(); err != nil || b != handoffQueued {
		resp.Body.Close()
		if err == nil {
			err = fmt.Errorf("response begins with %q", b)
		}
		return fail(err)
	}
	// The bound runs again once the result is waited for: the session
	// waits for its pushes' results in order, and the bytes of this one
	// wait unread meanwhile.
	stalled.Stop()
	return func(wctx context.Context) ([]byte, error) {
		stalled.Reset(d.idle)
		defer cancel(nil)
		defer stalled.Stop()
		defer resp.Body.Close()
		stop := context.AfterFunc(wctx, func() { cancel(context.Cause(wctx)) })
		defer stop()
		for {
			b, err := br.ReadByte()
			if err != nil {
				if wctx.Err() != nil {
					return nil, context.Cause(wctx)
				}
				if c := context.Cause(rctx); c != nil {
					err = c
				}
				d.pause()
				return nil, fmt.Errorf("%w: %v", errHandoff, err)
			}
			stalled.Reset(d.idle)
			switch b {
			case handoffAlive:
				continue
			case handoffResult:
				res, err := io.ReadAll(io.LimitReader(br, wire.MaxFrameBytes))
				if err != nil {
					return nil, fmt.Errorf("%w: read the result: %v", errHandoff, err)
				}
				return res, nil
			case handoffFailed:
				d.pause()
				msg, _ := io.ReadAll(io.LimitReader(br, 512))
				return nil, fmt.Errorf("%w: %s", errHandoff, msg)
			default:
				return nil, fmt.Errorf("%w: unexpected byte %q in the response", errHandoff, b)
			}
		}
	}, nil
}

// directPushes are the pushes handed to this hub (the sequencer) and not
// decided yet, so that a held version pushed again waits while an earlier
// push of its node is on its way by that route too (pushQueued), as it
// does for one in the tier's queue.
type directPushes struct {
	mu   sync.Mutex
	next uint64
	byID map[uint64]directPush
}

type directPush struct {
	node  string
	first int64
}

// add registers a push of node whose versions of the node start at
// counter first; it returns the push's id, 0 for a push with none.
func (r *directPushes) add(node string, first int64) uint64 {
	if node == "" {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = map[uint64]directPush{}
	}
	r.next++
	r.byID[r.next] = directPush{node: node, first: first}
	return r.next
}

func (r *directPushes) remove(id uint64) {
	if id == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byID, id)
}

// earlier reports whether a push of node with a version before counter
// before is registered, other than except. A push decided in the
// transaction that asks, and not committed yet, still counts: the held
// version is held once more (its edge pushes it again in its next
// session), never decided before its base.
func (r *directPushes) earlier(node string, before int64, except uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, p := range r.byID {
		if id != except && p.node == node && p.first < before {
			return true
		}
	}
	return false
}

// HandoffCounts reports, on a hub that does not sequence, the pushes it
// handed to the sequencer's hub and had decided there, and those it queued
// after a hand-off failed; on the sequencer, received counts the pushes
// handed to it.
func (h *Hub) HandoffCounts() (pushes, fallbacks, received int64) {
	if h.handoff != nil {
		pushes, fallbacks = h.handoff.pushes.Load(), h.handoff.fallbacks.Load()
	}
	return pushes, fallbacks, h.handedIn.Load()
}

// handoffTier returns the hub's tier if its hubs hand pushes off.
func (h *Hub) handoffTier() HandoffTier {
	t, _ := h.cfg.Tier.(HandoffTier)
	return t
}

// ServeTierPush serves POST HandoffPath: a push another hub of the tier
// hands to this hub, the sequencer. 404 on a hub alone on its store, 401
// without the tier's secret, 409 on a hub that does not hold the lease or
// is not the one the request names, 413 for a body above a push frame's
// bound, 400 for a payload that is not a well-formed push.
func (h *Hub) ServeTierPush(w http.ResponseWriter, r *http.Request) {
	t := h.handoffTier()
	if t == nil {
		http.Error(w, "not a hub of a tier", http.StatusNotFound)
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if secret := t.Secret(); !ok || len(secret) == 0 || subtle.ConstantTimeCompare([]byte(token), secret) != 1 {
		http.Error(w, "a hub of the tier's secret is required", http.StatusUnauthorized)
		return
	}
	if !h.Sequencing() || r.Header.Get(handoffHubHeader) != h.Name() {
		http.Error(w, fmt.Sprintf("hub %s does not sequence", h.Name()), http.StatusConflict)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, wire.MaxFrameBytes))
	if err != nil {
		if mb := (*http.MaxBytesError)(nil); errors.As(err, &mb) {
			http.Error(w, fmt.Sprintf("a push of more than %d bytes", wire.MaxFrameBytes), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "read the push: "+err.Error(), http.StatusBadRequest)
		return
	}
	req, err := decodeHandoff(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	node, first := pushKey(req.NodeID, req.Versions)
	id := h.direct.add(node, first)
	defer h.direct.remove(id)
	if h.handoffReceived != nil {
		h.handoffReceived()
	}
	// Once queued, the push is decided in its turn even if the hub that
	// handed it stops waiting, as a queued forwarded push is.
	wait, err := h.queuePush(context.WithoutCancel(r.Context()), req.NodeID, req.Scope, req.Versions, &claim{direct: id})
	if err != nil {
		http.Error(w, "queue the push: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	h.handedIn.Add(1)
	type decided struct {
		result []byte
		err    error
	}
	done := make(chan decided, 1)
	go func() {
		outs, lsn, err := wait()
		if err != nil {
			if b, ok := errorResult(err); ok {
				done <- decided{result: b}
				return
			}
			done <- decided{err: err}
			return
		}
		b, err := valueResult(pushResult{Outcomes: outs, LSN: lsn})
		done <- decided{result: b, err: err}
	}()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(b ...byte) {
		if _, err := w.Write(b); err == nil {
			_ = rc.Flush() // a follower gone: it reads nothing more, and the push is decided all the same
		}
	}
	send(handoffQueued)
	alive := time.NewTicker(max(t.LeaseTimeout()/5, 10*time.Millisecond))
	defer alive.Stop()
	for {
		select {
		case <-alive.C:
			send(handoffAlive)
		case d := <-done:
			if d.err != nil {
				send(append([]byte{handoffFailed}, d.err.Error()...)...)
				return
			}
			send(append([]byte{handoffResult}, d.result...)...)
			return
		}
	}
}

// maxNodeID bounds a handed-off push's node id, as a hello frame's.
const maxNodeID = 128

// decodeHandoff decodes and checks a handed-off push, untrusted input
// bounded by the caller: a node id, a scope and versions as a push frame
// has them.
func decodeHandoff(body []byte) (req pushRequest, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decode the push: %v", p)
		}
	}()
	if err := decodeGob(body, &req); err != nil {
		return req, fmt.Errorf("decode the push: %w", err)
	}
	if req.NodeID == "" || len(req.NodeID) > maxNodeID {
		return req, fmt.Errorf("node id: %d bytes, want 1..%d", len(req.NodeID), maxNodeID)
	}
	if len(req.Scope) > wire.MaxScopeEntries {
		return req, fmt.Errorf("%d scope entries, limit %d", len(req.Scope), wire.MaxScopeEntries)
	}
	if err := wire.CheckPush(req.Versions); err != nil {
		return req, fmt.Errorf("push: %w", err)
	}
	return req, nil
}
