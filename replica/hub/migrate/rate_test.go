package migrate_test

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub/migrate"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
	"github.com/edgesync/edgesync/replica/hub/sqlitehub"
)

var rateDocs = flag.Int("migrate.docs", 2000, "documents (1 KiB each) of the hub TestRun_Rate moves")

// TestRun_Rate moves a hub of -migrate.docs documents of 1 KiB and logs the
// copy's rate; docs/benchmarks.md has the figure for 100,000.
func TestRun_Rate(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	dir := t.TempDir()
	s := serveHub(t, sqlitehub.New(sqlitehub.Config{Dir: dir, Durability: "normal"}), dir+"/cache", nil)
	if _, _, err := s.h.PutContainer(ctx, replica.Container{Name: "docs", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 1000)
	const writers = 16
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := w; i < *rateDocs; i += writers {
				if _, err := s.h.Create(ctx, "docs", fmt.Appendf(nil, `{"id":"d%07d","pk":"p%d","pad":%q}`, i, i%64, pad)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s.close()
	rep, err := migrate.Run(ctx, migrate.Config{Dir: dir, URL: url})
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(3**rateDocs + 2); rep.Rows != want || rep.Heads.LSN != int64(*rateDocs) {
		t.Fatalf("moved %d rows up to LSN %d, want %d rows up to %d", rep.Rows, rep.Heads.LSN, want, *rateDocs)
	}
	var b strings.Builder
	rep.Print(&b)
	t.Logf("%d documents of 1 KiB:\n%s", *rateDocs, b.String())
}
