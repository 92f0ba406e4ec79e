package cosmos

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/edgesync/edgesync/replica"
)

// account answers GET /: the database account, whose one location is this
// endpoint as the client reached it, so that the SDKs send every request
// back here.
func (s *Server) account(q *request) error {
	scheme := "http"
	if q.r.TLS != nil {
		scheme = "https"
	}
	endpoint := scheme + "://" + q.r.Host + "/"
	loc := []map[string]any{{"name": "edgesync", "databaseAccountEndpoint": endpoint}}
	s.writeJSON(q, http.StatusOK, map[string]any{
		"_self":                        "",
		"id":                           "edgesync-" + s.e.Name(),
		"_rid":                         rid("account", 4),
		"media":                        "//media/",
		"addresses":                    "//addresses/",
		"_dbs":                         "//dbs/",
		"writableLocations":            loc,
		"readableLocations":            loc,
		"enableMultipleWriteLocations": false,
		"userReplicationPolicy":        map[string]any{"asyncReplication": false, "minReplicaSetSize": 1, "maxReplicasetSize": 1},
		"userConsistencyPolicy":        map[string]any{"defaultConsistencyLevel": "Session"},
		"systemReplicationPolicy":      map[string]any{"minReplicaSetSize": 1, "maxReplicasetSize": 1},
		"readPolicy":                   map[string]any{"primaryReadCoefficient": 1, "secondaryReadCoefficient": 1},
		"queryEngineConfiguration":     `{"maxSqlQueryInputLength":262144,"maxJoinsPerSqlQuery":5,"maxLogicalAndPerSqlQuery":500,"maxLogicalOrPerSqlQuery":500,"maxUdfRefPerSqlQuery":10,"maxInExpressionItemsCount":16000,"queryMaxInMemorySortDocumentCount":500,"maxQueryRequestTimeoutFraction":0.9,"sqlAllowNonFiniteNumbers":false,"sqlAllowAggregateFunctions":true,"sqlAllowSubQuery":false,"sqlAllowScalarSubQuery":false,"allowNewKeywords":true,"sqlAllowLike":false,"sqlAllowGroupByClause":true,"maxSpatialQueryCells":12,"spatialMaxGeometryPointCount":256,"sqlDisableOptimizationFlags":0,"sqlAllowTop":true,"enableSpatialIndexing":true}`,
	})
	return nil
}

// databases returns every database: those holding containers and those
// created here that hold none yet, sorted.
func (s *Server) databases() []string {
	seen := map[string]bool{}
	for _, c := range s.e.Containers() {
		if db, _, ok := splitName(c.Name); ok {
			seen[db] = true
		}
	}
	s.mu.Lock()
	for db := range s.dbs {
		seen[db] = true
	}
	s.mu.Unlock()
	out := make([]string, 0, len(seen))
	for db := range seen {
		out = append(out, db)
	}
	slices.Sort(out)
	return out
}

func (s *Server) databaseExists(db string) bool {
	return slices.Contains(s.databases(), db)
}

func databaseJSON(db string) map[string]any {
	r := rid("dbs/"+db, 4)
	return map[string]any{"id": db, "_rid": r, "_self": "dbs/" + r + "/", "_etag": `"` + r + `"`, "_colls": "colls/", "_users": "users/", "_ts": 0}
}

// databaseDocs returns every database as JSON, for queries over them.
func (s *Server) databaseDocs() [][]byte {
	var out [][]byte
	for _, db := range s.databases() {
		b, err := json.Marshal(databaseJSON(db))
		if err == nil {
			out = append(out, b)
		}
	}
	return out
}

// containerDocs returns the containers of database db as JSON.
func (s *Server) containerDocs(db string) [][]byte {
	var out [][]byte
	for _, c := range s.e.Containers() {
		if d, _, ok := splitName(c.Name); ok && d == db {
			if b, err := json.Marshal(containerJSON(c)); err == nil {
				out = append(out, b)
			}
		}
	}
	return out
}

func (s *Server) listDatabases(q *request) error {
	list := []any{}
	for _, db := range s.databases() {
		list = append(list, databaseJSON(db))
	}
	q.w.Header().Set("x-ms-item-count", fmt.Sprint(len(list)))
	s.writeJSON(q, http.StatusOK, map[string]any{"_rid": "", "Databases": list, "_count": len(list)})
	return nil
}

func (s *Server) createDatabase(q *request) error {
	body, err := readBody(q, maxResourceBody)
	if err != nil {
		return err
	}
	var def struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &def); err != nil {
		return fmt.Errorf("%w: database definition: %v", replica.ErrInvalid, err)
	}
	if err := checkDatabaseID(def.ID); err != nil {
		return err
	}
	s.createMu.Lock()
	defer s.createMu.Unlock()
	if s.databaseExists(def.ID) {
		return fmt.Errorf("%w: database %q", replica.ErrExists, def.ID)
	}
	s.mu.Lock()
	if len(s.dbs) >= maxDatabases {
		s.mu.Unlock()
		return fmt.Errorf("%w: %d databases without containers; create containers in them first", replica.ErrTooLarge, maxDatabases)
	}
	s.dbs[def.ID] = s.now().Unix()
	s.mu.Unlock()
	s.writeJSON(q, http.StatusCreated, databaseJSON(def.ID))
	return nil
}

func (s *Server) readDatabase(q *request) error {
	if err := checkDatabaseID(q.res.db); err != nil {
		return err
	}
	if !s.databaseExists(q.res.db) {
		return fmt.Errorf("%w: database %q", replica.ErrNotFound, q.res.db)
	}
	s.writeJSON(q, http.StatusOK, databaseJSON(q.res.db))
	return nil
}

// deleteDatabase deletes the items of every container of the database
// (emptyContainer); the containers stay, edgesync containers being defined
// at the hub. A database created here without containers is forgotten.
func (s *Server) deleteDatabase(q *request) error {
	db := q.res.db
	if err := checkDatabaseID(db); err != nil {
		return err
	}
	found := false
	for _, c := range s.e.Containers() {
		if d, _, ok := splitName(c.Name); ok && d == db {
			found = true
			if err := s.emptyContainer(q, c.Name); err != nil {
				return err
			}
		}
	}
	s.mu.Lock()
	_, ok := s.dbs[db]
	delete(s.dbs, db)
	s.mu.Unlock()
	if !ok && !found {
		return fmt.Errorf("%w: database %q", replica.ErrNotFound, db)
	}
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteContainer deletes every live item of the container that the
// caller may write (emptyContainer); the container's definition stays.
func (s *Server) deleteContainer(q *request) error {
	c, err := s.container(q)
	if err != nil {
		return err
	}
	if err := s.emptyContainer(q, c.Name); err != nil {
		return err
	}
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

// Bounds of emptying a container.
const (
	deleteChunk     = 1000    // items deleted per transaction
	maxDeleteRounds = 1 << 20 // chunks per request
)

// emptyContainer deletes the container's live items as ordinary deletes
// (tentative on an edge, synced as any delete; confirmed on a hub), a chunk
// of items at a time in id order, each chunk its own transaction on an edge,
// so that other writes are not held up behind it. Items the node may not
// write (outside an edge's scope) are left.
func (s *Server) emptyContainer(q *request, name string) error {
	cont := ""
	for range maxDeleteRounds {
		p, err := s.e.List(q.ctx, name, "", false, deleteChunk, cont)
		if err != nil {
			return err
		}
		if len(p.Items) > 0 {
			ids := make([]string, len(p.Items))
			for i := range p.Items {
				ids[i] = p.Items[i].ID
			}
			if _, err := s.e.DeleteItems(q.ctx, name, ids); err != nil {
				return fmt.Errorf("delete items of %s: %w", name, err)
			}
		}
		if p.Continuation == "" {
			return nil
		}
		cont = p.Continuation
	}
	return fmt.Errorf("%w: container %s still had items after %d rounds of %d deletes", replica.ErrTooLarge, name, maxDeleteRounds, deleteChunk)
}

// containerJSON states an edgesync container as a Cosmos container, with
// edgesync's own name and conflict policy beside the Cosmos properties.
func containerJSON(c replica.Container) map[string]any {
	db, coll, _ := splitName(c.Name)
	dbRid := rid("dbs/"+db, 4)
	r := rid("dbs/"+db+"/colls/"+coll, 8)
	return map[string]any{
		"id":                       coll,
		"_rid":                     r,
		"_self":                    "dbs/" + dbRid + "/colls/" + r + "/",
		"_etag":                    `"` + r + `"`,
		"_ts":                      0,
		"_docs":                    "docs/",
		"_sprocs":                  "sprocs/",
		"_triggers":                "triggers/",
		"_udfs":                    "udfs/",
		"_conflicts":               "conflicts/",
		"partitionKey":             partitionKeyDef{Paths: []string{c.PartitionKey}, Kind: "Hash", Version: 2},
		"conflictResolutionPolicy": fromPolicy(c.ConflictPolicy),
		"indexingPolicy": map[string]any{"indexingMode": "consistent", "automatic": true,
			"includedPaths": []any{map[string]any{"path": "/*"}}, "excludedPaths": []any{}},
		"geospatialConfig": map[string]any{"type": "Geography"},
		"edgesyncName":     c.Name,
		"conflictPolicy":   c.ConflictPolicy,
	}
}

// containerDef is the body of a container create or replace.
type containerDef struct {
	ID                       string                    `json:"id"`
	PartitionKey             *partitionKeyDef          `json:"partitionKey"`
	ConflictResolutionPolicy *conflictResolutionPolicy `json:"conflictResolutionPolicy"`
}

// toContainer maps a Cosmos container definition in database db onto an
// edgesync container.
func toContainer(db string, body []byte) (replica.Container, error) {
	var def containerDef
	if err := json.Unmarshal(body, &def); err != nil {
		return replica.Container{}, fmt.Errorf("%w: container definition: %v", replica.ErrInvalid, err)
	}
	name, err := containerName(db, def.ID)
	if err != nil {
		return replica.Container{}, err
	}
	pk := "/id"
	if def.PartitionKey != nil {
		if len(def.PartitionKey.Paths) != 1 || strings.EqualFold(def.PartitionKey.Kind, "MultiHash") {
			return replica.Container{}, fmt.Errorf("%w: partitionKey with %d paths (hierarchical partition keys)", errNotSupported, len(def.PartitionKey.Paths))
		}
		pk = def.PartitionKey.Paths[0]
	}
	pol, err := toPolicy(def.ConflictResolutionPolicy)
	if err != nil {
		return replica.Container{}, err
	}
	return replica.Container{Name: name, PartitionKey: pk, ConflictPolicy: pol}, nil
}

func (s *Server) listContainers(q *request) error {
	if !s.databaseExists(q.res.db) {
		return fmt.Errorf("%w: database %q", replica.ErrNotFound, q.res.db)
	}
	list := []any{}
	for _, c := range s.e.Containers() {
		if db, _, ok := splitName(c.Name); ok && db == q.res.db {
			list = append(list, containerJSON(c))
		}
	}
	q.w.Header().Set("x-ms-item-count", fmt.Sprint(len(list)))
	s.writeJSON(q, http.StatusOK, map[string]any{"_rid": rid("dbs/"+q.res.db, 4), "DocumentCollections": list, "_count": len(list)})
	return nil
}

func (s *Server) createContainer(q *request) error {
	if !s.databaseExists(q.res.db) {
		return fmt.Errorf("%w: database %q", replica.ErrNotFound, q.res.db)
	}
	body, err := readBody(q, maxResourceBody)
	if err != nil {
		return err
	}
	c, err := toContainer(q.res.db, body)
	if err != nil {
		return err
	}
	s.createMu.Lock()
	defer s.createMu.Unlock()
	if _, err := s.e.Container(c.Name); err == nil {
		return fmt.Errorf("%w: container %q", replica.ErrExists, c.Name)
	}
	_, def, err := s.e.PutContainer(q.ctx, c)
	if err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.dbs, q.res.db) // it holds a container now
	s.mu.Unlock()
	s.writeJSON(q, http.StatusCreated, containerJSON(def))
	return nil
}

// container returns the edgesync container the request's path names.
func (s *Server) container(q *request) (replica.Container, error) {
	name, err := containerName(q.res.db, q.res.coll)
	if err != nil {
		return replica.Container{}, err
	}
	c, err := s.e.Container(name)
	if err != nil {
		return replica.Container{}, err
	}
	return c, nil
}

func (s *Server) readContainer(q *request) error {
	c, err := s.container(q)
	if err != nil {
		return err
	}
	s.writeJSON(q, http.StatusOK, containerJSON(c))
	return nil
}

// replaceContainer changes a container's conflict policy (its partition key
// cannot change).
func (s *Server) replaceContainer(q *request) error {
	cur, err := s.container(q)
	if err != nil {
		return err
	}
	body, err := readBody(q, maxResourceBody)
	if err != nil {
		return err
	}
	c, err := toContainer(q.res.db, body)
	if err != nil {
		return err
	}
	if c.Name != cur.Name {
		return fmt.Errorf("%w: body id %q differs from the path's %q", replica.ErrInvalid, c.Name, cur.Name)
	}
	c.IndexingPolicy = cur.IndexingPolicy
	_, def, err := s.e.PutContainer(q.ctx, c)
	if err != nil {
		return err
	}
	s.writeJSON(q, http.StatusOK, containerJSON(def))
	return nil
}

// partitionKeyRanges answers the one range every container has: edgesync
// does not split a container's items by partition key.
func (s *Server) partitionKeyRanges(q *request) error {
	c, err := s.container(q)
	if err != nil {
		return err
	}
	if q.r.Header.Get("If-None-Match") != "" && q.r.Header.Get("A-IM") != "" {
		// The ranges' own change feed: they never change.
		q.w.Header().Set("etag", `"1"`)
		q.w.WriteHeader(http.StatusNotModified)
		return nil
	}
	cr := containerJSON(c)["_rid"].(string)
	rng := map[string]any{"_rid": cr, "id": "0", "_etag": `"1"`, "minInclusive": "", "maxExclusive": "FF", "ridPrefix": 0,
		"_self": "dbs/" + rid("dbs/"+q.res.db, 4) + "/colls/" + cr + "/pkranges/0/", "throughputFraction": 1, "status": "online",
		"parents": []string{}, "_ts": 0, "_lsn": 1}
	q.w.Header().Set("etag", `"1"`)
	q.w.Header().Set("x-ms-item-count", "1")
	s.writeJSON(q, http.StatusOK, map[string]any{"_rid": cr, "PartitionKeyRanges": []any{rng}, "_count": 1})
	return nil
}
