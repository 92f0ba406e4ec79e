package migrate

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// SetBeforeVerify runs f in the target's transaction between the copy and
// the verification, until restore.
func SetBeforeVerify(f func(ctx context.Context, tx pgx.Tx) error) (restore func()) {
	old := beforeVerify
	beforeVerify = f
	return func() { beforeVerify = old }
}
