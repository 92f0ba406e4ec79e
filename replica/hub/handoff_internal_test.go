package hub

import (
	"encoding/json"
	"testing"

	"github.com/edgesync/edgesync/replica/wire"
)

// FuzzDecodeHandoff: a handed-off push is untrusted input. Whatever the
// body, decoding it returns an error or a push that a push frame would
// carry: a node id, a bounded scope, well-formed versions. The input is
// fed whole and split in two (the second half alone).
func FuzzDecodeHandoff(f *testing.F) {
	valid, err := encodeGob(pushRequest{NodeID: "e0123456789abcdef", Scope: []wire.ScopeEntry{{Container: "c", PartitionKeys: []string{"a"}}},
		Versions: []wire.Version{{Container: "c", ID: "x", Op: "create", Version: "e0123456789abcdef-1", TS: 1, Body: json.RawMessage(`{"id":"x","pk":"a"}`)}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add([]byte{})
	f.Add([]byte("\x07garbage"))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, b := range [][]byte{body, body[len(body)/2:]} {
			req, err := decodeHandoff(b)
			if err != nil {
				continue
			}
			if req.NodeID == "" || len(req.NodeID) > maxNodeID || len(req.Scope) > wire.MaxScopeEntries {
				t.Fatalf("decodeHandoff accepted node %q with %d scope entries", req.NodeID, len(req.Scope))
			}
			if err := wire.CheckPush(req.Versions); err != nil {
				t.Fatalf("decodeHandoff accepted versions that a push frame may not carry: %v", err)
			}
		}
	})
}
