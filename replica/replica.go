// Package replica holds edgesync's domain: containers and their conflict
// policies, items and their versions, change records, document validation and
// the errors every engine returns. The edge engine (replica/edge) and, later,
// the hub engine build on these types; the HTTP layer (web) maps the errors
// defined here to status codes in one place.
//
// replica and its sub-packages import neither echo nor wazero: transports and
// sandboxes plug in through small interfaces declared where they are used.
package replica

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Errors returned by the engines. Callers test them with errors.Is; the
// message of the wrapping error says what exactly was wrong.
var (
	// ErrInvalid marks bad input: a malformed document, a bad id, a bad
	// parameter. It maps to 400.
	ErrInvalid = errors.New("invalid request")
	// ErrTooLarge marks a document or request over a documented size limit.
	// It maps to 413.
	ErrTooLarge = errors.New("too large")
	// ErrNotFound means the item does not exist (or is deleted). 404.
	ErrNotFound = errors.New("not found")
	// ErrContainerNotFound means the container is not defined. 404.
	ErrContainerNotFound = errors.New("container not found")
	// ErrExists means a create found a live item with the same id. 409.
	ErrExists = errors.New("already exists")
	// ErrContainerMismatch means a container definition conflicts with an
	// existing one (for example a different partition key path). 409.
	ErrContainerMismatch = errors.New("container definition conflicts")
	// ErrPreconditionFailed means an If-Match etag did not match. 412.
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrPartitionKeyChange means a write tried to move an existing item to
	// another partition key value. 400: delete and re-create instead.
	ErrPartitionKeyChange = errors.New("partition key value cannot change")
	// ErrForbidden means the write or read is outside the node's scope. 403.
	ErrForbidden = errors.New("forbidden")
	// ErrClosed is returned by an engine after Close.
	ErrClosed = errors.New("replica closed")
)

// Limits that every node enforces. They are part of the contract (docs/architecture.md, Items).
const (
	MaxDocumentSize = 2 << 20 // encoded bytes of an item body
	MaxDepth        = 128     // nesting of objects and arrays
	MaxIDLength     = 1023    // bytes of an item id
	MaxNameLength   = 255     // bytes of a container name
	MaxPageSize     = 1000    // items or changes in one page
	DefaultPageSize = 100
)

// Conflict policy modes (docs/architecture.md, Conflicts).
const (
	ModeLWW    = "lww"
	ModeMerge  = "merge"
	ModeCustom = "custom"
	ModeManual = "manual"
)

// defaultLWWPath is the path LWW compares when a policy names none.
const defaultLWWPath = "/_ts"

// ConflictPolicy says how the hub resolves conflicting versions of an item in
// a container.
type ConflictPolicy struct {
	Mode     string `json:"mode"`
	Path     string `json:"path,omitempty"`     // lww: numeric path compared
	Resolver string `json:"resolver,omitempty"` // custom: resolver name
	// ResolverVersion pins a version of the resolver; 0 runs the newest
	// one uploaded.
	ResolverVersion int `json:"resolverVersion,omitempty"`
}

// Normalize fills defaults and checks the policy.
func (p ConflictPolicy) Normalize() (ConflictPolicy, error) {
	if p.Mode == "" {
		p.Mode = ModeLWW
	}
	switch p.Mode {
	case ModeLWW:
		if p.Path == "" {
			p.Path = defaultLWWPath
		}
		if _, err := parsePath(p.Path); err != nil {
			return p, fmt.Errorf("%w: conflictPolicy.path %q: %v", ErrInvalid, p.Path, err)
		}
		if p.Resolver != "" {
			return p, fmt.Errorf("%w: conflictPolicy.resolver is only valid with mode %q", ErrInvalid, ModeCustom)
		}
	case ModeMerge, ModeManual:
		if p.Path != "" || p.Resolver != "" {
			return p, fmt.Errorf("%w: conflictPolicy mode %q takes neither path nor resolver", ErrInvalid, p.Mode)
		}
	case ModeCustom:
		if p.ResolverVersion < 0 {
			return p, fmt.Errorf("%w: conflictPolicy.resolverVersion %d: want a version number, or 0 for the newest", ErrInvalid, p.ResolverVersion)
		}
		if p.Resolver == "" {
			return p, fmt.Errorf("%w: conflictPolicy mode %q needs a resolver name", ErrInvalid, ModeCustom)
		}
		if err := ValidateName(p.Resolver); err != nil {
			return p, fmt.Errorf("%w: conflictPolicy.resolver: %v", ErrInvalid, err)
		}
		if p.Path != "" {
			return p, fmt.Errorf("%w: conflictPolicy.path is only valid with mode %q", ErrInvalid, ModeLWW)
		}
	default:
		return p, fmt.Errorf("%w: conflictPolicy.mode %q: want lww, merge, custom or manual", ErrInvalid, p.Mode)
	}
	if p.Mode != ModeCustom && p.ResolverVersion != 0 {
		return p, fmt.Errorf("%w: conflictPolicy.resolverVersion is only valid with mode %q", ErrInvalid, ModeCustom)
	}
	return p, nil
}

// Container is a named set of items with a partition key path and a conflict
// policy.
type Container struct {
	Name           string         `json:"name"`
	PartitionKey   string         `json:"partitionKey"`
	ConflictPolicy ConflictPolicy `json:"conflictPolicy"`
	// IndexingPolicy names the paths a node indexes for queries. A hub
	// keeps it with the definition and sends it to edges, which index
	// those paths.
	IndexingPolicy *IndexingPolicy `json:"indexingPolicy,omitempty"`
}

// Normalize checks a container definition and fills defaults.
func (c Container) Normalize() (Container, error) {
	if err := ValidateName(c.Name); err != nil {
		return c, fmt.Errorf("%w: container name: %v", ErrInvalid, err)
	}
	if c.PartitionKey == "" {
		return c, fmt.Errorf("%w: partitionKey is required (a path such as \"/territory\")", ErrInvalid)
	}
	segs, err := parsePath(c.PartitionKey)
	if err != nil {
		return c, fmt.Errorf("%w: partitionKey %q: %v", ErrInvalid, c.PartitionKey, err)
	}
	if isSystemProperty(segs[0]) {
		return c, fmt.Errorf("%w: partitionKey %q: system properties cannot be partition keys", ErrInvalid, c.PartitionKey)
	}
	p, err := c.ConflictPolicy.Normalize()
	if err != nil {
		return c, err
	}
	c.ConflictPolicy = p
	ip, err := c.IndexingPolicy.normalize()
	if err != nil {
		return c, err
	}
	c.IndexingPolicy = ip
	return c, nil
}

// ValidateName checks a container or resolver name: 1..255 bytes of ASCII
// letters, digits, '-', '_' and '.', not starting with '.'.
func ValidateName(name string) error {
	if name == "" {
		return errors.New("empty")
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("%d bytes, limit %d", len(name), MaxNameLength)
	}
	if name[0] == '.' {
		return fmt.Errorf("%q starts with '.'", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			continue
		}
		return fmt.Errorf("%q: character %q not allowed (use letters, digits, '-', '_', '.')", name, c)
	}
	return nil
}

// parsePath splits a JSON-pointer-like path ("/a/b") into its segments,
// unescaping "~1" to "/" and "~0" to "~".
func parsePath(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") || len(p) < 2 {
		return nil, errors.New("must start with '/' and name a property")
	}
	parts := strings.Split(p[1:], "/")
	if len(parts) > 8 {
		return nil, errors.New("at most 8 segments")
	}
	for i, s := range parts {
		if s == "" {
			return nil, errors.New("empty segment")
		}
		s = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
		parts[i] = s
	}
	return parts, nil
}

// Ops of a change record.
const (
	OpCreate  = "create"
	OpReplace = "replace"
	OpDelete  = "delete"
)

// Item is one version of an item as a node stores it: the user's body without
// system properties, plus the system properties kept beside it.
type Item struct {
	Container string
	ID        string
	PK        string
	Body      []byte // the JSON object without system properties; nil for a tombstone
	Version   string // globally unique version id: origin node + counter
	Base      string // the version this one was written over; "" for none
	Origin    string // node id that accepted this version
	TS        int64  // _ts: epoch seconds at the accepting node
	LSN       int64  // _lsn: hub log position; 0 while tentative
	CRTS      int64  // _crts: hub confirmation time; 0 while tentative
	Tentative bool
	Deleted   bool
}

// ETag returns the item's _etag: an opaque quoted string, new for every version.
func (it *Item) ETag() string { return ETagOf(it.Version) }

// ETagOf returns the etag of a version id.
func ETagOf(version string) string { return `"` + version + `"` }

// etagListHas reports whether an If-Match header value (one etag or a comma
// separated list) names etag. Weak etags never match (RFC 9110 strong
// comparison).
func etagListHas(header, etag string) bool {
	for part := range strings.SplitSeq(header, ",") {
		if strings.TrimSpace(part) == etag {
			return true
		}
	}
	return false
}

// AppendJSON appends the item as clients see it: the body with the system
// properties spliced in (no re-encoding of the body).
func (it *Item) AppendJSON(dst []byte) []byte {
	return AppendWithSystem(dst, it.Body, it.systemProps())
}

func (it *Item) systemProps() SystemProps {
	return SystemProps{TS: it.TS, ETag: it.ETag(), LSN: it.LSN, CRTS: it.CRTS, Tentative: it.Tentative}
}

// SystemProps are the properties a node adds to every document it returns.
type SystemProps struct {
	TS        int64
	ETag      string
	LSN       int64
	CRTS      int64
	Tentative bool
}

// appendQuoted is strconv.AppendQuote, without its rune decoding for the
// printable ASCII of a version id (an etag is added to every document
// read).
func appendQuoted(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return strconv.AppendQuote(dst, s)
		}
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			dst = append(dst, '\\', c)
		} else {
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// AppendWithSystem appends body (a JSON object as stored) with the system
// properties added before its closing brace.
func AppendWithSystem(dst, body []byte, sp SystemProps) []byte {
	body = trimSpace(body)
	if len(body) < 2 {
		body = []byte("{}")
	}
	inner := trimSpace(body[1 : len(body)-1])
	dst = append(dst, body[:len(body)-1]...)
	if len(inner) > 0 {
		dst = append(dst, ',')
	}
	dst = append(dst, `"_ts":`...)
	dst = strconv.AppendInt(dst, sp.TS, 10)
	dst = append(dst, `,"_etag":`...)
	dst = appendQuoted(dst, sp.ETag)
	if sp.LSN > 0 {
		dst = append(dst, `,"_lsn":`...)
		dst = strconv.AppendInt(dst, sp.LSN, 10)
		dst = append(dst, `,"_crts":`...)
		dst = strconv.AppendInt(dst, sp.CRTS, 10)
	}
	if sp.Tentative {
		dst = append(dst, `,"_tentative":true`...)
	}
	return append(dst, '}')
}

// Change is one record of a change feed: a version or a deletion, in the
// order the node recorded it.
type Change struct {
	Container string          `json:"container,omitempty"` // set by feeds that span containers
	Seq       int64           `json:"seq,omitempty"`       // position in the local feed (edge)
	LSN       int64           `json:"lsn"`                 // hub log position; 0 while tentative
	CRTS      int64           `json:"crts"`                // hub confirmation time; 0 while tentative
	Op        string          `json:"op"`
	ID        string          `json:"id"`
	PK        string          `json:"pk"`
	Document  json.RawMessage `json:"document,omitempty"` // absent on delete
	Origin    string          `json:"origin"`
	Version   string          `json:"version"`
	Base      string          `json:"base,omitempty"`
	TS        int64           `json:"ts"`
	Tentative bool            `json:"tentative,omitempty"`
	// Outcome and Reason are set on an edge's outcome records (op
	// "outcome"): what the hub decided for the version Version, and LSN is
	// the resulting (confirmed, merged) or winning (lost) version's LSN.
	Outcome string `json:"outcome,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Policy is the conflict policy in force when the hub confirmed the
	// version (hub feed).
	Policy string `json:"policy,omitempty"`
	// Resolver is the resolver version ("name@3") that decided the
	// conflict this version resolved (hub feed).
	Resolver string `json:"resolver,omitempty"`
	// Resolves is the version id whose unresolved conflict this version
	// settled (POST .../conflicts/{cid}/resolve).
	Resolves string `json:"resolves,omitempty"`
	// ClampedTS is set when the version's TS was ahead of the hub's clock
	// by more than its tolerance: the hub's receipt time, which conflict
	// decisions took instead of TS (hub feed).
	ClampedTS int64 `json:"clampedTs,omitempty"`
}

// PageLimit checks a page size parameter: 0 means DefaultPageSize.
func PageLimit(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultPageSize, nil
	case n < 0 || n > MaxPageSize:
		return 0, fmt.Errorf("%w: limit %d: want 1..%d", ErrInvalid, n, MaxPageSize)
	}
	return n, nil
}
