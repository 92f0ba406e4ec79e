package wire_test

import (
	"errors"
	"testing"

	"github.com/edgesync/edgesync/replica/wire"
)

func TestCheckEdgeNodeID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		ok   bool
	}{
		{name: "an edge's", id: "e0123456789abcdef", ok: true},
		{name: "a hub's", id: "h0123456789abcdef"},
		{name: "empty", id: ""},
		{name: "prefix only", id: "e"},
		{name: "short", id: "e0123456789abcde"},
		{name: "long", id: "e0123456789abcdef0"},
		{name: "upper case hex", id: "e0123456789ABCDEF"},
		{name: "with a dash", id: "e0123456-89abcdef"},
		{name: "not hex", id: "e0123456789abcdeg"},
		{name: "no prefix", id: "00123456789abcdef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := wire.CheckEdgeNodeID(tt.id)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckEdgeNodeID(%q)=%v, want ok=%v", tt.id, err, tt.ok)
			}
			if err != nil && !errors.Is(err, wire.ErrBadNodeID) {
				t.Fatalf("CheckEdgeNodeID(%q)=%v, want it to wrap ErrBadNodeID", tt.id, err)
			}
		})
	}
}

func TestIsVersionOf(t *testing.T) {
	tests := []struct {
		name, version, node string
		want                bool
	}{
		{name: "counter", version: "a-5", node: "a", want: true},
		{name: "zero", version: "a-0", node: "a", want: true},
		{name: "largest int64", version: "a-9223372036854775807", node: "a", want: true},
		{name: "past int64", version: "a-9223372036854775808", node: "a"},
		{name: "20 digits", version: "a-10000000000000000000", node: "a"},
		{name: "another node's behind the prefix", version: "a-b-5", node: "a"},
		{name: "the node id as a bare prefix", version: "ab-5", node: "a"},
		{name: "no separator", version: "a5", node: "a"},
		{name: "no counter", version: "a-", node: "a"},
		{name: "leading zero", version: "a-05", node: "a"},
		{name: "sign", version: "a-+5", node: "a"},
		{name: "negative", version: "a--5", node: "a"},
		{name: "space", version: "a-5 ", node: "a"},
		{name: "empty node", version: "-5", node: ""},
		{name: "another node", version: "b-5", node: "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wire.IsVersionOf(tt.version, tt.node); got != tt.want {
				t.Fatalf("IsVersionOf(%q, %q)=%v, want %v", tt.version, tt.node, got, tt.want)
			}
		})
	}
}
