package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/internal/proctest"
	"github.com/edgesync/edgesync/web/cosmos"
)

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
		{name: "help lists commands", args: []string{"--help"}, want: 0, wantStderr: "bench   measure"},
		{name: "help lists environment variables", args: []string{"--help"}, want: 0, wantStderr: "--hub-ca string  (EDGENODE_HUB_CA)"},
		{name: "help command", args: []string{"help"}, want: 0, wantStdout: "serve   run the edge"},
		{name: "unknown flag", args: []string{"--no-such-flag"}, want: 2, wantStderr: "no-such-flag"},
		{name: "bench unknown flag", args: []string{"bench", "--no-such-flag"}, want: 2, wantStderr: "no-such-flag"},
		{name: "bench help", args: []string{"bench", "--help"}, want: 0, wantStderr: "-seq-docs"},
		{name: "unknown command", args: []string{"frobnicate"}, want: 2, wantStderr: "frobnicate"},
		{name: "unexpected argument", args: []string{"serve", "extra"}, want: 2, wantStderr: "extra"},
		{name: "log format xml", args: []string{"--log-format", "xml"}, want: 2, wantStderr: "xml"},
		{name: "log format xml from env", env: map[string]string{"EDGENODE_LOG_FORMAT": "xml"}, want: 2, wantStderr: "xml"},
		{name: "hub ftp", args: []string{"--hub", "ftp://x"}, want: 2, wantStderr: "ftp://x"},
		{name: "hub second of two is ftp", args: []string{"--hub", "http://h1:8080,ftp://x"}, want: 2, wantStderr: "ftp://x"},
		{name: "hub without host", args: []string{"--hub", "http://"}, want: 2, wantStderr: "--hub"},
		{name: "hub ftp from env", env: map[string]string{"EDGENODE_HUB": "ftp://x"}, want: 2, wantStderr: "ftp://x"},
		{name: "hub timeout too short", args: []string{"--hub-timeout", "10ms"}, want: 2, wantStderr: "--hub-timeout 10ms"},
		{name: "hub probe interval too short from env", env: map[string]string{"EDGENODE_HUB_PROBE_INTERVAL": "1ms"}, want: 2, wantStderr: "--hub-probe-interval 1ms"},
		{name: "help lists the hub probe interval", args: []string{"--help"}, want: 0, wantStderr: "(EDGENODE_HUB_PROBE_INTERVAL)"},
		{name: "durability sometimes", args: []string{"--durability", "sometimes"}, want: 2, wantStderr: "sometimes"},
		{name: "durability sometimes from env", env: map[string]string{"EDGENODE_DURABILITY": "sometimes"}, want: 2, wantStderr: "sometimes"},
		{name: "cors origin with a path", args: []string{"--cors-origin", "https://app.example/x"}, want: 2, wantStderr: "--cors-origin"},
		{name: "cors origin without scheme from env", env: map[string]string{"EDGENODE_CORS_ORIGIN": "https://ok.example,app.example"}, want: 2, wantStderr: "app.example"},
		{name: "clock offset not a duration", args: []string{"--clock-offset", "soon"}, want: 2, wantStderr: "soon"},
		{name: "clock offset not a duration from env", env: map[string]string{"EDGENODE_CLOCK_OFFSET": "soon"}, want: 2, wantStderr: "soon"},
		{name: "tls cert without key", args: []string{"--tls-cert", "cert.pem"}, want: 2, wantStderr: "give both or neither"},
		{name: "tls key without cert from env", env: map[string]string{"EDGENODE_TLS_KEY": "key.pem"}, want: 2, wantStderr: "give both or neither"},
		{name: "tls cert missing", args: []string{"--tls-cert", "no-such.pem", "--tls-key", "no-such.pem"}, want: 2, wantStderr: "no-such.pem"},
		{name: "cosmos key not base64", args: []string{"--cosmos-listen", "127.0.0.1:0", "--cosmos-key", "not a key!"}, want: 2, wantStderr: "--cosmos-key"},
		{name: "cosmos key too short from env", args: []string{"--cosmos-listen", "127.0.0.1:0"}, env: map[string]string{"EDGENODE_COSMOS_KEY": "c2hvcnQ="}, want: 2, wantStderr: "at least 16"},
		{name: "hub ca missing", args: []string{"--hub", "https://h:8080", "--hub-ca", "no-such-ca.pem"}, want: 2, wantStderr: "--hub-ca"},
		{name: "hub ca without certificates from env", env: map[string]string{"EDGENODE_HUB_CA": "main.go"}, want: 2, wantStderr: "no PEM certificate"},
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
			var stdout, stderr proctest.Buffer
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
		var stderr proctest.Buffer
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
	log := proctest.NewLog("edgenode listening")
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, io.Discard, log) }()
	var addr string
	select {
	case addr = <-log.Addr():
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

// TestLocalToken: a node listening beyond loopback gets a local token,
// generated once, saved with mode 0600 and the same at the next start; on
// loopback there is none unless configured.
func TestLocalToken(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:7070", "localhost:7070", "[::1]:7070"} {
		if tok, created, err := localToken("", t.TempDir(), addr); err != nil || tok != "" || created {
			t.Errorf("localToken(%s) = %q, %v, %v; want none on loopback", addr, tok, created, err)
		}
	}
	if tok, _, err := localToken("mine", t.TempDir(), "127.0.0.1:7070"); err != nil || tok != "mine" {
		t.Errorf("localToken(configured) = %q, %v; want the configured one", tok, err)
	}
	for _, addr := range []string{"0.0.0.0:7070", ":7070", "192.0.2.10:7070", "[::]:7070", "edge.lan:7070"} {
		dir := t.TempDir()
		tok, created, err := localToken("", dir, addr)
		if err != nil || !created || !strings.HasPrefix(tok, "esl_") || len(tok) < 30 {
			t.Fatalf("localToken(%s) = %q, %v, %v; want a new token", addr, tok, created, err)
		}
		fi, err := os.Stat(filepath.Join(dir, "local-token"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("local-token file: %v, %v; want mode 0600", fi, err)
		}
		again, created, err := localToken("", dir, addr)
		if err != nil || created || again != tok {
			t.Fatalf("second localToken(%s) = %q, %v, %v; want the saved %q", addr, again, created, err, tok)
		}
	}
}

// startServe runs `run(ctx, args)` until it logs its address and returns
// the address; the node stops (and must exit 0) when the test ends.
func startServe(t *testing.T, args []string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := proctest.NewLog("edgenode listening")
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, io.Discard, log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("run = %d after cancel, want 0\nstderr: %s", code, log)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("run still running 10s after cancel")
		}
	})
	select {
	case addr := <-log.Addr():
		return addr
	case code := <-done:
		t.Fatalf("run = %d before it listened\nstderr: %s", code, log)
	case <-time.After(10 * time.Second):
		t.Fatalf("run did not log its address within 10s\nstderr: %s", log)
	}
	return ""
}

// TestServe_LocalToken: a node started with --local-token answers API
// calls only with it, and /healthz without.
func TestServe_LocalToken(t *testing.T) {
	t.Setenv("EDGENODE_DATA", t.TempDir())
	t.Setenv("EDGENODE_LOCAL_TOKEN", "esl_test")
	addr := startServe(t, []string{"--listen", "127.0.0.1:0"})
	get := func(path, token string) int {
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tt := range []struct {
		path, token string
		want        int
	}{
		{"/api/v1/status", "", http.StatusUnauthorized},
		{"/api/v1/status", "wrong", http.StatusUnauthorized},
		{"/api/v1/status", "esl_test", http.StatusOK},
		{"/healthz", "", http.StatusOK},
	} {
		if got := get(tt.path, tt.token); got != tt.want {
			t.Errorf("GET %s with token %q: %d, want %d", tt.path, tt.token, got, tt.want)
		}
	}
}

// TestServe_BadEscapeJSON: a path with a bad escape gets the JSON error,
// not net/http's plain text.
func TestServe_BadEscapeJSON(t *testing.T) {
	t.Setenv("EDGENODE_DATA", t.TempDir())
	addr := startServe(t, []string{"--listen", "127.0.0.1:0"})
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "GET /api/v1/containers/c/docs/%zz HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
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

// TestServe_CosmosKey: with --cosmos-listen and no key, a node generates
// one at first start, saves it with mode 0600, prints it once, and signs
// nothing else: the Cosmos API accepts requests signed with that key, and
// the next start keeps it without printing it.
func TestServe_CosmosKey(t *testing.T) {
	dir := t.TempDir()
	// start runs the node until it logs its Cosmos address; stop ends it
	// (the data directory is locked while it runs).
	start := func() (addr, out string, stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		log := proctest.NewLog("cosmos api listening")
		var stdout proctest.Buffer
		done := make(chan int, 1)
		args := []string{"--listen", "127.0.0.1:0", "--data", dir, "--cosmos-listen", "127.0.0.1:0"}
		go func() { done <- run(ctx, args, &stdout, log) }()
		stopped := false
		stop = func() {
			if stopped {
				return
			}
			stopped = true
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("run = %d after cancel, want 0\nstderr: %s", code, log)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("run still running 10s after cancel")
			}
		}
		t.Cleanup(stop)
		select {
		case addr = <-log.Addr():
			return addr, stdout.String(), stop
		case code := <-done:
			t.Fatalf("run = %d before it listened\nstderr: %s", code, log)
		case <-time.After(10 * time.Second):
			t.Fatalf("run did not log its Cosmos address within 10s\nstderr: %s", log)
		}
		return "", "", stop
	}
	addr, out, stop := start()
	fi, err := os.Stat(filepath.Join(dir, "cosmos-key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cosmos-key file: %v, %v; want mode 0600", fi, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "cosmos-key"))
	key := strings.TrimSpace(string(b))
	if !strings.Contains(out, key) {
		t.Fatalf("stdout %q does not show the generated key", out)
	}
	k, err := cosmos.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	get := func(key cosmos.Key) int {
		req, _ := http.NewRequest("GET", "http://"+addr+"/dbs", nil)
		date := time.Now().UTC().Format(http.TimeFormat)
		req.Header.Set("x-ms-date", date)
		req.Header.Set("Authorization", key.Authorization("GET", "dbs", "", date))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(k); got != http.StatusOK {
		t.Fatalf("GET /dbs signed with the saved key: %d, want 200", got)
	}
	other, _ := cosmos.ParseKey(strings.Repeat("AAAA", 22))
	if got := get(other); got != http.StatusUnauthorized {
		t.Fatalf("GET /dbs signed with another key: %d, want 401", got)
	}
	stop()
	if _, out, _ := start(); strings.Contains(out, key) {
		t.Fatalf("second start printed the key again: %q", out)
	}
	if b2, _ := os.ReadFile(filepath.Join(dir, "cosmos-key")); strings.TrimSpace(string(b2)) != key {
		t.Fatalf("second start changed the key")
	}
}
