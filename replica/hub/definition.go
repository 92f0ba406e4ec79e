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
