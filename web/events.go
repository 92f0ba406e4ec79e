package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// The pages' live updates: one Server-Sent Events stream per page, with
// "status" snapshots and the records that changed (web/ui/CONTRACT.md). A
// stream never queues: after each wake-up it reads what is new from its own
// position, and sends at most statusEvery a status.
const (
	statusEvery   = 250 * time.Millisecond // at most 4 status events a second
	statusAtLeast = 2 * time.Second
	eventsPage    = 200
)

// eventSource is what a page's stream reads.
type eventSource interface {
	// status is the snapshot sent as event "status".
	status(ctx context.Context) (any, error)
	// changes returns the records after pos, as (event name, data) pairs,
	// and the new position.
	changes(ctx context.Context, pos int64) ([]event, int64, error)
	// start is the position to stream from: the current end.
	start() int64
	changed() <-chan struct{}
	done() <-chan struct{}
}

type event struct {
	name string
	data any
}

// streamEvents serves an eventSource as SSE until the client leaves or the
// node stops.
func streamEvents(c echo.Context, src eventSource) error {
	ctx := c.Request().Context()
	w := c.Response()
	if !startSSE(w, ": edgesync events\nretry: 1000\n\n") {
		return nil
	}
	pos := src.start()
	var buf bytes.Buffer
	write := func(name string, v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		fmt.Fprintf(&buf, "event: %s\ndata: %s\n\n", name, data)
		return nil
	}
	sendStatus := func() error {
		st, err := src.status(ctx)
		if err != nil {
			return err
		}
		return write("status", st)
	}
	flush := func() bool {
		if buf.Len() == 0 {
			return true
		}
		_, err := w.Write(buf.Bytes())
		buf.Reset()
		w.Flush()
		return err == nil
	}
	if err := sendStatus(); err != nil || !flush() {
		return nil
	}
	tick := time.NewTicker(statusAtLeast)
	defer tick.Stop()
	last := time.Now()
	for {
		changed := src.changed()
		for {
			evs, next, err := src.changes(ctx, pos)
			if err != nil {
				return nil // the stream is open: nothing to report it with but its end
			}
			for _, ev := range evs {
				if err := write(ev.name, ev.data); err != nil {
					return nil
				}
			}
			pos = next
			if len(evs) < eventsPage {
				break
			}
			if !flush() {
				return nil
			}
		}
		if !flush() {
			return nil
		}
		select {
		case <-changed:
			// Throttle status snapshots; records above go out at once.
			if wait := statusEvery - time.Since(last); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return nil
				}
			}
		case <-tick.C:
		case <-ctx.Done():
			return nil
		case <-src.done():
			return nil
		}
		if err := sendStatus(); err != nil || !flush() {
			return nil
		}
		last = time.Now()
	}
}

// startSSE sends the headers of a Server-Sent Events stream and a first
// comment; false means the client is gone.
func startSSE(w *echo.Response, first string) bool {
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set(echo.HeaderCacheControl, "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, first); err != nil {
		return false
	}
	w.Flush()
	return true
}
