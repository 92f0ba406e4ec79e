package replica

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// ContainerDef is a container's definition with its partition key path
// parsed.
type ContainerDef struct {
	Def    Container
	PKPath []string
}

// Containers is the in-memory set of container definitions an engine keeps
// beside its containers table. Safe for concurrent use.
type Containers struct {
	mu sync.RWMutex
	m  map[string]*ContainerDef
}

// Get returns a definition or ErrContainerNotFound.
func (s *Containers) Get(name string) (*ContainerDef, error) {
	s.mu.RLock()
	c := s.m[name]
	s.mu.RUnlock()
	if c == nil {
		return nil, fmt.Errorf("%w: %q", ErrContainerNotFound, name)
	}
	return c, nil
}

// Set adds or replaces a normalized definition.
func (s *Containers) Set(c Container) {
	path, _ := parsePath(c.PartitionKey)
	s.mu.Lock()
	if s.m == nil {
		s.m = map[string]*ContainerDef{}
	}
	s.m[c.Name] = &ContainerDef{Def: c, PKPath: path}
	s.mu.Unlock()
}

// List returns every definition, by name.
func (s *Containers) List() []Container {
	s.mu.RLock()
	out := make([]Container, 0, len(s.m))
	for _, c := range s.m {
		out = append(out, c.Def)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Len is the number of containers.
func (s *Containers) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

// Load reads the definitions of a containers table (name, pk_path, policy).
func (s *Containers) Load(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT name, pk_path, policy FROM containers`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var c Container
		var policy string
		if err := rows.Scan(&c.Name, &c.PartitionKey, &policy); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(policy), &c.ConflictPolicy); err != nil {
			return fmt.Errorf("container %s policy: %w", c.Name, err)
		}
		if _, err := parsePath(c.PartitionKey); err != nil {
			return fmt.Errorf("container %s: %w", c.Name, err)
		}
		s.Set(c)
	}
	return rows.Err()
}

// Notifier tells followers that something committed: Changed returns a
// channel closed at the next Wake. Take it before reading, then wait on it,
// and no wake-up is lost; nothing queues. The zero value is ready.
type Notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

// Changed returns a channel closed at the next Wake.
func (n *Notifier) Changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

// Wake closes the current channel.
func (n *Notifier) Wake() {
	n.mu.Lock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
	n.mu.Unlock()
}

// Write kinds, for CheckWrite.
const (
	WriteCreate = iota // create: the id must not be live
	WriteUpsert        // create or replace
	WriteDelete        // delete: the id must be live
)

// Head is what CheckWrite needs of an item's current version.
type Head struct {
	Exists  bool
	Deleted bool
	Version string
	PK      string
}

// CheckWrite applies a write's preconditions to the item's current version
// (docs/architecture.md, Items; docs/api.md): create of a live id is ErrExists, delete of a missing or
// deleted one ErrNotFound, a failed If-Match ErrPreconditionFailed, a new
// partition key value for a live item ErrPartitionKeyChange. pk is the
// write's partition key value ("" for a delete, which takes the item's). It
// returns the change's op and partition key value.
func CheckWrite(kind int, container, id string, cur Head, pk, ifMatch string) (string, string, error) {
	live := cur.Exists && !cur.Deleted
	switch {
	case kind == WriteCreate && live:
		return "", "", fmt.Errorf("%w: item %q in container %q", ErrExists, id, container)
	case kind == WriteDelete && !live:
		return "", "", fmt.Errorf("%w: item %q in container %q", ErrNotFound, id, container)
	case kind == WriteDelete:
		pk = cur.PK
	}
	if ifMatch != "" {
		if !live {
			return "", "", fmt.Errorf("%w: If-Match %s but item %q does not exist", ErrPreconditionFailed, ifMatch, id)
		}
		if ifMatch != "*" && !etagListHas(ifMatch, ETagOf(cur.Version)) {
			return "", "", fmt.Errorf("%w: If-Match %s, item %q is at %s", ErrPreconditionFailed, ifMatch, id, ETagOf(cur.Version))
		}
	}
	if live && cur.PK != pk {
		return "", "", fmt.Errorf("%w: item %q has partition key value %q, the write has %q; delete it and create it again",
			ErrPartitionKeyChange, id, cur.PK, pk)
	}
	switch {
	case kind == WriteDelete:
		return OpDelete, pk, nil
	case !live:
		return OpCreate, pk, nil
	}
	return OpReplace, pk, nil
}

// PrepareWrite validates a write's input before it reaches the writer: the
// id of a delete, or the body of a create or upsert (ParseDocument) and, when
// id is given (the path's), that the body's id is the same.
func PrepareWrite(kind int, pkPath []string, id string, body []byte) (Document, error) {
	if kind == WriteDelete {
		if err := ValidateID(id); err != nil {
			return Document{}, err
		}
		return Document{ID: id}, nil
	}
	doc, err := ParseDocument(body, pkPath)
	if err != nil {
		return doc, err
	}
	if id != "" && id != doc.ID {
		return doc, fmt.Errorf("%w: body \"id\" %q differs from the id %q in the path", ErrInvalid, doc.ID, id)
	}
	return doc, nil
}

// EncodeContinuation makes an opaque page token from the last id of a page;
// prefix names the issuer so that a token from elsewhere is refused.
func EncodeContinuation(prefix, lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(prefix + lastID))
}

// DecodeContinuation returns the last id a token holds ("" for no token).
func DecodeContinuation(prefix, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || !strings.HasPrefix(string(raw), prefix) {
		return "", fmt.Errorf("%w: continuation token %q is not one this node issued", ErrInvalid, token)
	}
	return strings.TrimPrefix(string(raw), prefix), nil
}

// Page is one page of a listing. Continuation is empty on the last page.
type Page struct {
	Items        []Item
	Continuation string
}

// ListItems runs a page query of items in id order: base selects the items
// and ends in a WHERE clause; ListItems adds the container, the continuation,
// the partition key filter and the limit, and scans the rows with scan. It
// returns the page and the next continuation ("" on the last page).
func ListItems(ctx context.Context, db *sql.DB, base, container string, pk *string, limit int, continuation, prefix string,
	scan func(*sql.Rows) (Item, error)) ([]Item, string, error) {
	limit, err := PageLimit(limit)
	if err != nil {
		return nil, "", err
	}
	after, err := DecodeContinuation(prefix, continuation)
	if err != nil {
		return nil, "", err
	}
	q := base + ` AND i.container = ? AND i.id > ?`
	args := []any{container, after}
	if pk != nil {
		q += ` AND i.pk = ?`
		args = append(args, *pk)
	}
	q += ` ORDER BY i.id LIMIT ?`
	args = append(args, limit+1)
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list items: %w", err)
	}
	return ScanPage(rows, limit, prefix, scan)
}

// ScanPage reads a page of at most limit items from rows, a query asked for
// limit+1, and closes them. The continuation ("" on the last page) is made
// with prefix from the page's last id when there is one row more.
func ScanPage(rows *sql.Rows, limit int, prefix string, scan func(*sql.Rows) (Item, error)) ([]Item, string, error) {
	defer rows.Close()
	var items []Item
	for rows.Next() {
		if len(items) == limit {
			return items, EncodeContinuation(prefix, items[len(items)-1].ID), nil
		}
		it, err := scan(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list items: %w", err)
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list items: %w", err)
	}
	return items, "", nil
}
