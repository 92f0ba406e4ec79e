package hub

import (
	"context"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/wire"
)

// SetMaxSessions lowers the bound on live dashboard sessions until restore.
func SetMaxSessions(n int) (restore func()) {
	old := maxSessions
	maxSessions = n
	return func() { maxSessions = old }
}

// SetHandshakeWait changes how long a sync connection waits for a handshake
// slot until restore.
func SetHandshakeWait(d time.Duration) (restore func()) {
	old := handshakeWait
	handshakeWait = d
	return func() { handshakeWait = old }
}

// HashToken is the hash the hub stores of a token or session id.
func HashToken(token string) string { return hashToken(token) }

// PushParsedFor sequences one pushed version whose body was parsed before
// for the partition key path pkPath, which may no longer be the
// container's.
func (h *Hub) PushParsedFor(ctx context.Context, nodeID string, v *wire.Version, pkPath []string) (wire.Outcome, error) {
	pre := parsedBody{ok: true, pkPath: pkPath}
	pre.doc, pre.err = replica.ParseDocument(v.Body, pkPath)
	var o wire.Outcome
	err := h.submit(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		o, err = h.applyPushed(ctx, tx, nodeID, nil, v, &pre, true, new(PushOrder), nil)
		return err
	}, nil)
	return o, err
}

// ForwardWrite forwards a hub write to the sequencer as it is, without
// the checks a hub makes before it forwards one.
func (h *Hub) ForwardWrite(ctx context.Context, container, id string, body []byte) (replica.Item, error) {
	var res writeResult
	err := h.forward(ctx, forwardWrite, writeRequest{Kind: replica.WriteUpsert, Container: container, ID: id, Body: body}, &res)
	return res.Item, err
}

// SetHeartbeat changes the interval of the sessions' pings and the wait for
// anything from a silent edge until restore.
func SetHeartbeat(ping, pong time.Duration) (restore func()) {
	oldPing, oldPong := pingInterval, pongWait
	pingInterval, pongWait = ping, pong
	return func() { pingInterval, pongWait = oldPing, oldPong }
}

// ForwardedPushPayload is the queue payload of a push a hub that does not
// sequence forwards: what a Tier's Pending returns for it.
func ForwardedPushPayload(nodeID string, versions []wire.Version) []byte {
	b, err := encodeGob(pushRequest{NodeID: nodeID, Versions: versions})
	if err != nil {
		panic(err)
	}
	return b
}

// ForwardedPushKey is what a tier's queue keeps of a push of versions by
// nodeID (Tier.Forward's node and first).
func ForwardedPushKey(nodeID string, versions []wire.Version) (string, int64) {
	return pushKey(nodeID, versions)
}

// SetIndexBuildBatch sets how many items a write transaction indexes while
// an index is built.
func SetIndexBuildBatch(n int) (restore func()) {
	old := indexBuildBatch
	indexBuildBatch = n
	return func() { indexBuildBatch = old }
}

// OnHandoffReceived sets what runs when a push handed to this hub by
// another hub of its tier is registered, before it is queued in the writer.
func (h *Hub) OnHandoffReceived(fn func()) { h.handoffReceived = fn }

// EncodeHandoffPush is the body of a push handed to the sequencer's hub.
func EncodeHandoffPush(nodeID string, scope []wire.ScopeEntry, versions []wire.Version) ([]byte, error) {
	return encodeGob(pushRequest{NodeID: nodeID, Scope: scope, Versions: versions})
}
