package client

import (
	"encoding/json"
	"fmt"
	"time"
)

// Conflict policy modes (Container.ConflictPolicy.Mode).
const (
	ModeLWW    = "lww"
	ModeMerge  = "merge"
	ModeCustom = "custom"
	ModeManual = "manual"
)

// ConflictPolicy says how the hub settles conflicting versions of an item.
type ConflictPolicy struct {
	Mode            string `json:"mode"`
	Path            string `json:"path,omitempty"`            // lww: the numeric path compared (default /_ts)
	Resolver        string `json:"resolver,omitempty"`        // custom: the resolver's name
	ResolverVersion int    `json:"resolverVersion,omitempty"` // custom: a pinned version; 0 the newest
}

// Container is a container's definition. ItemCount and UnresolvedConflicts
// are filled by the hub's list only.
type Container struct {
	Name                string         `json:"name"`
	PartitionKey        string         `json:"partitionKey"`
	ConflictPolicy      ConflictPolicy `json:"conflictPolicy"`
	ItemCount           int64          `json:"itemCount,omitempty"`
	UnresolvedConflicts int64          `json:"unresolvedConflicts,omitempty"`
}

// Document is a stored document as the API returns it: its JSON with the
// system properties, and those properties decoded.
type Document struct {
	ID        string
	ETag      string // pass it back as WriteOptions.IfMatch
	TS        int64  // _ts, seconds
	LSN       int64  // _lsn: the hub's log position once confirmed, else 0
	CRTS      int64  // _crts: the hub's confirmation time, else 0
	Tentative bool   // _tentative: an edge's write the hub has not confirmed yet
	// JSON is the whole document, system properties included.
	JSON json.RawMessage
}

// UnmarshalJSON keeps the document's JSON and reads its system properties.
func (d *Document) UnmarshalJSON(b []byte) error {
	var sys struct {
		ID        string `json:"id"`
		ETag      string `json:"_etag"`
		TS        int64  `json:"_ts"`
		LSN       int64  `json:"_lsn"`
		CRTS      int64  `json:"_crts"`
		Tentative bool   `json:"_tentative"`
	}
	if err := json.Unmarshal(b, &sys); err != nil {
		return fmt.Errorf("decode document: %w", err)
	}
	*d = Document{ID: sys.ID, ETag: sys.ETag, TS: sys.TS, LSN: sys.LSN, CRTS: sys.CRTS, Tentative: sys.Tentative,
		JSON: append(json.RawMessage(nil), b...)}
	return nil
}

// MarshalJSON returns the document's JSON.
func (d Document) MarshalJSON() ([]byte, error) {
	if d.JSON == nil {
		return []byte("null"), nil
	}
	return d.JSON, nil
}

// Decode decodes the document's JSON into v (unknown fields, such as the
// system properties, are ignored by a struct).
func (d *Document) Decode(v any) error {
	if err := json.Unmarshal(d.JSON, v); err != nil {
		return fmt.Errorf("decode document %q: %w", d.ID, err)
	}
	return nil
}

// DocumentPage is a page of a listing.
type DocumentPage struct {
	Documents []Document `json:"documents"`
	// Continuation asks for the next page (ListOptions.Continuation); ""
	// on the last page.
	Continuation string `json:"-"`
}

// Change operations and outcomes in the change feed.
const (
	OpCreate  = "create"
	OpReplace = "replace"
	OpDelete  = "delete"
	OpOutcome = "outcome" // an edge's record of what the hub decided for one of its writes

	OutcomeConfirmed = "confirmed"
	OutcomeMerged    = "merged"
	OutcomeLost      = "lost"
	OutcomeRejected  = "rejected"
)

// Change is a record of a change feed (docs/api.md, Change feed).
type Change struct {
	Seq       int64           `json:"seq,omitempty"` // edge: position in its feed
	LSN       int64           `json:"lsn"`           // hub position; 0 on an edge until confirmed
	CRTS      int64           `json:"crts"`
	Op        string          `json:"op"`
	ID        string          `json:"id"`
	PK        string          `json:"pk"`
	Document  json.RawMessage `json:"document,omitempty"` // absent on a delete or an outcome
	Origin    string          `json:"origin"`
	Version   string          `json:"version"`
	Base      string          `json:"base,omitempty"`
	TS        int64           `json:"ts"`
	Tentative bool            `json:"tentative,omitempty"`
	Outcome   string          `json:"outcome,omitempty"` // op "outcome": confirmed, merged, lost, rejected
	Reason    string          `json:"reason,omitempty"`
	Policy    string          `json:"policy,omitempty"`   // hub: the policy that produced the version
	Resolver  string          `json:"resolver,omitempty"` // hub: the resolver version that decided
	Resolves  string          `json:"resolves,omitempty"` // hub: the version a resolution settled
	ClampedTS int64           `json:"clampedTs,omitempty"`
}

// Position is the record's place in its feed: the seq on an edge, the LSN
// on the hub.
func (c *Change) Position() int64 {
	if c.Seq > 0 {
		return c.Seq
	}
	return c.LSN
}

// ChangePage is a page of a change feed.
type ChangePage struct {
	Changes []Change
	// Next is the position to read on from (ChangesOptions.Since).
	Next int64
}

// Conflict statuses and kinds.
const (
	StatusUnresolved = "unresolved"
	StatusResolved   = "resolved"
)

// Conflict is a record of a conflicts feed.
type Conflict struct {
	ID        int64         `json:"id"`
	Seq       int64         `json:"seq"`
	Kind      string        `json:"kind"` // insert, replace, delete
	Status    string        `json:"status"`
	Container string        `json:"container"`
	DocID     string        `json:"docId"`
	PK        string        `json:"pk"`
	Policy    string        `json:"policy"`
	Loser     string        `json:"loser"` // incoming or existing
	WinnerLSN int64         `json:"winnerLsn"`
	Reason    string        `json:"reason"`
	Resolver  string        `json:"resolver,omitempty"`
	CreatedAt int64         `json:"createdAt"`
	Incoming  *ConflictSide `json:"incoming"`
	Existing  *ConflictSide `json:"existing"`
	Base      *ConflictSide `json:"base"` // nil: no common ancestor
}

// ConflictSide is one version in a conflict.
type ConflictSide struct {
	Version   string          `json:"version"`
	Origin    string          `json:"origin"`
	TS        int64           `json:"ts"`
	Deleted   bool            `json:"deleted"`
	Document  json.RawMessage `json:"document"`
	ClampedTS int64           `json:"clampedTs,omitempty"`
}

// ConflictPage is a page of a conflicts feed.
type ConflictPage struct {
	Conflicts []Conflict
	Next      int64 // ConflictsOptions.After for the next page
}

// Resolution settles a conflict: Keep "existing" or "incoming", or a
// Document to confirm instead.
type Resolution struct {
	Keep     string          `json:"keep,omitempty"`
	Document json.RawMessage `json:"document,omitempty"`
}

// Resolved is the answer to a resolution: the version it confirmed (LSN; 0
// when it kept the existing one).
type Resolved struct {
	ID     int64  `json:"id"`
	LSN    int64  `json:"lsn"`
	Status string `json:"status"`
}

// ItemVersion is one version the hub has of an item.
type ItemVersion struct {
	Version   string          `json:"version"`
	Op        string          `json:"op"`
	Origin    string          `json:"origin"`
	TS        int64           `json:"ts"`
	Base      string          `json:"base,omitempty"`
	Confirmed bool            `json:"confirmed"`
	LSN       int64           `json:"lsn,omitempty"`
	CRTS      int64           `json:"crts,omitempty"`
	Outcome   string          `json:"outcome,omitempty"`
	Reason    string          `json:"reason,omitempty"`
	Policy    string          `json:"policy,omitempty"`
	Resolver  string          `json:"resolver,omitempty"`
	Resolves  string          `json:"resolves,omitempty"`
	Document  json.RawMessage `json:"document"`
}

// ScopeEntry is a part of an edge's scope: a container, and optionally
// only some of its partition key values.
type ScopeEntry struct {
	Container     string   `json:"container"`
	PartitionKeys []string `json:"partitionKeys,omitempty"`
}

// RegisteredEdge is the answer to an edge registration. Token is shown this
// once: the hub keeps only its hash.
type RegisteredEdge struct {
	Name  string       `json:"name"`
	Scope []ScopeEntry `json:"scope"`
	Token string       `json:"token"`
}

// Edge is a registered edge as the hub lists it.
type Edge struct {
	Name            string       `json:"name"`
	Scope           []ScopeEntry `json:"scope"`
	CreatedAt       int64        `json:"createdAt"`
	NodeID          string       `json:"nodeId"`
	Online          bool         `json:"online"`
	LastSeen        int64        `json:"lastSeen"`
	AckedLSN        int64        `json:"ackedLsn"`
	Lag             int64        `json:"lag"`
	Pending         int64        `json:"pending"`
	ClockSkew       int64        `json:"clockSkew"`
	ClockMeasuredAt int64        `json:"clockMeasuredAt"`
	Clamped         int64        `json:"clamped"`
	ClockSuspect    bool         `json:"clockSuspect"`
}

// Resolver is an uploaded resolver version with its call statistics.
type Resolver struct {
	Name       string        `json:"name"`
	Version    int           `json:"version"`
	SHA256     string        `json:"sha256"`
	Size       int           `json:"size"`
	UploadedAt int64         `json:"uploadedAt"`
	Stats      ResolverStats `json:"stats"`
}

// ResolverStats are a resolver version's calls, failures by reason, and
// the p50 and p99 of its recent call times.
type ResolverStats struct {
	Calls     int64            `json:"calls"`
	Failures  map[string]int64 `json:"failures"`
	P50Micros float64          `json:"p50Micros"`
	P99Micros float64          `json:"p99Micros"`
}

// TryRequest runs a resolver on a recorded conflict (Version 0: the
// newest).
type TryRequest struct {
	Container string `json:"container"`
	Conflict  int64  `json:"conflict"`
	Version   int    `json:"version,omitempty"`
}

// TryResult is what a resolver decided when tried; nothing was applied.
type TryResult struct {
	Resolver string `json:"resolver"`
	Decision *struct {
		Action   string          `json:"action"`
		Document json.RawMessage `json:"document,omitempty"`
		Reason   string          `json:"reason,omitempty"`
	} `json:"decision"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	TimeMicros float64 `json:"timeMicros"`
}

// EdgeStatus is an edge node's GET /api/v1/status.
type EdgeStatus struct {
	NodeID          string    `json:"nodeId"`
	Pending         int64     `json:"pending"`
	LastSeq         int64     `json:"lastSeq"`
	Containers      int       `json:"containers"`
	Durability      string    `json:"durability"`
	ConflictSeq     int64     `json:"conflictSeq"`
	ClockOffset     int64     `json:"clockOffset"`
	ClockRTT        int64     `json:"clockRtt"`
	ClockMeasuredAt int64     `json:"clockMeasuredAt"`
	LastTS          int64     `json:"lastTs"`
	Connected       bool      `json:"connected"`
	Hub             string    `json:"hub"`
	HubName         string    `json:"hubName,omitempty"`    // the hub's name in its tier, if it tells
	ConnectedAt     time.Time `json:"connectedAt,omitzero"` // when the session with Hub began
	Rehomes         int64     `json:"rehomes"`              // moves from one hub of Hubs to another
	Hubs            []string  `json:"hubs"`
	LastLSN         int64     `json:"lastLsn"`
	HeadLSN         int64     `json:"headLsn"`
	LastError       string    `json:"lastError,omitempty"`
	Offline         bool      `json:"offline"`
	Sync            SyncState `json:"sync"`
	Version         string    `json:"version"`
	UptimeSeconds   int64     `json:"uptimeSeconds"`
}

// SyncState is what an edge learnt from its hub.
type SyncState struct {
	HubID      string       `json:"hubId"`
	Edge       string       `json:"edge"`
	Scope      []ScopeEntry `json:"scope"`
	Mismatched []string     `json:"mismatched"`
	ResumeLSN  int64        `json:"resumeLsn"`
}

// HubStatus is the hub's GET /api/v1/status.
type HubStatus struct {
	HubID               string `json:"hubId"`
	LSN                 int64  `json:"lsn"`
	EdgesOnline         int    `json:"edgesOnline"`
	UnresolvedConflicts int64  `json:"unresolvedConflicts"`
	Containers          int    `json:"containers"`
	Version             string `json:"version"`
	UptimeSeconds       int64  `json:"uptimeSeconds"`
}
