package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/edgesync/edgesync/internal/cli"
	"github.com/edgesync/edgesync/replica/hub/migrate"
)

// migrateCmd copies the SQLite hub of a data directory into an empty
// PostgreSQL database (replica/hub/migrate): progress on stderr, the
// verification table on stdout, exit 1 when verification fails.
func migrateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var dir, url string
	var every time.Duration
	fs := flag.NewFlagSet("cloudhub migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&dir, "data", "./cloudhub-data", "data directory of the SQLite hub to move (the hub must be stopped)")
	fs.StringVar(&url, "postgres", "", "the empty PostgreSQL database to move it into (postgres://user:password@host:port/db)")
	fs.DurationVar(&every, "progress-interval", migrate.DefaultProgressEvery, "how often to report progress within a table")
	if err := cli.ParseFlags(fs, args, "CLOUDHUB_"); err != nil {
		return err
	}
	if url == "" {
		return cli.UsageError("--postgres: want the URL of the PostgreSQL database to move the hub into")
	}
	if every <= 0 {
		return cli.UsageError(fmt.Sprintf("--progress-interval %v: want more than 0", every))
	}
	rep, err := migrate.Run(ctx, migrate.Config{Dir: dir, URL: url, Progress: stderr, ProgressEvery: every})
	if rep != nil {
		rep.Print(stdout)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "moved: start the hub with cloudhub serve --postgres <the same URL> --data %s\n", dir)
	token := filepath.Join(dir, "admin-token")
	switch _, serr := os.Stat(token); {
	case serr == nil:
		fmt.Fprintf(stdout, "the admin token stays in %s: keep --data %s, or pass it as --admin-token / CLOUDHUB_ADMIN_TOKEN\n", token, dir)
	case errors.Is(serr, os.ErrNotExist):
		fmt.Fprintln(stdout, "the hub's admin token was given to it (--admin-token / CLOUDHUB_ADMIN_TOKEN): give the same one")
	default:
		return serr
	}
	fmt.Fprintln(stdout, "dashboard sessions are not moved: log in again")
	return nil
}
