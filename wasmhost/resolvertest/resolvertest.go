// Package resolvertest lets a resolver author table-test a resolver .wasm
// with go test, on the same host code and limits as the hub:
//
//	func TestCart(t *testing.T) {
//		r := resolvertest.Load(t, "cart-merge.wasm")
//		r.Run(t, []resolvertest.Case{{
//			Name:     "remove and add",
//			Base:     `{"id":"c1","items":["phone"]}`,
//			Existing: `{"id":"c1","items":[]}`,
//			Incoming: `{"id":"c1","items":["phone","book"]}`,
//			Want:     resolvertest.Merged(`{"id":"c1","items":["book"]}`),
//		}})
//	}
package resolvertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/wasmhost"
)

// Resolver is a compiled resolver under test.
type Resolver struct {
	m *wasmhost.Module
}

// Load compiles the resolver at path with the default limits (or limits, if
// given), failing the test when it is not a valid resolver. The host is
// closed when the test ends. The compile timeout is an hour unless limits
// sets one: it guards a hub against hostile uploads, and compiling a Go
// resolver under -race takes longer than the hub's default.
func Load(t testing.TB, path string, limits ...wasmhost.Limits) *Resolver {
	t.Helper()
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read resolver: %v", err)
	}
	var l wasmhost.Limits
	if len(limits) > 0 {
		l = limits[0]
	}
	if l.CompileTimeout == 0 {
		l.CompileTimeout = time.Hour
	}
	ctx := context.Background()
	h, err := wasmhost.New(ctx, wasmhost.Config{Limits: l, Instances: 1})
	if err != nil {
		t.Fatalf("wasm host: %v", err)
	}
	t.Cleanup(func() { _ = h.Close(ctx) })
	m, err := h.Compile(ctx, wasm)
	if err != nil {
		t.Fatalf("compile %s: %v", path, err)
	}
	return &Resolver{m: m}
}

// Case is one conflict and the decision expected for it. Documents are JSON
// text; "" or "null" is a delete (or, for Base, no common ancestor).
type Case struct {
	Name        string
	Kind        string // default: insert without a base, replace with one, delete if a side is null
	Container   string // default "test"
	ID          string // default: the id of incoming or existing
	Incoming    string
	Existing    string
	Base        string
	Conflicting []string
	// Want is the expected decision; a merged document is compared as JSON
	// (key order and spacing do not matter), the reason only when Want has
	// one.
	Want replica.ResolverOutput
	// WantFailure, if set, is the expected failure reason instead
	// (wasmhost.ReasonFuel, ReasonTrap, ...).
	WantFailure string
}

// Merged is the decision "merge" with doc.
func Merged(doc string) replica.ResolverOutput {
	return replica.ResolverOutput{Action: wasmhost.ActionMerge, Document: json.RawMessage(doc)}
}

// Action is a decision without a document.
func Action(action string) replica.ResolverOutput { return replica.ResolverOutput{Action: action} }

// Input builds the resolver input of a case.
func (c Case) Input() replica.ResolverInput {
	raw := func(s string) json.RawMessage {
		if s == "" {
			return json.RawMessage("null")
		}
		return json.RawMessage(s)
	}
	in := replica.ResolverInput{Kind: c.Kind, Container: c.Container, ID: c.ID, Incoming: raw(c.Incoming), Existing: raw(c.Existing),
		Base: raw(c.Base), Conflicting: []json.RawMessage{}}
	in.IsTombstone = string(in.Incoming) == "null" || string(in.Existing) == "null"
	if in.Container == "" {
		in.Container = "test"
	}
	if in.Kind == "" {
		switch {
		case in.IsTombstone:
			in.Kind = replica.KindDelete
		case string(in.Base) == "null":
			in.Kind = replica.KindInsert
		default:
			in.Kind = replica.KindReplace
		}
	}
	if in.ID == "" {
		var doc struct {
			ID string `json:"id"`
		}
		for _, d := range []json.RawMessage{in.Incoming, in.Existing} {
			if json.Unmarshal(d, &doc) == nil && doc.ID != "" {
				in.ID = doc.ID
				break
			}
		}
	}
	for _, s := range c.Conflicting {
		in.Conflicting = append(in.Conflicting, raw(s))
	}
	return in
}

// Resolve runs the resolver on one input.
func (r *Resolver) Resolve(in replica.ResolverInput) (replica.ResolverOutput, wasmhost.Result, error) {
	return r.m.Resolve(context.Background(), in)
}

// Run runs every case as a subtest.
func (r *Resolver) Run(t *testing.T, cases []Case) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Helper()
			got, res, err := r.Resolve(c.Input())
			if c.WantFailure != "" {
				var ce *wasmhost.CallError
				if !errors.As(err, &ce) || ce.Reason != c.WantFailure {
					t.Fatalf("failure = %v, want reason %q", err, c.WantFailure)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolve: %v (guest output: %s)", err, res.Log)
			}
			if err := Compare(got, c.Want); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Compare reports how got differs from want: action, document (as JSON
// values) and, when want has one, reason.
func Compare(got, want replica.ResolverOutput) error {
	if got.Action != want.Action {
		return errors.New("action = " + got.Action + ", want " + want.Action + " (reason: " + got.Reason + ")")
	}
	if want.Document != nil || got.Document != nil {
		eq, err := jsonEqual(got.Document, want.Document)
		if err != nil {
			return err
		}
		if !eq {
			return errors.New("document = " + string(got.Document) + ", want " + string(want.Document))
		}
	}
	if want.Reason != "" && got.Reason != want.Reason {
		return errors.New("reason = " + got.Reason + ", want " + want.Reason)
	}
	return nil
}

func jsonEqual(a, b []byte) (bool, error) {
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		return false, errors.New("document is not JSON: " + err.Error())
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		return false, errors.New("wanted document is not JSON: " + err.Error())
	}
	ea, _ := json.Marshal(va)
	eb, _ := json.Marshal(vb)
	return bytes.Equal(ea, eb), nil
}
