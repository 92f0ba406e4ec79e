//go:build unix

// Package uitest_test runs the browser tests of the web UI (ui.test.mjs:
// playwright-core driving Debian's /usr/bin/chromium) against freshly built
// cloudhub and edgenode binaries.
//
// Needs node, /usr/bin/chromium and web/uitest/node_modules (cd web/uitest
// && npm ci). Without them the test skips, unless EDGESYNC_REQUIRE_BROWSER=1
// (CI), when it fails. EDGESYNC_SCREENSHOTS chooses where the screenshots go
// (default web/uitest/screenshots/).
package uitest_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const chromiumPath = "/usr/bin/chromium"

func TestBrowserUI(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests start real processes and a browser: skipped in -short mode")
	}
	root := moduleRoot(t)
	require := os.Getenv("EDGESYNC_REQUIRE_BROWSER") == "1"
	missing := func(what string) {
		msg := "browser tests need " + what
		if require {
			t.Fatal(msg + " (EDGESYNC_REQUIRE_BROWSER=1)")
		}
		t.Skip(msg + "; skipping (set EDGESYNC_REQUIRE_BROWSER=1 to fail instead)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node on PATH (apt-get install -y nodejs npm)")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		missing(chromiumPath + " (apt-get install -y chromium)")
	}
	if _, err := os.Stat(filepath.Join(root, "web", "uitest", "node_modules", "playwright-core", "package.json")); err != nil {
		missing("web/uitest/node_modules/playwright-core (cd web/uitest && npm ci)")
	}

	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator),
		"github.com/edgesync/edgesync/cmd/cloudhub", "github.com/edgesync/edgesync/cmd/edgenode")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build cloudhub edgenode: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("web", "uitest", "ui.test.mjs"), "--bin", bin)
	cmd.Dir = root
	// Its own process group: on timeout the script gets SIGTERM (it stops
	// the browser and the servers it started) and, if it is still there
	// 15s later, the whole group is killed, so nothing outlives the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			t.Log(sc.Text())
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err = cmd.Run()
	if err != nil && cmd.Process != nil {
		// The script failed or was stopped: no straggler of its group
		// (a server, the browser) survives it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	pw.Close()
	wg.Wait()
	switch {
	case ctx.Err() != nil:
		t.Fatalf("node web/uitest/ui.test.mjs: no result within 5 minutes: %v", err)
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 2 {
			t.Fatalf("node web/uitest/ui.test.mjs could not start (exit 2): see the log above")
		}
		t.Fatalf("node web/uitest/ui.test.mjs: %v (the failed steps are listed above)", err)
	}
}

// moduleRoot is the directory of go.mod (go env GOMOD), else ../.. from here.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if gomod := strings.TrimSpace(string(out)); err == nil && gomod != "" && gomod != os.DevNull {
		return filepath.Dir(gomod)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}
