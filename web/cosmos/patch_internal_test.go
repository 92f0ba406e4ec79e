package cosmos

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestApplyPatch(t *testing.T) {
	const doc = `{"id":"a","pk":"p","n":1,"f":1.5,"big":9007199254740993,"tags":["x","z"],"o":{"k":1}}`
	tests := []struct {
		name    string
		op      patchOp
		want    string // the document after, or "" with wantErr
		wantErr string
	}{
		{"set a new member", patchOp{Op: "set", Path: "/c", Value: json.RawMessage(`"v"`)}, `"c":"v"`, ""},
		{"add into an array", patchOp{Op: "add", Path: "/tags/1", Value: json.RawMessage(`"y"`)}, `"tags":["x","y","z"]`, ""},
		{"add at the end", patchOp{Op: "add", Path: "/tags/-", Value: json.RawMessage(`"w"`)}, `"tags":["x","z","w"]`, ""},
		{"set an array element", patchOp{Op: "set", Path: "/tags/0", Value: json.RawMessage(`"q"`)}, `"tags":["q","z"]`, ""},
		{"replace nested", patchOp{Op: "replace", Path: "/o/k", Value: json.RawMessage(`2`)}, `"o":{"k":2}`, ""},
		{"remove", patchOp{Op: "remove", Path: "/tags/0"}, `"tags":["z"]`, ""},
		{"incr an integer exactly", patchOp{Op: "incr", Path: "/big", Value: json.RawMessage(`2`)}, `"big":9007199254740995`, ""},
		{"incr a float", patchOp{Op: "incr", Path: "/f", Value: json.RawMessage(`1`)}, `"f":2.5`, ""},
		{"incr a missing member", patchOp{Op: "incr", Path: "/m", Value: json.RawMessage(`3`)}, `"m":3`, ""},
		{"move", patchOp{Op: "move", From: "/n", Path: "/moved"}, `"moved":1`, ""},
		{"replace a missing member", patchOp{Op: "replace", Path: "/nope", Value: json.RawMessage(`1`)}, "", "no property"},
		{"remove a missing member", patchOp{Op: "remove", Path: "/nope"}, "", "no property"},
		{"incr a string", patchOp{Op: "incr", Path: "/id2", Value: json.RawMessage(`"x"`)}, "", "number"},
		{"incr a non-number", patchOp{Op: "incr", Path: "/tags", Value: json.RawMessage(`1`)}, "", "number"},
		{"the id", patchOp{Op: "set", Path: "/id", Value: json.RawMessage(`"b"`)}, "", "cannot be patched"},
		{"the partition key", patchOp{Op: "remove", Path: "/pk"}, "", "cannot be patched"},
		{"a system property", patchOp{Op: "set", Path: "/_ts", Value: json.RawMessage(`1`)}, "", "system properties"},
		{"an index out of range", patchOp{Op: "set", Path: "/tags/5", Value: json.RawMessage(`1`)}, "", "out of range"},
		{"an unknown op", patchOp{Op: "copy", Path: "/x"}, "", "want add"},
		{"a path through a number", patchOp{Op: "set", Path: "/n/x", Value: json.RawMessage(`1`)}, "", "neither"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := decodeNumbers([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			out, err := applyPatch(d, tt.op, "/pk")
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("applyPatch()=%v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("applyPatch()=%v", err)
			}
			b, _ := json.Marshal(out)
			if !strings.Contains(string(b), tt.want) {
				t.Fatalf("applyPatch()=%s, want it to hold %s", b, tt.want)
			}
		})
	}
}
