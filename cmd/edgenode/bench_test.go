package main

import (
	"context"
	"io"
	"testing"
)

// TestBenchCommand runs `edgenode bench` small: the command works end to end.
func TestBenchCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	var out io.Writer = io.Discard
	if testing.Verbose() {
		out = &testWriter{t}
	}
	if code := run(context.Background(), []string{"bench", "--seq-docs", "50", "--docs", "300", "--clients", "8", "--dir", t.TempDir()}, out, out); code != 0 {
		t.Fatalf("bench exit code %d", code)
	}
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
