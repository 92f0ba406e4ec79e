package hub

import (
	"context"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/query"
	"github.com/edgesync/edgesync/replica/sqlitestore"
	"github.com/edgesync/edgesync/replica/wire"
)

// Store is everything the hub keeps: containers, items and their versions,
// the log, conflicts, edges (token hashes, node binding, sync state,
// clock), dashboard sessions, resolver modules and the hub's id. The hub
// holds no state of its own that a restart would lose; a Store is the only
// thing a backend implements. replica/hub/sqlitehub is the embedded SQLite
// backend; replica/hub/storetest is the conformance suite every backend
// passes.
//
// Writes run in write transactions (Queue): the store may run several
// callers' jobs in one transaction (group commit), and reports a job as done
// only once its transaction has committed. The store hands out LSNs and
// conflict sequence numbers inside the transaction (Tx.NextLSN, and the
// methods that record conflicts), continuing from what is committed: a
// transaction rolled back gives back every number it took, so the log has
// no gaps, and nothing that numbers the log lives only in a process.
//
// Read methods see committed data only.
type Store interface {
	// Open opens or creates the store. After it, commit is called after
	// every transaction that committed, with the store's new heads, before
	// the jobs' callers return.
	Open(ctx context.Context, commit func(Heads)) error
	// Close finishes the jobs already queued and closes the store.
	Close(ctx context.Context) error
	// Done is closed when the store no longer runs write transactions.
	Done() <-chan struct{}
	// WriterStats are the write path's counters.
	WriterStats() *sqlitestore.WriterStats

	// HubID is the hub's id, generated (with wire.HubNodePrefix) when the
	// store is created.
	HubID(ctx context.Context) (string, error)
	// Heads are the newest committed LSN and conflict sequence number.
	Heads(ctx context.Context) (Heads, error)
	// Containers returns every container definition.
	Containers(ctx context.Context) ([]replica.Container, error)

	// Queue queues fn to run in a write transaction (jobs run in the order
	// they were queued) and returns a function that waits until the
	// transaction has committed and returns fn's error. A job that fails
	// fails alone: if it had written (a Tx method failed), the store undoes
	// its writes and commits the other jobs of its transaction without it.
	// Once queued, a job runs; the wait reports its real outcome even if
	// ctx ends. after, if not nil, runs after the commit, in commit order.
	Queue(ctx context.Context, fn func(ctx context.Context, tx Tx) error, after func()) (func() error, error)
	// Enter and Leave bracket a caller's write from before its preparation
	// to its outcome, so that the store can wait for it to join a group.
	Enter()
	Leave()

	// Item returns an item's current confirmed version (a tombstone
	// included); found is false when the hub never had it.
	Item(ctx context.Context, container, id string) (it replica.Item, found bool, err error)
	// ListItems returns a page of live items in id order (pk, if not nil,
	// selects one partition key) and the continuation of the next page ("" on
	// the last one), made with prefix.
	ListItems(ctx context.Context, container string, pk *string, limit int, continuation, prefix string) ([]replica.Item, string, error)
	// ScanItems calls fn with up to limit live items of a container with an
	// id after after, in id order, read in one read transaction, and
	// returns how many it read. An error from fn ends the scan and is
	// returned as it is.
	ScanItems(ctx context.Context, container, after string, limit int, fn func(replica.Item) error) (int, error)
	// Changes returns up to limit log records of a container after LSN
	// since, in LSN order.
	Changes(ctx context.Context, container string, since int64, limit int) ([]wire.Change, error)
	// LogAfter reads the log records in (after, hi], every one committed, in
	// LSN order, not written by skipOrigin and in scope (nil: everything),
	// examining at most limit records and stopping once the bodies returned
	// reach maxBytes. last is the position covered: the last record
	// examined, or hi once every record up to it was examined.
	LogAfter(ctx context.Context, after, hi int64, limit, maxBytes int, scope []wire.ScopeEntry, skipOrigin string) (out []wire.Change, last int64, err error)
	// ItemVersions returns up to max versions of an item, the newest, oldest
	// first.
	ItemVersions(ctx context.Context, container, id string, max int) ([]ItemVersion, error)
	// ConflictVersion reads a version of the item (container, id) as a
	// conflict shows it: nil if version is "" or not one of that item's.
	ConflictVersion(ctx context.Context, container, id, version string) (*ConflictVersion, error)

	// Conflicts returns up to limit conflicts of a container with an id
	// after after (status "" for any), by id, with their versions.
	Conflicts(ctx context.Context, container, status string, after int64, limit int) ([]Conflict, error)
	// ConflictsAfter returns the conflicts with a sequence number in
	// (after, head], examining at most limit of them, in scope, with their
	// versions, up to about maxBytes of documents (at least one record);
	// last is the sequence number covered.
	ConflictsAfter(ctx context.Context, after, head int64, limit, maxBytes int, scope []wire.ScopeEntry) (out []Conflict, last int64, err error)
	// ConflictSides returns a recorded conflict's item and version ids.
	ConflictSides(ctx context.Context, container string, cid int64) (ConflictSides, bool, error)
	// IndexedPaths returns the paths of a container's indexing policy
	// whose index is built, in policy order.
	IndexedPaths(ctx context.Context, container string) ([]string, error)
	// IndexesToBuild returns the containers with an indexed path not yet
	// built, by name.
	IndexesToBuild(ctx context.Context) ([]string, error)
	// IndexScan calls fn with up to limit live items of a container that
	// scan s selects, each with its position in the index, after position
	// after (nil: from the start), read in one read transaction with their
	// index entries. They come in the index's order (type rank, value, id)
	// or, for s.Order -1, by type rank and value descending, then id. An
	// error from fn ends the scan and is returned as it is.
	IndexScan(ctx context.Context, container string, s *query.IndexScan, after *IndexPos, limit int, fn func(replica.Item, IndexPos) error) (int, error)
	// IndexIDs returns the ids of the live items scan s selects, in no
	// particular order, or all false when there are more than max.
	IndexIDs(ctx context.Context, container string, s *query.IndexScan, max int) (ids []string, all bool, err error)
	// ItemsByID calls fn with the live items of a container among ids (at
	// most QueryChunk), in id order, read in one read transaction.
	ItemsByID(ctx context.Context, container string, ids []string, fn func(replica.Item) error) error
	// CountItems counts a container's live items.
	CountItems(ctx context.Context, container string) (int64, error)
	// CountUnresolved counts the unresolved conflicts of a container, or
	// of all of them for "".
	CountUnresolved(ctx context.Context, container string) (int64, error)

	// EdgeByTokenHash returns the edge whose token has this SHA-256 (hex).
	EdgeByTokenHash(ctx context.Context, hash string) (EdgeRecord, bool, error)
	// Edges lists the registered edges by name, with their stored state.
	Edges(ctx context.Context) ([]EdgeRecord, error)
	// ClampedTotal sums the edges' clamped counts.
	ClampedTotal(ctx context.Context) (int64, error)

	// Session returns a dashboard session by the SHA-256 (hex) of its id.
	Session(ctx context.Context, idHash string) (binding string, expiresMs int64, found bool, err error)

	// Resolvers returns every stored resolver version with its module and
	// saved call counts, by name then version.
	Resolvers(ctx context.Context) ([]StoredResolver, error)
}

// Heads are a store's newest committed positions.
type Heads struct {
	LSN  int64 // the log's
	Cseq int64 // the conflicts feed's
}

// Tx is a write transaction, used only inside the job it was given to.
// A method that fails after writing returns an error the job must return
// (the store then undoes the job); an error before any write leaves the
// transaction usable. A backend may keep writes and send them later (with
// a read, or before the commit): one that fails then fails the job that
// made it, alone, as if it had failed at once.
type Tx interface {
	// NextLSN hands out the next log position of this transaction. A job
	// takes a number only to write with it at once: it then either appends
	// it to the log or fails with the error of a write, which undoes it.
	NextLSN(ctx context.Context) (int64, error)
	// Try runs fn; if it fails, everything fn wrote and every number it
	// took is undone (the transaction stays usable) and its error
	// returned.
	Try(ctx context.Context, fn func() error) error

	// Prefetch names the items (Head, CreateItem), versions (Outcome,
	// InsertVersion) and the node, if not "", whose push order (PushOrder)
	// the job is about to read or store, so that a backend whose every
	// read is a round trip to a server reads them all at once. It changes
	// no answer of the other methods; a backend may do nothing. An error
	// is one of a write (the job must return it).
	Prefetch(ctx context.Context, items []ItemKey, versions []string, node string) error

	// ContainerPK returns a container's partition key path.
	ContainerPK(ctx context.Context, name string) (pk string, found bool, err error)
	// PutContainer stores a definition: its conflict policy as JSON, and
	// its indexing policy as JSON or "" for none. Paths the indexing policy
	// no longer lists lose their index at once; new ones are added not yet
	// built (BuildIndex).
	PutContainer(ctx context.Context, name, pk, policy, indexing string, at int64) error

	// Outcome returns the outcome a version got when it was pushed.
	Outcome(ctx context.Context, version string) (PriorOutcome, bool, error)
	// Head returns an item's current version.
	Head(ctx context.Context, container, id string) (ItemHead, bool, error)
	// Version returns a version of the item (container, id); found is
	// false when version is not one of that item's.
	Version(ctx context.Context, container, id, version string) (StoredVersion, bool, error)
	// VersionBase is the version a version was written over ("" for none
	// or an unknown version).
	VersionBase(ctx context.Context, version string) (string, error)
	// CreateItem makes a new item current at a new LSN, if the hub has no
	// item (container, id); created is false (and no LSN taken) if it has.
	CreateItem(ctx context.Context, container, id, pk, version string) (lsn int64, created bool, err error)
	// AppendLog appends a confirmed version to the log.
	AppendLog(ctx context.Context, e LogRecord) error
	// SetItem makes e's version the item's current one; samePK says the
	// item exists with partition key e.PK.
	SetItem(ctx context.Context, e LogRecord, samePK bool) error
	// InsertVersion stores a version; a version id stored before is an
	// error (at once, or when the write is sent; see Tx).
	InsertVersion(ctx context.Context, v VersionRecord) error
	// SetOutcome records the outcome a stored version has now.
	SetOutcome(ctx context.Context, version, outcome string, lsn int64, reason string) error
	// RecordClamp records that a pushed version (and its log record at
	// lsn, if lsn > 0) was decided at time at instead of its _ts, and
	// counts it against the edge of node nodeID.
	RecordClamp(ctx context.Context, nodeID, version string, lsn, at int64) error

	// BuildIndex indexes, for a container's paths not yet built, up to
	// limit of its live items with an id after after, and returns the last
	// id it indexed and how many. Once no item is left (last is ""), it
	// marks those paths built. Writes keep the index of every path of the
	// policy in step as they are made, built or not.
	BuildIndex(ctx context.Context, container, after string, limit int) (last string, n int, err error)
	// PushOrder returns the push order of node nodeID (the zero PushOrder
	// for a node never stored).
	PushOrder(ctx context.Context, nodeID string) (PushOrder, error)
	// SetPushOrder stores the push order of node nodeID.
	SetPushOrder(ctx context.Context, nodeID string, o PushOrder) error

	// InsertConflict records a conflict under the next conflict sequence
	// number and returns its id.
	InsertConflict(ctx context.Context, c ConflictRecord) (cid int64, err error)
	// ConflictToSettle returns a conflict's item, partition key, status and
	// incoming version.
	ConflictToSettle(ctx context.Context, container string, cid int64) (c ConflictSides, pk, status string, found bool, err error)
	// SettleConflict marks a conflict resolved under the next conflict
	// sequence number, appending note to its reason and, if winnerLSN > 0,
	// recording the LSN that settled it.
	SettleConflict(ctx context.Context, cid, winnerLSN int64, note string) error

	// InsertEdge registers an edge; a name registered before is
	// replica.ErrExists (and nothing is written).
	InsertEdge(ctx context.Context, name, tokenHash, scope string, at int64) error
	// DeleteEdge deletes an edge's registration; found is false if there
	// was none.
	DeleteEdge(ctx context.Context, name string) (found bool, err error)
	// EdgeNode returns the node id an edge is bound to ("" for none yet).
	EdgeNode(ctx context.Context, name string) (nodeID string, found bool, err error)
	// EdgeOfNode returns another edge than name bound to nodeID.
	EdgeOfNode(ctx context.Context, nodeID, name string) (other string, found bool, err error)
	// BindEdge records an edge's hello: its node id, outbox size, resume
	// point and when.
	BindEdge(ctx context.Context, name, nodeID string, pending, acked, at int64) error
	// RecordAck stores an edge's applied LSN and its last reported
	// pending count, if it is still bound to nodeID.
	RecordAck(ctx context.Context, name, nodeID string, pending, acked, at int64) error
	// RecordClock stores an edge's measured clock skew.
	RecordClock(ctx context.Context, name string, skewMs, at int64) error

	// CreateSession stores a dashboard session, after deleting the expired
	// ones and the oldest beyond max-1.
	CreateSession(ctx context.Context, idHash, binding string, nowMs, expiresMs int64, max int) error
	// DeleteSession deletes a session if there is one.
	DeleteSession(ctx context.Context, idHash string) error

	// InsertResolver stores a resolver version and its module.
	InsertResolver(ctx context.Context, v ResolverVersion, wasm []byte) error
	// SaveResolverCounts stores a resolver version's call counts (failures
	// by reason, JSON).
	SaveResolverCounts(ctx context.Context, name string, version int, calls int64, failures string) error
}

// ItemKey names an item.
type ItemKey struct {
	Container, ID string
}

// PriorOutcome is what a pushed version got the first time.
type PriorOutcome struct {
	Outcome, Reason string
	LSN, ConflictID int64
	CRTS            int64 // the confirmation time, for a confirmed version
}

// ItemHead is an item's current confirmed version, without its content.
type ItemHead struct {
	PK, Version string
	LSN         int64
	Deleted     bool
}

// StoredVersion is a version's content as stored.
type StoredVersion struct {
	Body      []byte
	Op        string
	Origin    string
	TS        int64
	ClampedTS int64
}

// PushOrder is what the hub keeps of the order of an edge node's pushed
// versions: the counters of their ids ("<node id>-<counter>") order the
// node's writes.
type PushOrder struct {
	// Held is the counter of the first version of the node not decided
	// because it was pushed before the version it was written over (0 for
	// none): the node's versions after it wait until it is pushed again.
	Held int64
	// HeldAt is when it was held (unix seconds).
	HeldAt int64
}

// LogRecord is a confirmed version as the log records it.
type LogRecord struct {
	LSN                                  int64
	Container, ID, PK, Op, Version, Base string
	Origin                               string
	TS, CRTS                             int64
	Policy                               string
	Resolver, Resolves                   string
	Deleted                              bool
}

// VersionRecord is a version as stored, with the outcome it got.
type VersionRecord struct {
	Version, Container, ID, PK, Op, Base, Origin string
	TS                                           int64
	Body                                         []byte
	Outcome, Reason                              string
	LSN, ConflictID                              int64
}

// ConflictRecord is a conflict as recorded.
type ConflictRecord struct {
	Container, DocID, PK, Kind, Status, Policy, Loser string
	Incoming, Existing, Base                          string
	WinnerLSN                                         int64
	Reason                                            string
	CreatedAt                                         int64
	Resolver                                          string
}

// ConflictSides names a conflict's item and versions.
type ConflictSides struct {
	Kind, DocID, Incoming, Existing, Base string
}

// EdgeRecord is an edge as stored.
type EdgeRecord struct {
	Name, TokenHash string
	Scope           []wire.ScopeEntry
	CreatedAt       int64
	NodeID          string
	LastSeen        int64
	AckedLSN        int64
	Pending         int64
	ClockSkew       int64
	ClockMeasuredAt int64
	Clamped         int64
	// Hub is the tier hub the edge is connected to ("" for none, and
	// always on a hub alone on its store, which knows its own sessions).
	Hub string
}

// StoredResolver is a stored resolver version with its module and saved
// call counts (failures by reason, JSON).
type StoredResolver struct {
	ResolverVersion
	Wasm     []byte
	Calls    int64
	Failures string
}

// IndexPos is a position in an index: an indexed value (nil for null, a
// bool, a float64 or a string) and an item id.
type IndexPos struct {
	Value any
	ID    string
}

// IndexRank is the type rank an index orders a value by before the value
// itself (as ORDER BY does): 1 null, 2 boolean, 3 number, 4 string; 0 for
// a value no index holds (an array or an object).
func IndexRank(v any) int64 {
	switch v.(type) {
	case nil:
		return 1
	case bool:
		return 2
	case float64:
		return 3
	case string:
		return 4
	}
	return 0
}
