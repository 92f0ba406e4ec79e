package wire

import (
	"errors"
	"fmt"
	"strings"
)

// Node ids. Every node that writes has an id that its version ids start
// with: an edge "e" and 16 lowercase hex digits (generated at its first
// start and kept in its data dir), a hub "h" and 16 hex digits. The
// prefixes keep the two namespaces apart, so that no edge can claim a hub's
// id, and no id holds '-', so that a version id names exactly one node.
const (
	EdgeNodePrefix = "e"
	HubNodePrefix  = "h"
	nodeIDDigits   = 16
)

// ErrBadNodeID is a node id that is not an edge's.
var ErrBadNodeID = errors.New("bad node id")

// CheckEdgeNodeID checks that id has the form of an edge's node id: "e"
// and 16 lowercase hex digits.
func CheckEdgeNodeID(id string) error {
	if len(id) != len(EdgeNodePrefix)+nodeIDDigits || !strings.HasPrefix(id, EdgeNodePrefix) || !isLowerHex(id[len(EdgeNodePrefix):]) {
		return fmt.Errorf("%w: %q: an edge's node id is %q and %d lowercase hex digits", ErrBadNodeID, truncate(id, 40), EdgeNodePrefix, nodeIDDigits)
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// IsVersionOf reports whether version is exactly a version id that node
// nodeID issues: the node id, '-', and a decimal counter without leading
// zeros that fits in an int64 (1..19 digits).
func IsVersionOf(version, nodeID string) bool {
	n, ok := strings.CutPrefix(version, nodeID)
	if !ok || nodeID == "" {
		return false
	}
	n, ok = strings.CutPrefix(n, "-")
	if !ok || len(n) == 0 || len(n) > 19 || n[0] == '0' && len(n) > 1 {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return len(n) < 19 || n <= "9223372036854775807"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
