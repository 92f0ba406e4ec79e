package hub

import (
	"encoding/json"
	"fmt"

	"github.com/edgesync/edgesync/replica"
)

// DecodeContainer fills c from its stored columns: the conflict policy as
// JSON, and the indexing policy as JSON or "" for none. Stores call it when
// they read their definitions.
func DecodeContainer(c *replica.Container, policy, indexing string) error {
	if err := json.Unmarshal([]byte(policy), &c.ConflictPolicy); err != nil {
		return fmt.Errorf("container %s policy: %w", c.Name, err)
	}
	if indexing != "" {
		var ip replica.IndexingPolicy
		if err := json.Unmarshal([]byte(indexing), &ip); err != nil {
			return fmt.Errorf("container %s indexing policy: %w", c.Name, err)
		}
		c.IndexingPolicy = &ip
	}
	n, err := c.Normalize()
	if err != nil {
		return fmt.Errorf("container %s: %w", c.Name, err)
	}
	*c = n
	return nil
}

// ScanContainers reads the definitions from rows selecting
// (name, pk_path, policy, indexing) from the containers table, decoding each
// with DecodeContainer. The caller closes rows.
func ScanContainers(rows Rows) ([]replica.Container, error) {
	var out []replica.Container
	for rows.Next() {
		var c replica.Container
		var policy, indexing string
		if err := rows.Scan(&c.Name, &c.PartitionKey, &policy, &indexing); err != nil {
			return nil, fmt.Errorf("read containers: %w", err)
		}
		if err := DecodeContainer(&c, policy, indexing); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ScanItemVersions reads the versions of an item from rows selecting
// version, op, origin, ts, base, confirmed, lsn, crts, outcome, reason,
// policy, resolver, resolves, body and the store's order key (the query's
// own ordering column, read and dropped). A delete carries no document.
// The caller closes rows.
func ScanItemVersions(rows Rows) ([]ItemVersion, error) {
	out := []ItemVersion{}
	for rows.Next() {
		var v ItemVersion
		var body []byte
		var order int64
		if err := rows.Scan(&v.Version, &v.Op, &v.Origin, &v.TS, &v.Base, &v.Confirmed, &v.LSN, &v.CRTS, &v.Outcome, &v.Reason,
			&v.Policy, &v.Resolver, &v.Resolves, &body, &order); err != nil {
			return nil, fmt.Errorf("read versions: %w", err)
		}
		if v.Op != replica.OpDelete {
			v.Document = body
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
