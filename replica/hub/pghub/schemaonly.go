package pghub

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edgesync/edgesync/replica"
)

// Migrate applies the schema migrations to the database at url and writes
// nothing else: no hub id, no rows beyond what the migrations insert.
// cloudhub migrate builds the schema this way before it copies a hub in,
// so that the copy brings the hub id of the hub it moves.
func Migrate(ctx context.Context, url string, log *slog.Logger) error {
	s := New(Config{URL: url, Logger: log, MaxConns: 1})
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("%w: PostgreSQL URL: %v", replica.ErrInvalid, err)
	}
	pc.MaxConns = s.cfg.MaxConns
	if s.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer s.pool.Close()
	return s.migrate(ctx)
}
