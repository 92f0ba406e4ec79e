//go:build unix

package uitest_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestBrowserJSClient runs jsclient.test.mjs: the JavaScript client
// (clients/js/edgesync.js) in Chromium, on a page of another origin, against
// an edgenode that allows that origin with --cors-origin and one that does
// not. It needs what TestBrowserUI needs, and skips or fails likewise.
func TestBrowserJSClient(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests start real processes and a browser: skipped in -short mode")
	}
	root := moduleRoot(t)
	node, err := exec.LookPath("node")
	ready := err == nil
	if _, err := os.Stat(chromiumPath); err != nil {
		ready = false
	}
	if _, err := os.Stat(filepath.Join(root, "web", "uitest", "node_modules", "playwright-core", "package.json")); err != nil {
		ready = false
	}
	if !ready {
		msg := "the JS client's browser test needs node, " + chromiumPath + " and web/uitest/node_modules (cd web/uitest && npm ci)"
		if os.Getenv("EDGESYNC_REQUIRE_BROWSER") == "1" {
			t.Fatal(msg + " (EDGESYNC_REQUIRE_BROWSER=1)")
		}
		t.Skip(msg + "; skipping (set EDGESYNC_REQUIRE_BROWSER=1 to fail instead)")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "github.com/edgesync/edgesync/cmd/edgenode")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build edgenode: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("web", "uitest", "jsclient.test.mjs"), "--bin", bin)
	cmd.Dir = root
	// Its own process group, ended whole on timeout: the browser and the
	// edges it started do not outlive the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil && cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	t.Logf("node web/uitest/jsclient.test.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("node web/uitest/jsclient.test.mjs: %v (the failed checks are listed above)", err)
	}
}
