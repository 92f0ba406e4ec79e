package cosmos

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/edgesync/edgesync/replica"
)

// containerName maps a Cosmos database and container onto the edgesync
// container "db.coll". A database id may not contain '.', so the mapping is
// one to one: the first '.' of a container name separates the two.
func containerName(db, coll string) (string, error) {
	if err := checkDatabaseID(db); err != nil {
		return "", err
	}
	name := db + "." + coll
	if err := replica.ValidateName(coll); err != nil {
		return "", fmt.Errorf("%w: container id: %v", replica.ErrInvalid, err)
	}
	if err := replica.ValidateName(name); err != nil {
		return "", fmt.Errorf("%w: database and container ids together (%q): %v", replica.ErrInvalid, name, err)
	}
	return name, nil
}

// checkDatabaseID checks a Cosmos database id: an edgesync name without '.'.
func checkDatabaseID(db string) error {
	if err := replica.ValidateName(db); err != nil {
		return fmt.Errorf("%w: database id: %v", replica.ErrInvalid, err)
	}
	if strings.Contains(db, ".") {
		return fmt.Errorf("%w: database id %q: '.' separates the database from the container in edgesync's container names; use letters, digits, '-' and '_'", replica.ErrInvalid, db)
	}
	return nil
}

// splitName is containerName's inverse; ok is false for a container that no
// Cosmos database holds (its name has no '.').
func splitName(name string) (db, coll string, ok bool) {
	db, coll, ok = strings.Cut(name, ".")
	return db, coll, ok && db != "" && coll != ""
}

// Cosmos conflict resolution modes.
const (
	cosmosLWW    = "LastWriterWins"
	cosmosCustom = "Custom"
)

// conflictResolutionPolicy is a container's policy as Cosmos DB states it.
type conflictResolutionPolicy struct {
	Mode      string `json:"mode"`
	Path      string `json:"conflictResolutionPath"`
	Procedure string `json:"conflictResolutionProcedure"`
}

// toPolicy maps a Cosmos policy onto edgesync's: LastWriterWins with a path
// is lww on that path; Custom with a procedure is custom with the resolver
// the procedure's last path segment names (a wasm resolver uploaded to the
// hub under that name); Custom without one is manual.
func toPolicy(p *conflictResolutionPolicy) (replica.ConflictPolicy, error) {
	if p == nil || p.Mode == "" {
		return replica.ConflictPolicy{Mode: replica.ModeLWW, Path: pathOrTS(p)}, nil
	}
	switch strings.ToLower(p.Mode) {
	case strings.ToLower(cosmosLWW):
		if p.Procedure != "" {
			return replica.ConflictPolicy{}, fmt.Errorf("%w: conflictResolutionProcedure is only valid with mode Custom", replica.ErrInvalid)
		}
		return replica.ConflictPolicy{Mode: replica.ModeLWW, Path: pathOrTS(p)}, nil
	case strings.ToLower(cosmosCustom):
		if p.Path != "" {
			return replica.ConflictPolicy{}, fmt.Errorf("%w: conflictResolutionPath is only valid with mode LastWriterWins", replica.ErrInvalid)
		}
		if p.Procedure == "" {
			return replica.ConflictPolicy{Mode: replica.ModeManual}, nil
		}
		name := p.Procedure
		if i := strings.LastIndexByte(name, '/'); i >= 0 {
			name = name[i+1:]
		}
		return replica.ConflictPolicy{Mode: replica.ModeCustom, Resolver: name}, nil
	}
	return replica.ConflictPolicy{}, fmt.Errorf("%w: conflictResolutionPolicy.mode %q: want LastWriterWins or Custom", replica.ErrInvalid, p.Mode)
}

func pathOrTS(p *conflictResolutionPolicy) string {
	if p == nil || p.Path == "" {
		return "/_ts"
	}
	return p.Path
}

// fromPolicy states an edgesync policy as Cosmos DB would. merge has no
// Cosmos equivalent: it shows as Custom with the procedure "edgesync:merge"
// (the container's conflictPolicy beside it says exactly what runs).
func fromPolicy(p replica.ConflictPolicy) conflictResolutionPolicy {
	switch p.Mode {
	case replica.ModeCustom:
		return conflictResolutionPolicy{Mode: cosmosCustom, Procedure: p.Resolver}
	case replica.ModeManual:
		return conflictResolutionPolicy{Mode: cosmosCustom}
	case replica.ModeMerge:
		return conflictResolutionPolicy{Mode: cosmosCustom, Procedure: "edgesync:merge"}
	}
	return conflictResolutionPolicy{Mode: cosmosLWW, Path: p.Path}
}

// partitionKeyDef is a container's partition key as Cosmos DB states it.
type partitionKeyDef struct {
	Paths   []string `json:"paths"`
	Kind    string   `json:"kind,omitempty"`
	Version int      `json:"version,omitempty"`
}

// rid makes a resource id: n bytes of a hash of the resource's link, base64.
// Stable across restarts and the same on every node, as an _rid must be for
// the SDKs' continuation tokens of one container to stay valid.
func rid(link string, n int) string {
	h := sha256.Sum256([]byte(link))
	return base64.StdEncoding.EncodeToString(h[:n])
}

// partitionKeyHeader decodes the x-ms-documentdb-partitionkey header: a
// JSON array of one value. edgesync's partition key values are strings;
// ok is false when the header is absent.
func partitionKeyHeader(h string) (pk string, ok bool, err error) {
	if h == "" {
		return "", false, nil
	}
	if len(h) > 4*replica.MaxIDLength {
		return "", false, fmt.Errorf("%w: x-ms-documentdb-partitionkey of %d bytes", replica.ErrInvalid, len(h))
	}
	var vals []json.RawMessage
	if err := json.Unmarshal([]byte(h), &vals); err != nil || len(vals) != 1 {
		return "", false, fmt.Errorf("%w: x-ms-documentdb-partitionkey %q: want a JSON array of one value, such as [\"east\"]", replica.ErrInvalid, h)
	}
	if err := json.Unmarshal(vals[0], &pk); err != nil {
		return "", false, fmt.Errorf("%w: x-ms-documentdb-partitionkey %q: edgesync partition key values are strings", replica.ErrInvalid, h)
	}
	return pk, true, nil
}
