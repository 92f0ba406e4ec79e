// Package proctest runs the real cloudhub and edgenode binaries as child
// processes for tests: it builds them once per test run, starts them on
// loopback, reads the address they log, and stops them with SIGTERM or
// SIGKILL, checking how they ended.
package proctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The commands Build knows.
const (
	Cloudhub = "github.com/edgesync/edgesync/cmd/cloudhub"
	Edgenode = "github.com/edgesync/edgesync/cmd/edgenode"
)

// built holds the binaries, built by Build and removed by Main.
var built struct {
	mu   sync.Mutex
	dir  string
	bins map[string]string // package path -> binary
	errs map[string]error
	skip string
}

// Main runs the tests and removes the binaries Build made. A package whose
// tests call Build uses it as its TestMain: os.Exit(proctest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	built.mu.Lock()
	defer built.mu.Unlock()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	return code
}

// Build builds the commands (package paths, such as Cloudhub and Edgenode)
// plainly, without -race, which is faster, into a temporary directory once
// per test run, and returns their binaries in the same order. It skips the
// test when there is no go tool.
func Build(t testing.TB, pkgs ...string) []string {
	t.Helper()
	built.mu.Lock()
	defer built.mu.Unlock()
	if built.skip == "" && built.bins == nil {
		built.bins, built.errs = map[string]string{}, map[string]error{}
	}
	var missing []string
	for _, p := range pkgs {
		if built.bins[p] == "" && built.errs[p] == nil && built.skip == "" {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		build(t, missing)
	}
	if built.skip != "" {
		t.Skip(built.skip)
	}
	bins := make([]string, len(pkgs))
	for i, p := range pkgs {
		if err := built.errs[p]; err != nil {
			t.Fatal(err)
		}
		bins[i] = built.bins[p]
	}
	return bins
}

func build(t testing.TB, pkgs []string) {
	var names []string
	for _, p := range pkgs {
		names = append(names, filepath.Base(p))
	}
	gotool, err := exec.LookPath("go")
	if err != nil {
		built.skip = "the go tool is not in PATH: cannot build " + strings.Join(names, " and ") + " for the process tests"
		return
	}
	fail := func(err error) {
		for _, p := range pkgs {
			built.errs[p] = err
		}
	}
	if built.dir == "" {
		if built.dir, err = os.MkdirTemp("", "edgesync-test-bin-"); err != nil {
			fail(err)
			return
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gotool, append([]string{"build", "-o", built.dir + string(filepath.Separator)}, pkgs...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		fail(fmt.Errorf("go build %s: %v\n%s", strings.Join(names, " and "), err, out))
		return
	}
	t.Logf("built %s in %v", strings.Join(names, " and "), time.Since(start).Round(time.Millisecond))
	for i, p := range pkgs {
		built.bins[p] = filepath.Join(built.dir, names[i])
	}
}

// Log collects a child's output (the first 4 MiB) and reports the address
// from its first "<marker> ... addr=HOST:PORT" line on Addr.
type Log struct {
	marker  string
	mu      sync.Mutex
	buf     bytes.Buffer
	partial []byte
	addrc   chan string
	found   bool
}

// NewLog returns a Log that looks for the address on the line with marker.
func NewLog(marker string) *Log {
	return &Log{marker: marker, addrc: make(chan string, 1)}
}

var addrRE = regexp.MustCompile(`\baddr=("?)([^\s"]+)`)

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() < 4<<20 {
		l.buf.Write(p)
	}
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		if !l.found && strings.Contains(line, l.marker) {
			if m := addrRE.FindStringSubmatch(line); m != nil {
				l.found = true
				l.addrc <- m[2]
			}
		}
	}
	return len(p), nil
}

func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Addr delivers the address once the marker line is logged.
func (l *Log) Addr() <-chan string { return l.addrc }

// ChildEnv is the test's environment without CLOUDHUB_* and EDGENODE_*
// variables, so that only the command line configures the children.
func ChildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EDGENODE_") && !strings.HasPrefix(kv, "CLOUDHUB_") {
			env = append(env, kv)
		}
	}
	return env
}

// Tail is the last n bytes of s, marked as cut.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// Process is a running child.
type Process struct {
	Cmd    *exec.Cmd
	Log    *Log
	Addr   string        // from the log's marker line
	Exited chan struct{} // closed once Cmd.Wait returned
}

// ErrNoAddr is returned by Start when the child does not log its address in
// time.
var ErrNoAddr = errors.New("no address logged")

// Start runs bin with args and waits up to timeout for the line with marker
// and its address. A child that exits first, or does not log it in time,
// is an error (the child killed); the error carries its log.
func Start(bin string, args []string, marker string, timeout time.Duration) (*Process, error) {
	l := NewLog(marker)
	cmd := exec.Command(bin, args...)
	cmd.Env = ChildEnv()
	cmd.Stdout, cmd.Stderr = l, l
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %v", bin, err)
	}
	p := &Process{Cmd: cmd, Log: l, Exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.Exited)
	}()
	select {
	case p.Addr = <-l.Addr():
		return p, nil
	case <-p.Exited:
		return p, fmt.Errorf("exited before it listened: %v\nlog:\n%s", cmd.ProcessState, l)
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-p.Exited
		return p, fmt.Errorf("%w: did not log %q with addr= within %v\nlog:\n%s", ErrNoAddr, marker, timeout, l)
	}
}

// Running reports whether the child has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.Exited:
		return false
	default:
		return true
	}
}

// Kill kills a child still running and waits for it, as a test's cleanup.
func (p *Process) Kill() {
	if p.Running() {
		p.Cmd.Process.Kill()
		<-p.Exited
	}
}

// Terminate sends SIGTERM and waits up to timeout for the child to exit.
func (p *Process) Terminate(timeout time.Duration) error {
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM: %v", err)
	}
	select {
	case <-p.Exited:
		return nil
	case <-time.After(timeout):
	}
	// A Go child prints every goroutine's stack at SIGQUIT and exits: the
	// log then says where the shutdown hangs.
	p.Cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.Exited:
	case <-time.After(5 * time.Second):
	}
	return fmt.Errorf("still running %v after SIGTERM (stacks at SIGQUIT in the log)\nlog:\n%s", timeout, p.Log)
}

// Kill9 sends SIGKILL, waits up to timeout for the child to be gone, and
// checks that the signal ended it: a child that had ended by itself, or
// crashed, is an error.
func (p *Process) Kill9(timeout time.Duration) error {
	if !p.Running() {
		return fmt.Errorf("ended by itself before the kill: %v\nlog:\n%s", p.Cmd.ProcessState, p.Log)
	}
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("SIGKILL: %v", err)
	}
	select {
	case <-p.Exited:
	case <-time.After(timeout):
		return fmt.Errorf("still running %v after SIGKILL", timeout)
	}
	if ws, ok := p.Cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		return fmt.Errorf("ended with %v, want killed by SIGKILL (did it crash by itself?)\nlog:\n%s", p.Cmd.ProcessState, p.Log)
	}
	return nil
}

// NewHTTPClient is a client for a child's API: keep-alive connections for
// up to idle concurrent requests, no compression.
func NewHTTPClient(timeout time.Duration, idle int) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			MaxIdleConns: idle, MaxIdleConnsPerHost: idle, IdleConnTimeout: 30 * time.Second, DisableCompression: true,
		},
	}
}

// WaitHealthy polls GET base/healthz until it answers 200 or timeout passes.
func WaitHealthy(c *http.Client, base string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := c.Get(base + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET /healthz on %s: %v", base, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Buffer is a bytes.Buffer safe for the goroutines that write into it (a
// command's logger) and the test that reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
