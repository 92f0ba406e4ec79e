package hub

import (
	"context"
	"slices"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/query"
)

// indexBuildBatch is how many items one write transaction indexes while an
// index is built for a container's existing items: the sequencer's writes
// wait for one batch at most (a variable for tests).
var indexBuildBatch = 5000

// IndexedPaths returns the paths of a container's indexing policy whose
// index is built and that queries use, in policy order. A path the policy
// gained is built in the background, a batch of items per write
// transaction (5,000); until then queries read the whole container.
func (h *Hub) IndexedPaths(ctx context.Context, containerName string) ([]string, error) {
	if _, err := h.def(containerName); err != nil {
		return nil, err
	}
	return h.st.IndexedPaths(ctx, containerName)
}

// firstIndexChunk is how many entries an index scan reads first; each
// next read reads twice as many, up to QueryChunk.
const firstIndexChunk = 32

// maxIndexIDs bounds the ids an index scan collects to read its items in
// id order; a scan that selects more reads the whole container instead.
const maxIndexIDs = 1 << 20

// kickBuild wakes the index builder (a size-1 channel: kicks while it
// builds fold into one more pass).
func (h *Hub) kickBuild() {
	select {
	case h.buildKick <- struct{}{}:
	default:
	}
}

// indexBuilder builds the index paths a definition gained, for the items
// written before, outside the write that changed the definition (a build
// of a large container takes seconds). A failed build leaves its paths
// unbuilt, so queries scan, and is tried again at the next kick and at
// the next Open. On a tier every hub may build; a batch indexes what the
// items hold when it commits, and the writes made meanwhile are indexed
// by the store as they are made.
func (h *Hub) indexBuilder(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.buildKick:
		}
		if err := h.buildPending(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("build index", "err", err)
		}
	}
}

// buildPending builds every container's paths not yet built.
func (h *Hub) buildPending(ctx context.Context) error {
	names, err := h.st.IndexesToBuild(ctx)
	if err != nil {
		return err
	}
	for _, c := range names {
		if err := h.buildIndex(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// buildIndex indexes a container's items for its paths not yet built,
// indexBuildBatch items per write transaction, then marks them built.
func (h *Hub) buildIndex(ctx context.Context, name string) error {
	start := time.Now()
	after, done := "", 0
	for {
		var last string
		var n int
		err := h.submit(ctx, func(ctx context.Context, tx Tx) error {
			var err error
			last, n, err = tx.BuildIndex(ctx, name, after, indexBuildBatch)
			return err
		}, nil)
		if err != nil {
			return err
		}
		if last == "" {
			break
		}
		after = last
		done += n
		h.log.Info("building index", "container", name, "items", done)
	}
	h.log.Info("index built", "container", name, "items", done, "took", time.Since(start))
	return nil
}

// indexSource returns the built indexes of a container for a query, or
// nil. full is the container's full scan; emit passes an item on (or
// leaves it out).
func (h *Hub) indexSource(ctx context.Context, containerName string, full query.Source,
	emit func(it replica.Item, fn func([]byte) error) error) (*query.IndexSource, error) {
	paths, err := h.st.IndexedPaths(ctx, containerName)
	if err != nil || len(paths) == 0 {
		return nil, err
	}
	ix := &query.IndexSource{Paths: make([]query.IndexPath, 0, len(paths))}
	for _, p := range paths {
		names, err := replica.IndexPathNames(p)
		if err != nil {
			return nil, err
		}
		ix.Paths = append(ix.Paths, query.IndexPath{Path: p, Names: names})
	}
	// An ordered scan and a scan of one value read each item in the
	// statement that reads its index entry; a scan read by id reads the
	// ids first and the items later, which may have changed meanwhile.
	ix.Exact = func(s *query.IndexScan) bool { return s.Order != 0 || oneValue(s) }
	ix.Scan = func(ctx context.Context, s *query.IndexScan, fn func([]byte) error) error {
		if s.Order == 0 && !oneValue(s) {
			return h.scanByID(ctx, containerName, s, full, fn, emit)
		}
		// One value's entries are in id order (the index's key ends with
		// the id), the order of a full scan.
		// The first reads are short: a page of an ordered query often
		// ends after a few entries, and a server that plans the read
		// for QueryChunk rows may pick a plan that reads far more.
		var after *IndexPos
		for chunk := firstIndexChunk; ; chunk = min(2*chunk, QueryChunk) {
			read, err := h.st.IndexScan(ctx, containerName, s, after, chunk, func(it replica.Item, pos IndexPos) error {
				after = &pos
				return emit(it, fn)
			})
			if err != nil || read < chunk {
				return err
			}
		}
	}
	return ix, nil
}

func oneValue(s *query.IndexScan) bool { return len(s.Values) == 1 && s.Lo == nil && s.Hi == nil }

// scanByID reads the items an index scan selects in id order, as a full
// scan does: it collects their ids (at most maxIndexIDs, else it scans the
// whole container), sorts them and reads the items QueryChunk at a time.
func (h *Hub) scanByID(ctx context.Context, containerName string, s *query.IndexScan, full query.Source, fn func([]byte) error,
	emit func(it replica.Item, fn func([]byte) error) error) error {
	ids, all, err := h.st.IndexIDs(ctx, containerName, s, maxIndexIDs)
	if err != nil {
		return err
	}
	if !all {
		return full(ctx, fn)
	}
	slices.Sort(ids) // the stores order ids by their bytes
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), QueryChunk)]
		ids = ids[len(chunk):]
		if err := h.st.ItemsByID(ctx, containerName, chunk, func(it replica.Item) error { return emit(it, fn) }); err != nil {
			return err
		}
	}
	return nil
}
