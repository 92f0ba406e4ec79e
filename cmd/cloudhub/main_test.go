package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the logger's goroutines and the
// test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var listeningRE = regexp.MustCompile(`cloudhub listening"? addr=(\S+)`)

// startHub runs `cloudhub serve` in this process until it logs its
// address and returns it; the hub stops (and must exit 0) when the test
// ends.
func startHub(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var logs lockedBuffer
	done := make(chan int, 1)
	args = append([]string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0"}, args...)
	go func() { done <- run(ctx, args, io.Discard, &logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("run = %d after cancel, want 0\nstderr: %s", code, logs.String())
			}
		case <-time.After(10 * time.Second):
			t.Errorf("run still running 10s after cancel")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := listeningRE.FindStringSubmatch(logs.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("run = %d before it listened\nstderr: %s", code, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("the hub did not log its address within 10s\nstderr: %s", logs.String())
	return ""
}

// TestServe_BadEscapeJSON: a path with a bad escape gets the JSON error,
// not net/http's plain text.
func TestServe_BadEscapeJSON(t *testing.T) {
	addr := startHub(t, "--admin-token", "t")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "GET /api/v1/containers/c/docs/%zz HTTP/1.1\r\nHost: "+addr+"\r\nAuthorization: Bearer t\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "HTTP/1.1 400 ") || !strings.Contains(string(b), "Content-Type: application/json") ||
		!strings.Contains(string(b), `{"code":"bad_request","message":`) {
		t.Fatalf("response %q, want 400 with a JSON {\"code\":\"bad_request\"} body", b)
	}
}

// TestServe_SessionTTLFlag: a lifetime of zero or less is a usage error.
func TestServe_SessionTTLFlag(t *testing.T) {
	var stderr lockedBuffer
	if got := run(context.Background(), []string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--session-ttl", "0s"}, io.Discard, &stderr); got != 2 {
		t.Fatalf("run(--session-ttl 0s) = %d, want 2\nstderr: %s", got, stderr.String())
	}
	if !strings.Contains(stderr.String(), "--session-ttl") {
		t.Fatalf("stderr %q does not name --session-ttl", stderr.String())
	}
}

// TestServe_TierFlags: a lease timeout under 100ms, an overlong hub name or
// an address no other hub can dial is a usage error that names the flag.
func TestServe_TierFlags(t *testing.T) {
	for _, tc := range []struct {
		name, flag, value string
	}{
		{name: "short lease", flag: "--lease-timeout", value: "50ms"},
		{name: "long name", flag: "--hub-name", value: strings.Repeat("h", 201)},
		{name: "advertise without a port", flag: "--advertise", value: "hub-a"},
		{name: "advertise an unspecified address", flag: "--advertise", value: "0.0.0.0:8080"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr lockedBuffer
			args := []string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0", tc.flag, tc.value}
			if got := run(context.Background(), args, io.Discard, &stderr); got != 2 {
				t.Fatalf("run(%s %s) = %d, want 2\nstderr: %s", tc.flag, tc.value, got, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.flag) {
				t.Fatalf("stderr %q does not name %s", stderr.String(), tc.flag)
			}
		})
	}
}

// TestServe_MaxEdgesFlag: a hub sized for no edge is a usage error.
func TestServe_MaxEdgesFlag(t *testing.T) {
	var stderr lockedBuffer
	if got := run(context.Background(), []string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--max-edges", "0"}, io.Discard, &stderr); got != 2 {
		t.Fatalf("run(--max-edges 0) = %d, want 2\nstderr: %s", got, stderr.String())
	}
	if !strings.Contains(stderr.String(), "--max-edges") {
		t.Fatalf("stderr %q does not name --max-edges", stderr.String())
	}
}

// --ping-interval (and CLOUDHUB_PING_INTERVAL) must be a duration from a
// second to a minute: what an edge accepts from a welcome.
func TestServe_PingIntervalFlag(t *testing.T) {
	testServeFlagRefused(t, "CLOUDHUB_PING_INTERVAL", []serveFlagCase{
		{name: "below a second", args: []string{"--ping-interval", "500ms"}, wantStderr: "--ping-interval 500ms: want 1s to 1m"},
		{name: "above a minute", args: []string{"--ping-interval", "2m"}, wantStderr: "want 1s to 1m"},
		{name: "not a duration", args: []string{"--ping-interval", "often"}, wantStderr: "often"},
		{name: "from env", env: "0s", wantStderr: "want 1s to 1m"},
	})
}

// serveFlagCase is a serve flag's value (or its environment variable's)
// that serve refuses, and what its error must say.
type serveFlagCase struct {
	name       string
	args       []string
	env        string
	wantStderr string
}

// testServeFlagRefused checks that serve exits with 2 and names the
// problem for each case, env set in envVar.
func testServeFlagRefused(t *testing.T, envVar string, cases []serveFlagCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(envVar, tc.env)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var stdout, stderr bytes.Buffer
			args := append([]string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0"}, tc.args...)
			if code := run(ctx, args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Fatalf("run(%q) = %d, stderr %q; want 2 and %q", args, code, stderr.String(), tc.wantStderr)
			}
		})
	}
}
