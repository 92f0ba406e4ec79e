package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestResolverTest runs "cloudhub resolver test" in process: a decision on
// the example case, and each limit flag refusing a bad value and, set low,
// stopping the call or the upload with its reason.
func TestResolverTest(t *testing.T) {
	ctx := context.Background()
	const cart = "../../testdata/resolvers/cart-merge-c.wasm"
	const input = "../../testdata/conflicts/cart-merge/seed-phone-book.json"
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(ctx, append([]string{"resolver", "test"}, args...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	code, out, errOut := run("--wasm", cart, "--input", input)
	var rep struct {
		Decision struct{ Action string }
		Error    *struct{ Reason string }
	}
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || rep.Decision.Action != "merge" {
		t.Fatalf("resolver test: exit %d, %s%s; want a merge", code, out, errOut)
	}
	for flag, msg := range map[string]string{"--resolver-module-mb": "want 1..1024", "--resolver-input-mb": "want 1..1024",
		"--resolver-output-mb": "want 1..1024", "--resolver-fuel": "want a positive number", "--resolver-init-fuel": "want a positive number",
		"--resolver-memory-mb": "want 1..4095", "--resolver-timeout": "want 1ms..1h", "--resolver-compile-timeout": "want 1ms..1h"} {
		if code, _, errOut := run("--wasm", cart, "--input", input, flag, "0"); code != 2 || !strings.Contains(errOut, msg) {
			t.Errorf("%s 0: exit %d, %q; want a usage error", flag, code, errOut)
		}
	}
	// An input over --resolver-input-mb fails the call with reason input.
	big := filepath.Join(t.TempDir(), "big.json")
	note := strings.Repeat("n", 1100<<10)
	doc := `{"id":"c1","owner":"ann","items":["phone"],"note":"` + note + `"}`
	if err := os.WriteFile(big, []byte(`{"kind":"replace","container":"carts","id":"c1","incoming":`+doc+`,"existing":`+doc+`,"base":null,"isTombstone":false,"conflicting":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = run("--wasm", cart, "--input", big, "--resolver-input-mb", "1")
	rep.Error = nil
	if err := json.Unmarshal([]byte(out), &rep); code != 1 || err != nil || rep.Error == nil || rep.Error.Reason != "input" {
		t.Errorf("an input of 2.2 MiB with --resolver-input-mb 1: exit %d, %s; want reason input", code, out)
	}
	if code, out, _ := run("--wasm", cart, "--input", big); code != 0 || !strings.Contains(out, `"action": "merge"`) {
		t.Errorf("the same input with the default limit: exit %d, %s; want a merge", code, out)
	}
	// The Go build's runtime start-up needs more than 1,000 fuel. (Compiling
	// it takes seconds, more under -race: the compile timeout is long.)
	if code, _, errOut := run("--wasm", "../../testdata/resolvers/counter.wasm", "--input", input, "--resolver-init-fuel", "1000", "--resolver-compile-timeout", "1h"); code != 1 || !strings.Contains(errOut, "_initialize: fuel") {
		t.Errorf("--resolver-init-fuel 1000 with a Go module: exit %d, %q; want _initialize out of fuel", code, errOut)
	}
	// A module over --resolver-module-mb is refused before it is compiled.
	if code, _, errOut := run("--wasm", "../../testdata/resolvers/cart-merge.wasm", "--input", input, "--resolver-module-mb", "1"); code != 1 || !strings.Contains(errOut, "limit 1048576") {
		t.Errorf("a 3.4 MB module with --resolver-module-mb 1: exit %d, %q; want it refused over the limit", code, errOut)
	}
}

// TestResolverTest_limits: a call out of fuel reports the fuel it used (the
// whole --resolver-fuel; it said 0), a call with fuel to spare stops at
// --resolver-timeout, and one whose context ends (SIGTERM) stops at once.
func TestResolverTest_limits(t *testing.T) {
	const loop = "../../testdata/resolvers/malicious/infinite-loop.wasm"
	const input = "../../testdata/conflicts/cart-merge/seed-phone-book.json"
	type report struct {
		FuelUsed int64
		Error    *struct{ Reason string }
	}
	tests := []struct {
		name     string
		args     []string
		cancel   time.Duration // ends the context after this long, if set
		reason   string
		fuelUsed int64 // if set
	}{
		{name: "out of fuel", args: []string{"--resolver-fuel", "1000000"}, reason: "fuel", fuelUsed: 1_000_000},
		{name: "timeout", args: []string{"--resolver-fuel", "1000000000000000", "--resolver-timeout", "300ms"}, reason: "timeout"},
		{name: "canceled", args: []string{"--resolver-fuel", "1000000000000000", "--resolver-timeout", "1h"}, cancel: time.Second, reason: "canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel > 0 {
				time.AfterFunc(tt.cancel, cancel)
			}
			var stdout, stderr bytes.Buffer
			start := time.Now()
			code := run(ctx, append([]string{"resolver", "test", "--wasm", loop, "--input", input}, tt.args...), &stdout, &stderr)
			// Endless without the bound; the margin is for a loaded machine.
			if took := time.Since(start); took > 10*time.Second {
				t.Fatalf("took %v, want the call stopped within a second or two", took)
			}
			var rep report
			if err := json.Unmarshal(stdout.Bytes(), &rep); code != 1 || err != nil || rep.Error == nil || rep.Error.Reason != tt.reason {
				t.Fatalf("exit %d, %s%s; want reason %s", code, stdout.String(), stderr.String(), tt.reason)
			}
			if tt.fuelUsed != 0 && rep.FuelUsed != tt.fuelUsed {
				t.Fatalf("fuelUsed %d, want %d", rep.FuelUsed, tt.fuelUsed)
			}
			if rep.FuelUsed <= 0 {
				t.Fatalf("fuelUsed %d, want what the loop burnt", rep.FuelUsed)
			}
		})
	}
}
