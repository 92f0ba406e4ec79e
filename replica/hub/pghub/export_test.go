package pghub

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Pause stops the tier's heartbeat and listener without releasing the
// lease, as a hub that stalls (or is stopped with SIGSTOP) does.
func (t *Tier) Pause() {
	t.cancel()
	t.wg.Wait()
}

// BeginLocked begins a transaction on the store's connections that locks
// the lease row and then does nothing more, as a hub stopped in the middle
// of a lease round does.
func (s *Store) BeginLocked(ctx context.Context) (pgx.Tx, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM lease WHERE id = 1 FOR UPDATE`); err != nil {
		tx.Rollback(ctx)
		return nil, err
	}
	return tx, nil
}

// SessionName is the application_name of a tier hub's database sessions.
func SessionName(hub string) string { return sessionName(hub) }
