package wasmhost_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/wasmhost"
)

func TestParseOutput(t *testing.T) {
	tests := []struct {
		name, out string
		ok        bool
	}{
		{"incoming", `{"action":"incoming"}`, true},
		{"merge", `{"action":"merge","document":{"id":"a"},"reason":"r"}`, true},
		{"defer with reason", `{"action":"defer","reason":"ask a person"}`, true},
		{"merge without document", `{"action":"merge"}`, false},
		{"merge with array", `{"action":"merge","document":[1]}`, false},
		{"document with incoming", `{"action":"incoming","document":{"id":"a"}}`, false},
		{"unknown action", `{"action":"explode"}`, false},
		{"no action", `{}`, false},
		{"unknown field", `{"action":"incoming","x":1}`, false},
		{"trailing data", `{"action":"incoming"} {}`, false},
		{"not json", `{"action": `, false},
		{"empty", ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wasmhost.ParseOutput([]byte(tt.out))
			if (err == nil) != tt.ok {
				t.Fatalf("ParseOutput(%s) = %v, want ok=%v", tt.out, err, tt.ok)
			}
			var ce *wasmhost.CallError
			if err != nil && (!errors.As(err, &ce) || ce.Reason != wasmhost.ReasonOutput) {
				t.Fatalf("error %v is not reason output", err)
			}
		})
	}
}

// FuzzHost feeds arbitrary bytes through the whole host path: as documents
// in the input, and (with the echo module, which returns its input) as the
// resolver's output. The host must never panic, must classify every failure,
// and must keep serving.
func FuzzHost(f *testing.F) {
	f.Add([]byte(`{"action":"incoming"}`), []byte(`{"id":"a"}`))
	f.Add([]byte(`{"action":"merge","document":{"id":"a","items":[1,2]}}`), []byte(`{"id":"a","items":[1]}`))
	f.Add([]byte(`{"action":"defer","reason":"\u0000"}`), []byte(`null`))
	f.Add([]byte{0xff, 0xfe, '{'}, []byte(`{"id":"a","items":[[[[[]]]]]}`))
	ctx := context.Background()
	h := newHost(f, wasmhost.Limits{Fuel: 5_000_000})
	echo, err := h.Compile(ctx, readFixture(f, "echo.wasm"))
	if err != nil {
		f.Fatal(err)
	}
	cart, err := h.Compile(ctx, readFixture(f, "cart-merge-c.wasm"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, out, doc []byte) {
		res, err := echo.Call(ctx, out)
		if err != nil {
			t.Fatalf("echo call: %v", err)
		}
		if string(res.Output) != string(out) {
			t.Fatalf("echo returned %q, want %q", res.Output, out)
		}
		if _, err := wasmhost.ParseOutput(res.Output); err != nil {
			var ce *wasmhost.CallError
			if !errors.As(err, &ce) || ce.Reason != wasmhost.ReasonOutput {
				t.Fatalf("ParseOutput: %v is not reason output", err)
			}
		}
		// Documents reach a resolver only after the hub validated them;
		// anything valid as JSON must get a decision or a classified
		// failure, never a panic or an unclassified error.
		if !json.Valid(doc) {
			return
		}
		in := replica.ResolverInput{Kind: "replace", Container: "c", ID: "a", Incoming: doc, Existing: doc, Base: json.RawMessage("null"),
			Conflicting: []json.RawMessage{}}
		if _, _, err := cart.Resolve(ctx, in); err != nil {
			var ce *wasmhost.CallError
			if !errors.As(err, &ce) {
				t.Fatalf("Resolve: unclassified error %v", err)
			}
		}
	})
}

func mustRead(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	return b
}
