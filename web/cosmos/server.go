// Package cosmos serves the subset of the Azure Cosmos DB REST API that the
// official SDKs (@azure/cosmos, azcosmos) need, over an edge replica or a
// hub: an app written for Cosmos DB runs against an edgesync node unchanged,
// offline on an edge. docs/cosmos.md has the mapping and the compatibility
// table.
//
// Requests are signed with a master key as Cosmos DB's are (auth.go). A
// Cosmos database and container map onto the edgesync container "db.coll"
// (mapping.go); items, queries, the change feed and the conflicts feed are
// the node's own, reached through Engine.
package cosmos

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/web"
)

// Bounds of request bodies other than items (items: replica.MaxDocumentSize).
const (
	maxQueryBody     = 1 << 20
	maxPatchBody     = 1 << 20
	maxResourceBody  = 64 << 10 // a database or container definition
	maxPatchOps      = 100      // operations in one patch, as Cosmos DB allows
	maxDatabases     = 1000     // databases without containers kept in memory
	defaultPageItems = 100
)

// Config configures a Server.
type Config struct {
	Engine Engine
	Key    Key
	Logger *slog.Logger
	// Now is the clock requests' dates are checked against; default
	// time.Now.
	Now func() time.Time
}

// Server serves the Cosmos DB REST API over an Engine.
type Server struct {
	e   Engine
	key Key
	log *slog.Logger
	now func() time.Time

	// createMu serializes creating databases and containers, so that of
	// two creates of one id, one is 201 and the other 409 (a container
	// definition is otherwise written over, not refused). Lock order:
	// createMu, then mu.
	createMu sync.Mutex
	mu       sync.Mutex
	dbs      map[string]int64 // databases created here without a container yet: id -> _ts
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{e: cfg.Engine, key: cfg.Key, log: cfg.Logger, now: cfg.Now, dbs: map[string]int64{}}
}

// Errors of the Cosmos endpoint, mapped to statuses by web.ErrorStatus
// through the domain errors they wrap.
var (
	errUnauthorized = fmt.Errorf("%w: the request is not signed with this node's Cosmos key", hub.ErrUnauthorized)
	errNotSupported = fmt.Errorf("%w: not supported by edgesync's Cosmos endpoint (docs/cosmos.md)", replica.ErrInvalid)
)

// cosmosError is the body of every error response, as Cosmos DB shapes it.
type cosmosError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// request is one request in flight.
type request struct {
	w   http.ResponseWriter
	r   *http.Request
	res resource
	ctx context.Context
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := &request{w: w, r: r, ctx: r.Context()}
	h := w.Header()
	h.Set("x-ms-activity-id", newUUID())
	h.Set("x-ms-request-charge", "1")
	h.Set("x-ms-session-token", "0:1#"+strconv.FormatInt(max(s.e.Head(), 1), 10))
	h.Set("x-ms-gatewayversion", "version=2.14.0")
	if err := s.serve(q); err != nil {
		s.writeError(q, err)
	}
}

func (s *Server) serve(q *request) error {
	res, err := parsePath(q.r.URL.EscapedPath())
	if err != nil {
		if errors.Is(err, errUnsupportedResource) {
			// Signed or not, say what is missing: a client needs to know it
			// reached a node without that feature.
			return fmt.Errorf("%w: %v", errNotSupported, err)
		}
		return fmt.Errorf("%w: %v", replica.ErrInvalid, err)
	}
	q.res = res
	date := q.r.Header.Get("x-ms-date")
	if date == "" {
		date = q.r.Header.Get("Date")
	}
	if err := s.key.verify(q.r.Header.Get("Authorization"), q.r.Method, res.typ, res.link, date, s.now()); err != nil {
		return fmt.Errorf("%w: %v", errUnauthorized, err)
	}
	m := q.r.Method
	switch {
	case res.typ == "":
		if m == http.MethodGet {
			return s.account(q)
		}
	case res.typ == typeDatabases && res.feed:
		switch m {
		case http.MethodGet:
			return s.listDatabases(q)
		case http.MethodPost:
			if isQuery(q) {
				return s.queryResources(q, "Databases", s.databaseDocs())
			}
			return s.createDatabase(q)
		}
	case res.typ == typeDatabases:
		switch m {
		case http.MethodGet:
			return s.readDatabase(q)
		case http.MethodDelete:
			return s.deleteDatabase(q)
		}
	case res.typ == typeContainers && res.feed:
		switch m {
		case http.MethodGet:
			return s.listContainers(q)
		case http.MethodPost:
			if isQuery(q) {
				if !s.databaseExists(q.res.db) {
					return fmt.Errorf("%w: database %q", replica.ErrNotFound, q.res.db)
				}
				return s.queryResources(q, "DocumentCollections", s.containerDocs(q.res.db))
			}
			return s.createContainer(q)
		}
	case res.typ == typeContainers:
		switch m {
		case http.MethodGet:
			return s.readContainer(q)
		case http.MethodPut:
			return s.replaceContainer(q)
		case http.MethodDelete:
			return s.deleteContainer(q)
		}
	case res.typ == typePKRanges && res.feed:
		if m == http.MethodGet {
			return s.partitionKeyRanges(q)
		}
	case res.typ == typeItems && res.feed:
		switch m {
		case http.MethodPost:
			if isTrue(q.r.Header.Get("x-ms-cosmos-is-batch-request")) {
				return s.batch(q)
			}
			if isTrue(q.r.Header.Get("x-ms-cosmos-is-query-plan-request")) {
				return s.queryPlan(q)
			}
			if isQuery(q) {
				return s.query(q)
			}
			return s.createItem(q)
		case http.MethodGet:
			if aim := q.r.Header.Get("A-IM"); aim != "" {
				return s.changeFeed(q, aim)
			}
			return s.readItems(q)
		}
	case res.typ == typeItems:
		switch m {
		case http.MethodGet:
			return s.readItem(q)
		case http.MethodPut:
			return s.replaceItem(q)
		case http.MethodPatch:
			return s.patchItem(q)
		case http.MethodDelete:
			return s.deleteItem(q)
		}
	case res.typ == typeConflicts && res.feed:
		if m == http.MethodGet {
			return s.readConflicts(q)
		}
	case res.typ == typeConflicts:
		if m == http.MethodGet {
			return s.readConflict(q)
		}
	}
	return fmt.Errorf("%w: %s on %s", errNotSupported, m, describe(res))
}

func describe(r resource) string {
	if r.typ == "" {
		return "the account"
	}
	if r.feed {
		return "the " + r.typ + " feed"
	}
	return "one of " + r.typ
}

// writeError answers err with its status (web.ErrorStatus) and a Cosmos
// error body, whose code is the status's name ("NotFound").
func (s *Server) writeError(q *request, err error) {
	status, body := web.ErrorStatus(err)
	if status == http.StatusInternalServerError {
		s.log.Error("cosmos request failed", "method", q.r.Method, "path", q.r.URL.Path, "err", err)
	}
	s.writeJSON(q, status, cosmosError{Code: strings.ReplaceAll(http.StatusText(status), " ", ""), Message: body.Message})
}

func (s *Server) writeJSON(q *request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encode cosmos response", "err", err)
		status, b = http.StatusInternalServerError, []byte(`{"code":"InternalServerError","message":"internal error"}`)
	}
	s.writeBody(q, status, b)
}

func (s *Server) writeBody(q *request, status int, b []byte) {
	h := q.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	q.w.WriteHeader(status)
	if q.r.Method != http.MethodHead {
		q.w.Write(b) // the client may be gone; nothing to do about it
	}
}

// readBody reads a request body of at most limit bytes.
func readBody(q *request, limit int64) ([]byte, error) {
	if q.r.ContentLength > limit {
		return nil, fmt.Errorf("%w: body of %d bytes, limit %d", replica.ErrTooLarge, q.r.ContentLength, limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(q.w, q.r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, fmt.Errorf("%w: body over %d bytes", replica.ErrTooLarge, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	return b, nil
}

// pageSize is x-ms-max-item-count: absent or -1 is the default, at most
// replica.MaxPageSize.
func pageSize(q *request) (int, error) {
	v := q.r.Header.Get("x-ms-max-item-count")
	if v == "" || v == "-1" {
		return defaultPageItems, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%w: x-ms-max-item-count %q: want a positive number or -1", replica.ErrInvalid, v)
	}
	return min(n, replica.MaxPageSize), nil
}

func isTrue(v string) bool { return strings.EqualFold(v, "true") }

// isQuery reports whether a POST to a feed is a query.
func isQuery(q *request) bool {
	return isTrue(q.r.Header.Get("x-ms-documentdb-isquery")) || strings.HasPrefix(q.r.Header.Get("Content-Type"), "application/query+json")
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
