// Package wire is the edgesync sync protocol: the frames an edge and a hub
// exchange over a WebSocket (GET /api/v1/sync, subprotocol "edgesync.v1"),
// their limits, and their validation. PROTOCOL.md in this directory describes
// the conversation; this file is the authority on field names.
//
// Every frame is one WebSocket text message holding one JSON object with a
// "type". Frames are bounded (MaxFrameBytes); a peer that sends anything
// else gets an error frame and the connection is closed.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/internal/jsonscan"
)

// Protocol identifiers.
const (
	Subprotocol     = "edgesync.v1"
	ProtocolVersion = 1
)

// Limits. A frame above MaxFrameBytes closes the connection; the other limits
// are checked by Decode.
const (
	MaxFrameBytes    = 24 << 20 // a push of MaxPushVersions documents of 2 MiB does not fit: pushes are also bounded by MaxPushBytes
	MaxPushVersions  = 256
	MaxPushBytes     = 8 << 20 // sum of bodies in one push
	MaxChangesFrame  = 2048    // changes per frame from the hub
	MaxChangesBytes  = 8 << 20
	MaxInFlightPush  = 4                // push frames an edge may have unanswered
	PingInterval     = 10 * time.Second // an edge's pings to a hub whose welcome names no interval
	PongWait         = 30 * time.Second // no frame or pong for this long: the peer is gone (unless the welcome says otherwise)
	WriteWait        = 10 * time.Second
	MaxScopeEntries  = 1000
	MaxHelloDefs     = 1000
	maxNodeIDLength  = 128
	maxVersionLength = 256
)

// MaxFrameArray bounds the elements of every array member of a frame (the
// versions of a push, the changes or containers of a frame, ...), whatever
// its type, before the frame is decoded: a frame of 24 MiB of empty objects
// would otherwise become gigabytes of structs before the checks of its type,
// whose limits are lower, could refuse it.
const MaxFrameArray = 65536

var errArrayTooLong = fmt.Errorf("an array of more than %d elements", MaxFrameArray)

// checkFrameArrays refuses a frame with an array member of more than
// MaxFrameArray elements. It looks at nothing else (the decoder refuses
// malformed frames) and costs one pass over b.
func checkFrameArrays(b []byte) error {
	depth, commas, inMember := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = jsonscan.SkipString(b, i) - 1
		case '[', '{':
			if depth == 1 && b[i] == '[' {
				inMember, commas = true, 0
			}
			depth++
		case ']', '}':
			depth--
			if depth <= 1 {
				inMember = false
			}
		case ',':
			if inMember && depth == 2 {
				if commas++; commas >= MaxFrameArray {
					return errArrayTooLong
				}
			}
		}
	}
	return nil
}

// Frame types.
const (
	TypeHello     = "hello"     // edge -> hub, first frame
	TypeWelcome   = "welcome"   // hub -> edge, answer to hello
	TypeError     = "error"     // either way, then close
	TypePush      = "push"      // edge -> hub: tentative versions
	TypeOutcomes  = "outcomes"  // hub -> edge: one outcome per pushed version
	TypeChanges   = "changes"   // hub -> edge: confirmed changes in LSN order
	TypeAck       = "ack"       // edge -> hub: applied up to an LSN
	TypeConflicts = "conflicts" // hub -> edge: conflicts feed records in scope, by conflict sequence number
)

// Outcomes of a pushed version (defined with the sequencer, in replica).
const (
	OutcomeConfirmed = replica.OutcomeConfirmed // confirmed as written, at LSN
	OutcomeMerged    = replica.OutcomeMerged    // merged with a concurrent version; the result is at LSN
	OutcomeLost      = replica.OutcomeLost      // a concurrent version won (at LSN) or the conflict awaits resolution
	OutcomeRejected  = replica.OutcomeRejected  // refused (scope, validation); Reason says why
)

// Error codes of error frames.
const (
	CodeProtocol     = "protocol_mismatch"
	CodeUnauthorized = "unauthorized"
	CodeBadFrame     = "bad_frame"
	CodeRevoked      = "revoked"
	CodeShutdown     = "shutdown"
	CodeInternal     = "internal"
	// CodeBadNodeID: the hello's node id is not an edge's (see
	// CheckEdgeNodeID), or is the hub's own.
	CodeBadNodeID = "bad_node_id"
	// CodeNodeMismatch: the edge's token is bound to another node id, or
	// the node id is bound to another edge's token.
	CodeNodeMismatch = "node_mismatch"
)

// Frame is every frame; which fields are set depends on Type.
type Frame struct {
	Type string `json:"type"`

	// hello
	NodeID     string              `json:"nodeId,omitempty"`
	Protocol   int                 `json:"protocol,omitempty"`
	ResumeLSN  int64               `json:"resumeLsn,omitempty"`
	Pending    int64               `json:"pending,omitempty"`
	Containers []replica.Container `json:"containers,omitempty"` // hello: defined locally; welcome: in scope
	// hello: WantConflicts asks for the conflicts feed (conflicts frames)
	// after ConflictSeq; conflicts: ConflictSeq is the position covered.
	WantConflicts bool  `json:"wantConflicts,omitempty"`
	ConflictSeq   int64 `json:"conflictSeq,omitempty"`

	// welcome
	HubID      string       `json:"hubId,omitempty"`
	HubName    string       `json:"hubName,omitempty"` // the hub's name in its tier (edge status shows it); absent: unnamed
	Edge       string       `json:"edge,omitempty"`    // the edge's registered name
	Scope      []ScopeEntry `json:"scope,omitempty"`   // empty: everything
	HeadLSN    int64        `json:"headLsn,omitempty"`
	Mismatched []string     `json:"mismatched,omitempty"` // containers whose local definition disagrees with the hub's
	// PingIntervalMs is how often the hub wants the edge to ping it, and
	// HeartbeatTimeoutMs the silence after which it drops the edge, both
	// in milliseconds; sent only to an edge whose upgrade request named
	// FeatureHeartbeat (absent: PingInterval and PongWait). See Heartbeat.
	PingIntervalMs     int64 `json:"pingIntervalMs,omitempty"`
	HeartbeatTimeoutMs int64 `json:"heartbeatTimeoutMs,omitempty"`

	// error
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`

	// push, outcomes (an outcomes frame's LSN, when set, is the position
	// the stream has covered, as in a changes frame)
	Batch    int64     `json:"batch,omitempty"`
	Versions []Version `json:"versions,omitempty"`
	Outcomes []Outcome `json:"outcomes,omitempty"`

	// changes: Changes in LSN order, LSN the position the stream has
	// covered (changes the scope filters out included), HeadLSN the hub's
	// newest LSN, Containers the definitions of containers the edge has not
	// been sent yet. ack: LSN the position the edge has applied, Pending
	// its writes without an outcome now (absent: none).
	Changes []Change `json:"changes,omitempty"`
	LSN     int64    `json:"lsn,omitempty"`

	// conflicts: records of the conflicts feed in conflict sequence order
	// (a conflict comes again, with a higher seq, when it is settled).
	Conflicts []Conflict `json:"conflicts,omitempty"`
}

// Conflict is one record of the conflicts feed, as the hub serves it
// (GET .../conflicts) and streams it to edges. Seq orders the stream: a
// conflict gets one when it is recorded and a new one when it is settled.
type Conflict struct {
	ID        int64            `json:"id"`
	Seq       int64            `json:"seq"`
	Kind      string           `json:"kind"`
	Status    string           `json:"status"`
	Container string           `json:"container"`
	DocID     string           `json:"docId"`
	PK        string           `json:"pk"`
	Policy    string           `json:"policy"`
	Loser     string           `json:"loser"` // incoming or existing
	WinnerLSN int64            `json:"winnerLsn"`
	Reason    string           `json:"reason"`
	Resolver  string           `json:"resolver,omitempty"` // the resolver version that decided
	CreatedAt int64            `json:"createdAt"`
	Incoming  *ConflictVersion `json:"incoming"`
	Existing  *ConflictVersion `json:"existing"`
	Base      *ConflictVersion `json:"base"`
}

// ConflictVersion is one side of a conflict, with its content (null for a
// tombstone).
type ConflictVersion struct {
	Version  string          `json:"version"`
	Origin   string          `json:"origin"`
	TS       int64           `json:"ts"`
	Deleted  bool            `json:"deleted"`
	Document json.RawMessage `json:"document"`
	// ClampedTS is set when TS was ahead of the hub's clock by more than
	// its tolerance: the hub's receipt time, which decisions took instead.
	// The hub's HTTP feed serves it; conflicts frames never carry it (a
	// peer decodes frames strictly: new fields need a new protocol).
	ClampedTS int64 `json:"clampedTs,omitempty"`
}

// Size is the bytes of documents c holds.
func (c *Conflict) Size() int {
	n := 0
	for _, v := range []*ConflictVersion{c.Incoming, c.Existing, c.Base} {
		if v != nil {
			n += len(v.Document)
		}
	}
	return n
}

// ScopeEntry is one container an edge may read and write, optionally only
// some partition key values.
type ScopeEntry struct {
	Container     string   `json:"container"`
	PartitionKeys []string `json:"partitionKeys,omitempty"`
}

// Version is a tentative version pushed by an edge.
type Version struct {
	Container string          `json:"container"`
	ID        string          `json:"id"`
	Op        string          `json:"op"` // create, replace, delete
	Version   string          `json:"version"`
	Base      string          `json:"base,omitempty"`
	TS        int64           `json:"ts"`
	Body      json.RawMessage `json:"body,omitempty"` // absent on delete
}

// Outcome is the hub's answer for one pushed version.
type Outcome struct {
	Version    string `json:"version"`
	Container  string `json:"container"`
	ID         string `json:"id"`
	Outcome    string `json:"outcome"`
	LSN        int64  `json:"lsn,omitempty"`  // confirmed/merged: the resulting version; lost: the winner
	CRTS       int64  `json:"crts,omitempty"` // confirmed: when the hub confirmed it
	Reason     string `json:"reason,omitempty"`
	ConflictID int64  `json:"conflictId,omitempty"`
}

// Change is a confirmed version or delete, as the hub streams it. An edge is
// not sent its own versions that were confirmed as written: their outcome
// (confirmed, with LSN and CRTS) tells it all, and it has the document.
type Change struct {
	LSN       int64           `json:"lsn"`
	CRTS      int64           `json:"crts"`
	Container string          `json:"container"`
	Op        string          `json:"op"`
	ID        string          `json:"id"`
	PK        string          `json:"pk"`
	Version   string          `json:"version"`
	Base      string          `json:"base,omitempty"`
	Origin    string          `json:"origin"`
	TS        int64           `json:"ts"`
	Policy    string          `json:"policy,omitempty"`   // the policy in force when confirmed
	Resolver  string          `json:"resolver,omitempty"` // resolver version that decided it
	Resolves  string          `json:"resolves,omitempty"` // version whose conflict it settled
	ClampedTS int64           `json:"-"`                  // hub only, never sent: TS was from the future, the receipt time decisions took
	Body      json.RawMessage `json:"body,omitempty"`     // absent on delete
}

// ErrBadFrame marks a frame that is not valid.
var ErrBadFrame = errors.New("bad frame")

// Encode returns the JSON of f. Documents are embedded as they are, byte for
// byte: no HTML escaping (which would blow a document's size up to six times
// past the limits it was checked against) and no second validation: every
// body in a frame was validated when it was written, and the peer's Decode
// checks the frame anyway. (Validating and compacting each body through
// encoding/json was most of the encoding cost of a frame of changes.)
func Encode(f *Frame) ([]byte, error) {
	var e encoder
	g := *f
	switch {
	case f.Type == TypePush && len(f.Versions) > 0:
		g.Versions = nil
		return withList(&e, &g, "versions", f.Versions, func(v *Version) *json.RawMessage { return &v.Body })
	case f.Type == TypeChanges && len(f.Changes) > 0:
		g.Changes = nil
		return withList(&e, &g, "changes", f.Changes, func(c *Change) *json.RawMessage { return &c.Body })
	}
	return e.encode(&g)
}

// encoder is encoding/json without HTML escaping, reusing one buffer.
type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// encode returns the JSON of v (a copy: the buffer is reused).
func (e *encoder) encode(v any) ([]byte, error) {
	if e.enc == nil {
		e.enc = json.NewEncoder(&e.buf)
		e.enc.SetEscapeHTML(false)
	}
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.Clone(bytes.TrimSuffix(e.buf.Bytes(), []byte("\n"))), nil
}

// withList encodes frame (whose list field name is empty) with items
// spliced in as that list: each item encoded without its body, then the
// body appended as its last member.
func withList[T any](e *encoder, frame *Frame, name string, items []T, body func(*T) *json.RawMessage) ([]byte, error) {
	rest, err := e.encode(frame)
	if err != nil {
		return nil, err
	}
	size := len(rest) + 16
	for i := range items {
		size += len(*body(&items[i])) + 320 // the item's other members, about
	}
	out := make([]byte, 0, size)
	out = append(out, `{"`...)
	out = append(out, name...)
	out = append(out, `":[`...)
	for i := range items {
		item := items[i]
		raw := *body(&item)
		*body(&item) = nil
		if i > 0 {
			out = append(out, ',')
		}
		e.buf.Reset()
		if err := e.enc.Encode(&item); err != nil {
			return nil, err
		}
		b := bytes.TrimSuffix(e.buf.Bytes(), []byte("\n"))
		if len(raw) == 0 {
			out = append(out, b...)
			continue
		}
		if len(b) < 2 || b[len(b)-1] != '}' {
			return nil, fmt.Errorf("encode %s: item %d is not an object", name, i)
		}
		if len(b) > 2 {
			out = append(out, b[:len(b)-1]...)
			out = append(out, ',')
		} else {
			out = append(out, '{')
		}
		out = append(out, `"body":`...)
		out = append(out, raw...)
		out = append(out, '}')
	}
	out = append(out, "],"...)
	return append(out, rest[1:]...), nil // rest is {"type":...}
}

// Decode parses and checks one frame: its type, and the fields and limits of
// that type. It never trusts the peer; every error wraps ErrBadFrame. The
// frame's documents may share b's memory: b must not change afterwards.
func Decode(b []byte) (*Frame, error) {
	if len(b) > MaxFrameBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBadFrame, len(b), MaxFrameBytes)
	}
	f, ok, err := decodeFast(b)
	if err == nil && !ok {
		f, err = decodeJSON(b)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	if err := f.check(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadFrame, f.Type, err)
	}
	return f, nil
}

// decodeJSON decodes a frame with encoding/json.
func decodeJSON(b []byte) (*Frame, error) {
	if err := checkFrameArrays(b); err != nil {
		return nil, err
	}
	f := new(Frame)
	// Unknown fields are refused: a misspelt scope key must not widen a
	// scope. New fields come with a new protocol version.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(f); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data")
	}
	if bytes.Contains(b, []byte(`\u`)) && jsonscan.LoneSurrogate(b) {
		if err := checkSurrogates(b); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// checkSurrogates refuses a lone UTF-16 surrogate escape in the strings of
// a hello or push frame that name things (node id, container, item id,
// version, base): encoding/json decodes it as U+FFFD, so that distinct
// names would become one. Documents are left to replica.ParseDocument.
// Only frames with such an escape somewhere come here.
func checkSurrogates(b []byte) error {
	var names struct {
		NodeID   json.RawMessage `json:"nodeId"`
		Versions []struct {
			Container json.RawMessage `json:"container"`
			ID        json.RawMessage `json:"id"`
			Version   json.RawMessage `json:"version"`
			Base      json.RawMessage `json:"base"`
		} `json:"versions"`
	}
	if err := json.Unmarshal(b, &names); err != nil {
		return err
	}
	if jsonscan.LoneSurrogate(names.NodeID) {
		return errors.New("nodeId: lone UTF-16 surrogate escape")
	}
	for i, v := range names.Versions {
		for _, s := range []struct {
			name string
			raw  json.RawMessage
		}{{"container", v.Container}, {"id", v.ID}, {"version", v.Version}, {"base", v.Base}} {
			if jsonscan.LoneSurrogate(s.raw) {
				return fmt.Errorf("version %d: %s: lone UTF-16 surrogate escape", i, s.name)
			}
		}
	}
	return nil
}

func (f *Frame) check() error {
	switch f.Type {
	case TypeHello:
		if f.NodeID == "" || len(f.NodeID) > maxNodeIDLength {
			return errors.New("nodeId: 1..128 bytes")
		}
		if f.ResumeLSN < 0 || f.Pending < 0 {
			return errors.New("resumeLsn and pending must not be negative")
		}
		if len(f.Containers) > MaxHelloDefs {
			return fmt.Errorf("%d containers, limit %d", len(f.Containers), MaxHelloDefs)
		}
		if f.ConflictSeq < 0 {
			return errors.New("conflictSeq must not be negative")
		}
	case TypeWelcome:
		if f.HubID == "" || f.HeadLSN < 0 || len(f.Scope) > MaxScopeEntries {
			return errors.New("hubId, headLsn or scope out of range")
		}
		if f.PingIntervalMs < 0 || f.HeartbeatTimeoutMs < 0 {
			return errors.New("pingIntervalMs and heartbeatTimeoutMs must not be negative")
		}
	case TypeError:
		if f.Code == "" {
			return errors.New("code is required")
		}
	case TypePush:
		if len(f.Versions) == 0 || len(f.Versions) > MaxPushVersions {
			return fmt.Errorf("%d versions: want 1..%d", len(f.Versions), MaxPushVersions)
		}
		if f.Batch <= 0 {
			return errors.New("batch must be positive")
		}
		total := 0
		for i := range f.Versions {
			v := &f.Versions[i]
			if err := v.check(); err != nil {
				return fmt.Errorf("version %d: %v", i, err)
			}
			total += len(v.Body)
		}
		if total > MaxPushBytes {
			return fmt.Errorf("%d bytes of documents, limit %d", total, MaxPushBytes)
		}
	case TypeOutcomes:
		if f.Batch <= 0 {
			return errors.New("batch must be positive")
		}
		if f.LSN < 0 {
			return errors.New("lsn must not be negative")
		}
		for i, o := range f.Outcomes {
			if o.LSN < 0 {
				return fmt.Errorf("outcome %d: negative lsn", i)
			}
		}
	case TypeChanges:
		if f.LSN < 0 || f.HeadLSN < 0 {
			return errors.New("lsn and headLsn must not be negative")
		}
		if len(f.Changes) > MaxChangesFrame {
			return fmt.Errorf("%d changes, limit %d", len(f.Changes), MaxChangesFrame)
		}
		if n := len(f.Changes); n > 0 && f.LSN < f.Changes[n-1].LSN {
			return errors.New("lsn is behind the changes it covers")
		}
		for i, c := range f.Changes {
			if c.LSN <= 0 || (i > 0 && c.LSN <= f.Changes[i-1].LSN) {
				return fmt.Errorf("change %d: lsn %d out of order", i, c.LSN)
			}
			if c.Op != replica.OpCreate && c.Op != replica.OpReplace && c.Op != replica.OpDelete {
				return fmt.Errorf("change %d: op %q", i, c.Op)
			}
		}
	case TypeAck:
		if f.LSN < 0 || f.Pending < 0 {
			return errors.New("lsn and pending must not be negative")
		}
	case TypeConflicts:
		if f.ConflictSeq < 0 {
			return errors.New("conflictSeq must not be negative")
		}
		if len(f.Conflicts) > MaxChangesFrame {
			return fmt.Errorf("%d conflicts, limit %d", len(f.Conflicts), MaxChangesFrame)
		}
		for i := range f.Conflicts {
			c := &f.Conflicts[i]
			if c.Seq <= 0 || (i > 0 && c.Seq <= f.Conflicts[i-1].Seq) || c.Seq > f.ConflictSeq {
				return fmt.Errorf("conflict %d: seq %d out of order", i, c.Seq)
			}
			if err := c.check(); err != nil {
				return fmt.Errorf("conflict %d: %v", i, err)
			}
		}
	default:
		return fmt.Errorf("unknown frame type %q", f.Type)
	}
	return nil
}

func (c *Conflict) check() error {
	if c.ID <= 0 || c.WinnerLSN < 0 {
		return errors.New("id must be positive, winnerLsn not negative")
	}
	if err := replica.ValidateName(c.Container); err != nil {
		return fmt.Errorf("container: %v", err)
	}
	if err := replica.ValidateID(c.DocID); err != nil {
		return err
	}
	if c.Status != replica.StatusResolved && c.Status != replica.StatusUnresolved {
		return fmt.Errorf("status %q", c.Status)
	}
	for _, v := range []*ConflictVersion{c.Incoming, c.Existing, c.Base} {
		if v == nil {
			continue
		}
		if len(v.Version) > maxVersionLength || len(v.Document) > replica.MaxDocumentSize {
			return errors.New("version over 256 bytes or document over the size limit")
		}
	}
	return nil
}

func (v *Version) check() error {
	if err := replica.ValidateName(v.Container); err != nil {
		return fmt.Errorf("container: %v", err)
	}
	if err := replica.ValidateID(v.ID); err != nil {
		return err
	}
	if v.Version == "" || len(v.Version) > maxVersionLength || len(v.Base) > maxVersionLength {
		return errors.New("version: 1..256 bytes, base at most 256")
	}
	switch v.Op {
	case replica.OpCreate, replica.OpReplace:
		if len(v.Body) == 0 {
			return fmt.Errorf("op %s without body", v.Op)
		}
		if len(v.Body) > replica.MaxDocumentSize {
			return fmt.Errorf("body is %d bytes, limit %d", len(v.Body), replica.MaxDocumentSize)
		}
	case replica.OpDelete:
		if len(v.Body) != 0 {
			return errors.New("delete with a body")
		}
	default:
		return fmt.Errorf("op %q: want create, replace or delete", v.Op)
	}
	return nil
}

// InScope reports whether scope (empty: everything) covers the partition key
// value pk of container.
func InScope(scope []ScopeEntry, container, pk string) bool {
	if len(scope) == 0 {
		return true
	}
	for _, e := range scope {
		if e.Container != container {
			continue
		}
		if len(e.PartitionKeys) == 0 {
			return true
		}
		for _, k := range e.PartitionKeys {
			if k == pk {
				return true
			}
		}
	}
	return false
}

// ContainerInScope reports whether scope covers any of container.
func ContainerInScope(scope []ScopeEntry, container string) bool {
	if len(scope) == 0 {
		return true
	}
	for _, e := range scope {
		if e.Container == container {
			return true
		}
	}
	return false
}

// CheckPush checks the versions of a push as Decode checks a push frame's:
// 1..MaxPushVersions versions, each well formed, at most MaxPushBytes of
// documents. For pushes that reach a hub by another route than a frame.
func CheckPush(versions []Version) error {
	f := Frame{Type: TypePush, Batch: 1, Versions: versions}
	return f.check()
}
