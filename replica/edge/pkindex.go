package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/sqlitestore"
)

// The partition key index (pk_ids) is caught up in batches, not at every
// write. An index on items (container, pk, id) costs a write one leaf of it,
// and with writes spread over many partition keys a group commit of 15
// writes dirtied about 10 of those leaves: more than half of the pages the
// commit wrote to the WAL. Caught up every Config.PKIndexLag changes
// (defaultPKIndexLag), each leaf is written once for many writes. In one
// process alternating the three, 32 writers took 51 µs per write with the
// index, 42 with batches and 40 with no index at all.
//
// pk_ids holds (container, pk, id) for every version recorded in changes up
// to the seq in meta 'pk_indexed'. An item's partition key is always that of
// one of its versions, so the items with partition key pk are among pk_ids'
// entries for pk and the versions after 'pk_indexed' with pk; a listing
// takes both, then keeps the items whose partition key is still pk (one
// re-created under another key leaves a stale entry behind). The catch-up
// runs on the writer at the end of any group that leaves the lag or more
// changes behind the index, in the group's transaction, so a reader's
// snapshot always has the index and the mark in step, and never more than
// lag-1 changes to scan past it.
const defaultPKIndexLag = 256

const pkIndexedKey = "pk_indexed"

// loadPKIndexed reads the index's mark.
func (r *Replica) loadPKIndexed(ctx context.Context, db *sql.DB) error {
	var v string
	err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, pkIndexedKey).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		r.pkIndexed = 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", pkIndexedKey, err)
	}
	if r.pkIndexed, err = strconv.ParseInt(v, 10, 64); err != nil {
		return fmt.Errorf("read %s %q: %w", pkIndexedKey, v, err)
	}
	return nil
}

// catchUpPKIndex is the writer's BeforeCommit: when the group leaves
// Config.PKIndexLag changes or more unindexed, it indexes them and moves the
// mark. Of this node's own writes only creates are indexed: a replace or a
// delete keeps the partition key of the live item it follows, whose entry
// comes from an earlier create or confirmed version (docs/architecture.md, Items forbids
// moving a live item to another key), so an update-heavy load adds nothing.
// The confirmed versions from the hub are all indexed: this node may not
// have seen the item before.
func (r *Replica) catchUpPKIndex(ctx context.Context) error {
	if r.seq-r.pkIndexed < int64(r.cfg.PKIndexLag) {
		return nil
	}
	if _, err := r.w.Exec(ctx, `INSERT OR IGNORE INTO pk_ids (container, pk, id)
		SELECT container, pk, id FROM changes WHERE seq > ?1 AND seq <= ?2 AND op != '`+OpOutcome+`'
			AND (tentative = 0 OR op = '`+replica.OpCreate+`') ORDER BY 1, 2, 3`,
		r.pkIndexed, r.seq); err != nil {
		return sqlitestore.Wrote("index partition keys", err)
	}
	if _, err := r.w.Exec(ctx, `INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		pkIndexedKey, strconv.FormatInt(r.seq, 10)); err != nil {
		return sqlitestore.Wrote("index partition keys", err)
	}
	r.pkIndexed = r.seq
	return nil
}

// listByPKQuery selects a page of the items of container ?1 with partition
// key ?2, after id ?3, at most ?4; join picks the version (local view or
// confirmed) and live drops what is deleted in it.
func listByPKQuery(join, live string) string {
	return itemFields + ` FROM (
			SELECT id FROM pk_ids WHERE container = ?1 AND pk = ?2 AND id > ?3
			UNION
			SELECT id FROM changes WHERE seq > (SELECT CAST(value AS INTEGER) FROM meta WHERE key = '` + pkIndexedKey + `')
				AND container = ?1 AND pk = ?2 AND id > ?3 AND op != '` + OpOutcome + `'
			ORDER BY 1
		) k JOIN items i ON i.container = ?1 AND i.id = k.id ` + join + `
		WHERE i.pk = ?2 AND ` + live + ` ORDER BY k.id LIMIT ?4`
}

// listByPK is List for one partition key. The candidates (ids from pk_ids
// and from the versions after the mark) come in id order from a compound
// select that SQLite merges lazily, so a page reads about as many entries
// as it returns, whatever the partition's size.
func (r *Replica) listByPK(ctx context.Context, containerName, pk string, opt ListOptions) (replica.Page, error) {
	limit, err := replica.PageLimit(opt.Limit)
	if err != nil {
		return replica.Page{}, err
	}
	after, err := replica.DecodeContinuation(continuationPrefix, opt.Continuation)
	if err != nil {
		return replica.Page{}, err
	}
	st := r.listPK
	if opt.Consistency == ConsistencyConfirmed {
		st = r.listPKConfirmed
	}
	rows, err := st.QueryContext(ctx, containerName, pk, after, limit+1)
	if err != nil {
		return replica.Page{}, fmt.Errorf("list items: %w", err)
	}
	items, next, err := replica.ScanPage(rows, limit, continuationPrefix, func(rows *sql.Rows) (replica.Item, error) { return scanItem(rows) })
	if err != nil {
		return replica.Page{}, err
	}
	return replica.Page{Items: items, Continuation: next}, nil
}
