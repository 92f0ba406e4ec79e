package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the logger's goroutines and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRun_Flags checks run's exit codes for flags and EDGENODE_* variables:
// 0 for success and --version, 2 for usage errors.
func TestRun_Flags(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		want       int
		wantStdout string // substring
		wantStderr string // substring
	}{
		{name: "version", args: []string{"--version"}, want: 0, wantStdout: "edgenode "},
		{name: "serve version", args: []string{"serve", "--version"}, want: 0, wantStdout: "edgenode "},
		{name: "help", args: []string{"-h"}, want: 0, wantStderr: "-listen"},
		{name: "unknown flag", args: []string{"--no-such-flag"}, want: 2, wantStderr: "no-such-flag"},
		{name: "unknown command", args: []string{"frobnicate"}, want: 2, wantStderr: "frobnicate"},
		{name: "unexpected argument", args: []string{"serve", "extra"}, want: 2, wantStderr: "extra"},
		{name: "log format xml", args: []string{"--log-format", "xml"}, want: 2, wantStderr: "xml"},
		{name: "log format xml from env", env: map[string]string{"EDGENODE_LOG_FORMAT": "xml"}, want: 2, wantStderr: "xml"},
		{name: "hub ftp", args: []string{"--hub", "ftp://x"}, want: 2, wantStderr: "ftp://x"},
		{name: "hub second of two is ftp", args: []string{"--hub", "http://h1:8080,ftp://x"}, want: 2, wantStderr: "ftp://x"},
		{name: "hub without host", args: []string{"--hub", "http://"}, want: 2, wantStderr: "--hub"},
		{name: "hub ftp from env", env: map[string]string{"EDGENODE_HUB": "ftp://x"}, want: 2, wantStderr: "ftp://x"},
		{name: "durability sometimes", args: []string{"--durability", "sometimes"}, want: 2, wantStderr: "sometimes"},
		{name: "durability sometimes from env", env: map[string]string{"EDGENODE_DURABILITY": "sometimes"}, want: 2, wantStderr: "sometimes"},
		// --version is never read from the environment: the log-format error
		// is reported, not EDGENODE_VERSION's.
		{name: "version env ignored", env: map[string]string{"EDGENODE_VERSION": "maybe", "EDGENODE_LOG_FORMAT": "xml"}, want: 2, wantStderr: "--log-format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Should a bad configuration be accepted, the node must neither
			// touch ./edgenode-data nor block: a private data dir, any port,
			// and a context that is already done (serve then fails at once
			// with exit code 1, which no case wants).
			t.Setenv("EDGENODE_DATA", t.TempDir())
			t.Setenv("EDGENODE_LISTEN", "127.0.0.1:0")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var stdout, stderr syncBuffer
			got := run(ctx, tt.args, &stdout, &stderr)
			if got != tt.want {
				t.Errorf("run(%q) = %d, want %d\nstdout: %s\nstderr: %s", tt.args, got, tt.want, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("run(%q) stdout = %q, want it to contain %q", tt.args, stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("run(%q) stderr = %q, want it to contain %q", tt.args, stderr.String(), tt.wantStderr)
			}
			if tt.wantStdout == "edgenode " {
				if v := strings.TrimSpace(strings.TrimPrefix(stdout.String(), "edgenode ")); v == "" {
					t.Errorf("run(%q) printed %q: no version", tt.args, stdout.String())
				}
			}
		})
	}

	t.Run("--durability wins over EDGENODE_DURABILITY", func(t *testing.T) {
		t.Setenv("EDGENODE_DATA", t.TempDir())
		t.Setenv("EDGENODE_LISTEN", "127.0.0.1:0")
		t.Setenv("EDGENODE_DURABILITY", "sometimes") // would be a usage error
		serveInProcess(t, []string{"--durability", "normal"})
	})

	t.Run("EDGENODE_LISTEN honoured", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		t.Setenv("EDGENODE_DATA", t.TempDir())
		t.Setenv("EDGENODE_LISTEN", addr)
		if got := serveInProcess(t, nil); got != addr {
			t.Errorf("listening on %s, want %s from EDGENODE_LISTEN", got, addr)
		}
	})

	t.Run("EDGENODE_LISTEN on a busy address fails", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		t.Setenv("EDGENODE_DATA", t.TempDir())
		t.Setenv("EDGENODE_LISTEN", ln.Addr().String())
		var stderr syncBuffer
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if got, want := run(ctx, nil, io.Discard, &stderr), 1; got != want {
			t.Errorf("run() with EDGENODE_LISTEN=%s (in use) = %d, want %d\nstderr: %s", ln.Addr(), got, want, stderr.String())
		}
		if !strings.Contains(stderr.String(), ln.Addr().String()) {
			t.Errorf("stderr does not name the address %s:\n%s", ln.Addr(), stderr.String())
		}
	})

	t.Run("--listen wins over EDGENODE_LISTEN", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		t.Setenv("EDGENODE_DATA", t.TempDir())
		t.Setenv("EDGENODE_LISTEN", ln.Addr().String()) // busy: would fail
		if got := serveInProcess(t, []string{"--listen", "127.0.0.1:0"}); got == ln.Addr().String() {
			t.Errorf("listening on %s, the EDGENODE_LISTEN address, want the --listen one", got)
		}
	})
}

// serveInProcess runs `run(ctx, args)` until it logs its address, checks
// /healthz, cancels ctx and wants 0 within 10s. It returns the address.
func serveInProcess(t *testing.T, args []string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := &procLog{addrc: make(chan string, 1)}
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, io.Discard, log) }()
	var addr string
	select {
	case addr = <-log.addrc:
	case code := <-done:
		t.Fatalf("run(%q) = %d before it listened\nstderr: %s", args, code, log)
	case <-time.After(10 * time.Second):
		t.Fatalf("run(%q) did not log its address within 10s\nstderr: %s", args, log)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Errorf("GET /healthz on %s: %v", addr, err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /healthz on %s: status %d, want 200", addr, resp.StatusCode)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("run(%q) = %d after cancel, want 0\nstderr: %s", args, code, log)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("run(%q) still running 10s after cancel\nstderr: %s", args, log)
	}
	return addr
}
