package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/internal/proctest"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
)

// runMigrate runs "cloudhub migrate" as a process and returns its exit
// code, stdout and stderr.
func runMigrate(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"migrate"}, args...)...)
	cmd.Env = proctest.ChildEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("cloudhub migrate: %v", err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// TestE2E_MigrateToPostgres: the real binary refuses to move a running
// hub; once the hub is stopped it moves it, with progress on stderr and
// the verification table on stdout; a hub started on PostgreSQL with the
// same data directory keeps its port, its admin token (saved in the data
// directory) and its edge, which resumes without a resync and gets the
// write it made meanwhile confirmed; a second migration into the same
// database is refused.
func TestE2E_MigrateToPostgres(t *testing.T) {
	hubBin, edgeBin := e2eBinaries(t)
	url := pgtest.Database(t)
	dir := t.TempDir()
	h := newE2ENode(t, "hub", "cloudhub listening", hubBin, dir, "--durability", "normal")
	h.start()
	h.listen = h.addr
	token, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatalf("the SQLite hub saved no admin token: %v", err)
	}
	h.auth = strings.TrimSpace(string(token))
	h.stop()
	h.start() // the API client now carries the token
	c := &e2eCluster{t: t, edgeBin: edgeBin, hub: h}
	h.call(http.MethodPut, "/api/v1/containers/docs", `{"partitionKey":"/pk"}`, http.StatusCreated, nil)
	for i := range 300 {
		h.call(http.MethodPost, "/api/v1/containers/docs/docs", fmt.Sprintf(`{"id":"d%03d","pk":"p%d"}`, i, i%4), http.StatusCreated, nil)
	}
	e := c.startEdge("e", c.registerEdge("e", nil))
	c.waitSynced(20*time.Second, e)
	before, err := h.hubStatus()
	if err != nil {
		t.Fatal(err)
	}

	code, _, stderr := runMigrate(t, hubBin, "--data", dir, "--postgres", url)
	if code != 1 || !strings.Contains(stderr, "hub database is in use") {
		t.Fatalf("migrate beside the running hub: exit %d, stderr:\n%s\nwant exit 1, the database in use", code, stderr)
	}
	h.stop()
	e2eWaitDisconnected(t, e)
	e.call(http.MethodPost, "/api/v1/containers/docs/docs", `{"id":"offline","pk":"p1"}`, http.StatusCreated, nil)

	code, stdout, stderr := runMigrate(t, hubBin, "--data", dir, "--postgres", url, "--progress-interval", "1ms")
	if code != 0 {
		t.Fatalf("migrate: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, w := range []string{"copy versions: 300/300 rows", "copy log: 300/300 rows", "verify items: 300/300 rows", "rows/s"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("progress (stderr) has no %q:\n%s", w, stderr)
		}
	}
	for _, w := range []string{"versions          300        300", "edges               1          1", "admin token stays in"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("report (stdout) has no %q:\n%s", w, stdout)
		}
	}
	if strings.Contains(stdout, "MISMATCH") {
		t.Errorf("report has a mismatch:\n%s", stdout)
	}

	pg := newE2ENode(t, "hub on postgres", "cloudhub listening", hubBin, dir, "--durability", "normal", "--postgres", url)
	pg.listen, pg.auth = h.listen, h.auth
	pg.start()
	c.hub = pg
	c.waitSynced(20*time.Second, e)
	after, err := pg.hubStatus()
	if err != nil {
		t.Fatal(err)
	}
	if after.HubID != before.HubID || after.LSN != before.LSN+1 {
		t.Fatalf("hub on PostgreSQL: id %s lsn %d, want %s at %d (the moved log and the offline write)", after.HubID, after.LSN, before.HubID, before.LSN+1)
	}
	if !strings.Contains(pg.log.String(), fmt.Sprintf("resume=%d", before.LSN)) {
		t.Errorf("the edge did not resume from LSN %d:\n%s", before.LSN, pg.log)
	}
	if n := len(pg.listDocs("docs")); n != 301 {
		t.Errorf("hub on PostgreSQL lists %d documents, want 301", n)
	}
	pg.stop()

	code, _, stderr = runMigrate(t, hubBin, "--data", dir, "--postgres", url)
	if code != 1 || !strings.Contains(stderr, "target database is not empty") || !strings.Contains(stderr, "log has 301 rows") {
		t.Fatalf("second migrate: exit %d, stderr:\n%s\nwant exit 1, the target not empty", code, stderr)
	}
}
