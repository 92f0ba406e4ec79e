// Command cart-merge is an edgesync conflict resolver (Go SDK): the "items"
// array is merged three ways as a set (an element is the exact JSON text of
// an array element). An element that either side removed since the base is
// removed; an element that either side added is added. The result keeps the
// existing version's order, then the incoming side's additions. The other
// fields come from the existing version. A delete wins.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o cart-merge.wasm .
package main

import (
	"bytes"
	"encoding/json"

	"github.com/edgesync/edgesync/resolvers/sdk/go/resolver"
)

func init() { resolver.Register(Resolve) }

// Resolve merges the items of incoming and existing against base.
func Resolve(in *resolver.Input) resolver.Output {
	switch {
	case in.IncomingDeleted():
		return resolver.KeepIncoming()
	case in.ExistingDeleted():
		return resolver.KeepExisting()
	}
	inc, err := items(in.Incoming)
	if err != nil {
		return resolver.Defer("incoming: " + err.Error())
	}
	ex, err := items(in.Existing)
	if err != nil {
		return resolver.Defer("existing: " + err.Error())
	}
	var base []json.RawMessage
	if in.HasBase() {
		if base, err = items(in.Base); err != nil {
			return resolver.Defer("base: " + err.Error())
		}
	}
	inBase, inInc, inEx := newSet(base), newSet(inc), newSet(ex)
	// The merged array: at most every element of both sides.
	size := 2
	for _, e := range ex {
		size += len(e) + 1
	}
	for _, e := range inc {
		size += len(e) + 1
	}
	out := make([]byte, 0, size)
	out = append(out, '[')
	added := set{elems: make([]json.RawMessage, 0, len(ex)+len(inc))}
	for _, e := range ex { // kept unless the incoming side removed it
		if (!inBase.has(e) || inInc.has(e)) && !added.has(e) {
			out = added.add(out, e)
		}
	}
	for _, e := range inc { // additions of the incoming side
		if !inBase.has(e) && !inEx.has(e) && !added.has(e) {
			out = added.add(out, e)
		}
	}
	out = append(out, ']')
	doc, err := resolver.With(in.Existing, "items", out)
	if err != nil {
		return resolver.Defer("existing: " + err.Error())
	}
	return resolver.Merge(doc, "cart-merge: items merged as a set")
}

// items reads the array member "items" of doc, each element compacted so
// that equal values compare equal.
func items(doc json.RawMessage) ([]json.RawMessage, error) {
	v, err := resolver.Member(doc, "items")
	if err != nil || v == nil {
		return nil, err
	}
	elems, err := resolver.Elements(v)
	if err != nil {
		return nil, err
	}
	for i, e := range elems {
		// A string needs no compacting; other values only when they hold
		// white space.
		if e[0] != '"' && bytes.ContainsAny(e, " \t\r\n") {
			var b bytes.Buffer
			if err := json.Compact(&b, e); err != nil {
				return nil, err
			}
			elems[i] = b.Bytes()
		}
	}
	return elems, nil
}

// set is a set of array elements: a linear scan for the small arrays carts
// have (maps are slow in a wasm guest), a map from 32 elements on.
type set struct {
	elems []json.RawMessage
	m     map[string]bool
}

func newSet(elems []json.RawMessage) set {
	s := set{elems: elems}
	if len(elems) > 32 {
		s.m = make(map[string]bool, len(elems))
		for _, e := range elems {
			s.m[string(e)] = true
		}
	}
	return s
}

func (s set) has(e []byte) bool {
	if s.m != nil {
		return s.m[string(e)]
	}
	for _, x := range s.elems {
		if bytes.Equal(x, e) {
			return true
		}
	}
	return false
}

// add adds e to the set and appends it to the JSON array being written
// in out.
func (s *set) add(out []byte, e json.RawMessage) []byte {
	if len(s.elems) > 0 {
		out = append(out, ',')
	}
	s.put(e)
	return append(out, e...)
}

// put adds e to the set.
func (s *set) put(e json.RawMessage) {
	s.elems = append(s.elems, e)
	if s.m == nil && len(s.elems) > 32 {
		s.m = make(map[string]bool, 2*len(s.elems))
		for _, x := range s.elems {
			s.m[string(x)] = true
		}
	} else if s.m != nil {
		s.m[string(e)] = true
	}
}

func main() {}
