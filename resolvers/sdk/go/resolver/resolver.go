// Package resolver is the Go SDK for edgesync conflict resolvers: write a
// function from an Input to an Output, register it in init, and build the
// package main with the standard toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o my.wasm .
//
// The SDK owns the ABI (resolvers/ABI.md): the exports, the input and output
// buffers, and the Go runtime's memory between calls. A resolver never
// touches memory addresses.
//
//	func init() { resolver.Register(resolve) }
//
//	func resolve(in *resolver.Input) resolver.Output {
//		if in.IsTombstone {
//			return resolver.KeepIncoming()
//		}
//		...
//		return resolver.Merge(doc, "why")
//	}
//
//	func main() {}
//
// The same function runs natively in tests: Run decodes an input, calls it
// and encodes the output exactly as the wasm build does.
package resolver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Input is what the hub sends for one conflict (resolvers/ABI.md). Documents
// are raw JSON, as the hub stores them; a delete is the JSON null.
type Input struct {
	Kind        string            `json:"kind"` // insert, replace or delete
	Container   string            `json:"container"`
	ID          string            `json:"id"`
	Incoming    json.RawMessage   `json:"incoming"`
	Existing    json.RawMessage   `json:"existing"`
	Base        json.RawMessage   `json:"base"`
	IsTombstone bool              `json:"isTombstone"`
	Conflicting []json.RawMessage `json:"conflicting"`
}

// IncomingDeleted reports whether the incoming version is a delete.
func (in *Input) IncomingDeleted() bool { return isNull(in.Incoming) }

// ExistingDeleted reports whether the existing version is a delete.
func (in *Input) ExistingDeleted() bool { return isNull(in.Existing) }

// HasBase reports whether the hub sent the common ancestor.
func (in *Input) HasBase() bool { return !isNull(in.Base) }

func isNull(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) == 0 || string(b) == "null"
}

// Output is a resolver's decision.
type Output struct {
	Action   string          `json:"action"` // incoming, existing, merge, delete, defer
	Document json.RawMessage `json:"document,omitempty"`
	Reason   string          `json:"reason,omitempty"`
}

// KeepIncoming confirms the incoming version.
func KeepIncoming() Output { return Output{Action: "incoming"} }

// KeepExisting keeps the existing version.
func KeepExisting() Output { return Output{Action: "existing"} }

// Delete deletes the item.
func Delete(reason string) Output { return Output{Action: "delete", Reason: reason} }

// Defer leaves the conflict to an app or a person, with a reason for the feed.
func Defer(reason string) Output { return Output{Action: "defer", Reason: reason} }

// Merge confirms doc (a JSON object with the item's id and partition key) as
// a new version. doc is a json.RawMessage, []byte, or any value that
// encoding/json can marshal.
func Merge(doc any, reason string) Output {
	var raw []byte
	switch d := doc.(type) {
	case json.RawMessage:
		raw = d
	case []byte:
		raw = d
	default:
		b, err := json.Marshal(doc)
		if err != nil {
			return Defer(fmt.Sprintf("resolver could not encode its document: %v", err))
		}
		raw = b
	}
	return Output{Action: "merge", Document: raw, Reason: reason}
}

// Func decides one conflict.
type Func func(in *Input) Output

var registered Func

// Register sets the function that decides conflicts in the wasm build. Call
// it from init.
func Register(fn Func) { registered = fn }

// Registered returns the function registered in init, so that a native test
// can call it through Run exactly as the wasm build does.
func Registered() Func { return registered }

// Run decodes input, calls fn and encodes its output: what the wasm export
// does on every call. A panic in fn becomes a "defer" with the panic's text,
// so one bad input does not kill the instance.
func Run(fn Func, input []byte) (out []byte) {
	return appendRun(nil, fn, input, new(runState))
}

// runState is what a call decodes into. The wasm build reuses one for every
// call (a guest runs one call at a time), so that decoding allocates
// nothing; Run takes a new one, so that native tests may run in parallel.
type runState struct {
	in  Input
	idx inputIndex
}

func appendRun(dst []byte, fn Func, input []byte, st *runState) []byte {
	st.in = Input{}
	if err := decodeInput(input, &st.in, &st.idx); err != nil {
		return appendOutput(dst, Defer(fmt.Sprintf("resolver could not decode its input: %v", err)))
	}
	o := call(fn, &st.in)
	return appendOutput(dst, o)
}

func call(fn Func, in *Input) (o Output) {
	defer func() {
		if r := recover(); r != nil {
			o = Defer(fmt.Sprintf("resolver panicked: %v", r))
		}
	}()
	return fn(in)
}

// appendKey appends k as a JSON string (the fast path for plain ASCII).
func appendKey[S string | []byte](dst []byte, k S) []byte {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			kb, _ := json.Marshal(string(k))
			return append(dst, kb...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, k...)
	return append(dst, '"')
}

// appendOutput appends the output's JSON; the document is embedded as it
// is (the hub checks it).
func appendOutput(dst []byte, o Output) []byte {
	dst = append(dst, `{"action":`...)
	dst = appendKey(dst, o.Action)
	if len(o.Document) > 0 {
		dst = append(dst, `,"document":`...)
		dst = append(dst, o.Document...)
	}
	if o.Reason != "" {
		dst = append(dst, `,"reason":`...)
		dst = appendKey(dst, o.Reason)
	}
	return append(dst, '}')
}

// errNotObject is returned by the member helpers for non-objects.
var errNotObject = errors.New("not a JSON object")

// Member returns the raw value of the top-level member key of the JSON
// object doc, or nil if it has none.
func Member(doc json.RawMessage, key string) (json.RawMessage, error) {
	var found json.RawMessage
	err := members(doc, func(k []byte, v json.RawMessage) {
		if string(k) == key {
			found = v
		}
	})
	return found, err
}

// With returns a copy of the JSON object doc with its top-level member key
// set to value (raw JSON), keeping the other members and their order; the
// member is appended if doc has none.
func With(doc json.RawMessage, key string, value json.RawMessage) (json.RawMessage, error) {
	kq, err := json.Marshal(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(doc)+len(value)+len(kq)+2)
	out = append(out, '{')
	seen := false
	n := 0
	err = members(doc, func(k []byte, v json.RawMessage) {
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = appendKey(out, k)
		out = append(out, ':')
		if string(k) == key && !seen {
			seen = true
			v = value
		}
		out = append(out, v...)
	})
	if err != nil {
		return nil, err
	}
	if !seen {
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, kq...)
		out = append(out, ':')
		out = append(out, value...)
	}
	return append(out, '}'), nil
}

// members calls fn for every top-level member of the object doc, in order
// (from the input's index when doc is one of its documents). Keys are the
// raw bytes: compare them with string(k) == key, which does not allocate.
func members(doc json.RawMessage, fn func(k []byte, v json.RawMessage)) error {
	if ms, ok := lookup(doc); ok {
		for _, m := range ms {
			fn(m.key, m.value)
		}
		return nil
	}
	return eachMember(doc, func(k, v []byte) bool {
		fn(k, v)
		return true
	})
}
