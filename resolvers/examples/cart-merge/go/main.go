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
	inBase, inInc, inEx := set(base), set(inc), set(ex)
	var out bytes.Buffer
	out.WriteByte('[')
	n := 0
	add := func(e json.RawMessage) {
		if n > 0 {
			out.WriteByte(',')
		}
		n++
		out.Write(e)
	}
	added := map[string]bool{}
	for _, e := range ex { // kept unless the incoming side removed it
		k := string(e)
		if (!inBase[k] || inInc[k]) && !added[k] {
			added[k] = true
			add(e)
		}
	}
	for _, e := range inc { // additions of the incoming side
		k := string(e)
		if !inBase[k] && !inEx[k] && !added[k] {
			added[k] = true
			add(e)
		}
	}
	out.WriteByte(']')
	doc, err := resolver.With(in.Existing, "items", out.Bytes())
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
	var elems []json.RawMessage
	if err := json.Unmarshal(v, &elems); err != nil {
		return nil, err
	}
	for i, e := range elems {
		var b bytes.Buffer
		if err := json.Compact(&b, e); err != nil {
			return nil, err
		}
		elems[i] = b.Bytes()
	}
	return elems, nil
}

func set(elems []json.RawMessage) map[string]bool {
	m := make(map[string]bool, len(elems))
	for _, e := range elems {
		m[string(e)] = true
	}
	return m
}

func main() {}
