// Command counter is an edgesync conflict resolver (Go SDK): the numeric
// field "count" of concurrent versions is merged as base + both deltas, so
// that offline increments on several edges add up exactly. The other fields
// come from the existing version. A delete wins.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o counter.wasm .
package main

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/edgesync/edgesync/resolvers/sdk/go/resolver"
)

func init() { resolver.Register(Resolve) }

// Resolve merges the counts of incoming and existing against base.
func Resolve(in *resolver.Input) resolver.Output {
	switch {
	case in.IncomingDeleted():
		return resolver.KeepIncoming()
	case in.ExistingDeleted():
		return resolver.KeepExisting()
	}
	inc, err := count(in.Incoming)
	if err != nil {
		return resolver.Defer("incoming: " + err.Error())
	}
	ex, err := count(in.Existing)
	if err != nil {
		return resolver.Defer("existing: " + err.Error())
	}
	var base int64 // an insert conflict has no base: both counts add up
	if in.HasBase() {
		if base, err = count(in.Base); err != nil {
			return resolver.Defer("base: " + err.Error())
		}
	}
	total := base + (inc - base) + (ex - base)
	doc, err := resolver.With(in.Existing, "count", strconv.AppendInt(nil, total, 10))
	if err != nil {
		return resolver.Defer("existing: " + err.Error())
	}
	return resolver.Merge(doc, "counter: base "+strconv.FormatInt(base, 10)+" + both deltas")
}

// count reads the integer member "count" of doc (0 if absent).
func count(doc json.RawMessage) (int64, error) {
	v, err := resolver.Member(doc, "count")
	if err != nil || v == nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("count %s is not an integer", v)
	}
	return n, nil
}

func main() {}
