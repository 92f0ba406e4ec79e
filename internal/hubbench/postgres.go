package hubbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgSchema creates a new schema in the database at base and returns a URL
// whose connections use it (search_path), and a function that drops it
// with everything in it.
func pgSchema(ctx context.Context, base string) (string, func() error, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, fmt.Errorf("--postgres: %w", err)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	schema := "cloudhub_bench_" + hex.EncodeToString(b[:])
	if err := pgExec(ctx, base, `CREATE SCHEMA `+schema); err != nil {
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop := func() error {
		ctx, cancel := closeCtx()
		defer cancel()
		if err := pgExec(ctx, base, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			return fmt.Errorf("drop schema %s: %w", schema, err)
		}
		return nil
	}
	return u.String(), drop, nil
}

func pgExec(ctx context.Context, url, q string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, q)
	return err
}

// pgServer describes the server at url for the report: its version and
// the settings that bear on commit cost.
func pgServer(ctx context.Context, url string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Sprintf("(unreachable: %v)", err)
	}
	defer conn.Close(context.Background())
	var version, fsync, sc string
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit')`).
		Scan(&version, &fsync, &sc); err != nil {
		return fmt.Sprintf("(settings unreadable: %v)", err)
	}
	return fmt.Sprintf("%s, fsync %s, synchronous_commit %s by default", version, fsync, sc)
}
