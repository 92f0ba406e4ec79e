package main

import (
	"context"
	"testing"

	"github.com/edgesync/edgesync/internal/proctest"
)

// `cloudhub bench` reaches the benchmark (internal/hubbench, whose tests
// run it) and its usage errors exit 2.
func TestBenchCommand_Usage(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
	}{
		{name: "unknown run", args: []string{"--run", "sync,nope"}},
		{name: "size too small", args: []string{"--size", "10"}},
		{name: "zero edges", args: []string{"--edges", "0"}},
		{name: "durability", args: []string{"--durability", "off"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr proctest.Buffer
			if code := run(context.Background(), append([]string{"bench"}, tt.args...), &stdout, &stderr); code != 2 {
				t.Fatalf("exit code %d, want 2; stderr:\n%s", code, stderr.String())
			}
		})
	}
}
