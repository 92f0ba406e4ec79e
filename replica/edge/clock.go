package edge

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/edgesync/edgesync/replica/sqlitestore"
	"github.com/edgesync/edgesync/replica/wire"
)

// The edge's clock for _ts.
//
// A local write's _ts is a hybrid logical clock in unix seconds: the
// device's clock (Config.Now) corrected by the offset last measured from a
// hub, but never less than the _ts this node issued last. So _ts never goes
// backwards on one node, across restarts and offline; the version id's
// counter, which grows with every write, orders a node's writes within one
// second. The offset is measured from the pong to every ping the sync
// client sends (right after the welcome, then with every heartbeat): the
// ping carries this node's clock, the hub's pong adds the hub's, and the
// offset is the hub's clock minus the midpoint of the round trip. It is
// kept in meta 'clock' and used while offline and after a restart until
// the next measurement.

// ClockStatus is what the node knows about its clock.
type ClockStatus struct {
	// OffsetMs is the hub's clock minus this node's, in milliseconds, as
	// last measured; 0 until MeasuredAt is set.
	OffsetMs int64 `json:"offsetMs"`
	// RTTMs is the round trip of that measurement, which bounds its error
	// (half of it).
	RTTMs int64 `json:"rttMs"`
	// MeasuredAt is when it was measured, unix milliseconds of the hub's
	// clock; 0: never in contact with a hub.
	MeasuredAt int64 `json:"measuredAt"`
}

// clockRecord is meta 'clock': the last measurement, and the last _ts
// issued as of change seq Seq (the writes after Seq raise it at load).
type clockRecord struct {
	ClockStatus
	TS  int64 `json:"ts"`
	Seq int64 `json:"seq"`
}

// clockResaveAfter is how long a measurement that changed little waits
// before it is stored again.
const clockResaveAfter = 5 * time.Minute

// clockResaveDelta is the change of offset that is stored at once.
const clockResaveDelta = 1000 // ms

// loadClock reads meta 'clock' and the newest _ts of the node's own writes
// recorded after it was saved.
func (r *Replica) loadClock(ctx context.Context, db *sql.DB) error {
	var raw string
	var rec clockRecord
	err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'clock'`).Scan(&raw)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("read clock: %w", err)
	default:
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			return fmt.Errorf("read clock: %w", err)
		}
	}
	var ts int64
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(ts), 0) FROM changes WHERE seq > ? AND origin = ? AND op != '`+OpOutcome+`'`,
		rec.Seq, r.nodeID).Scan(&ts); err != nil {
		return fmt.Errorf("read clock: %w", err)
	}
	r.hlc = max(rec.TS, ts)
	r.hlcPub.Store(r.hlc)
	st := rec.ClockStatus
	r.clock.Store(&st)
	r.clockSaved = st
	return nil
}

// nextTS issues the _ts of a local write (writer-owned): the corrected
// clock, never less than the last one issued.
func (r *Replica) nextTS() int64 {
	ms := r.cfg.Now().UnixMilli() + r.clock.Load().OffsetMs
	ts := ms / 1000
	if ms < 0 && ms%1000 != 0 {
		ts-- // floor
	}
	ts = max(ts, r.hlc)
	r.hlc = ts
	r.hlcPub.Store(ts)
	return ts
}

// Clock returns what the node knows about its clock.
func (r *Replica) Clock() ClockStatus { return *r.clock.Load() }

// ClockPing is the payload of a ping that measures the offset: this node's
// clock in unix milliseconds.
func (r *Replica) ClockPing() []byte {
	return strconv.AppendInt(nil, r.cfg.Now().UnixMilli(), 10)
}

// ObserveHubClock takes the payload of a pong from a hub: the ping's
// payload, a space and the hub's clock in unix milliseconds. A pong that is
// not an answer to a recent ClockPing (an older hub echoes the ping alone)
// is ignored. It reports whether the new offset should be stored
// (SaveClock): the first measurement since Open, one that moved by a
// second or more, or the first after a while.
func (r *Replica) ObserveHubClock(payload string) (measured, save bool) {
	sent, hub, ok := strings.Cut(payload, " ")
	if !ok || len(payload) > 64 {
		return false, false
	}
	t0, err0 := strconv.ParseInt(sent, 10, 64)
	th, err1 := strconv.ParseInt(hub, 10, 64)
	t1 := r.cfg.Now().UnixMilli()
	if err0 != nil || err1 != nil || t0 <= 0 || th <= 0 || t0 > t1 || t1-t0 > wire.PongWait.Milliseconds() {
		return false, false
	}
	st := ClockStatus{OffsetMs: th - (t0+t1)/2, RTTMs: t1 - t0, MeasuredAt: th}
	r.clock.Store(&st)
	r.clockMu.Lock()
	defer r.clockMu.Unlock()
	d := st.OffsetMs - r.clockSaved.OffsetMs
	return true, r.clockSaved.MeasuredAt == 0 || !r.clockSavedOpen || d >= clockResaveDelta || d <= -clockResaveDelta ||
		st.MeasuredAt-r.clockSaved.MeasuredAt >= clockResaveAfter.Milliseconds()
}

// SaveClock stores the last measurement and the last _ts issued in meta
// 'clock', durably.
func (r *Replica) SaveClock(ctx context.Context) error {
	st := r.Clock()
	err := r.submit(ctx, func(ctx context.Context) error {
		b, err := json.Marshal(clockRecord{ClockStatus: st, TS: r.hlc, Seq: r.seq})
		if err != nil {
			return err
		}
		if _, err := r.w.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('clock', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
			string(b)); err != nil {
			return sqlitestore.Wrote("store clock", err)
		}
		return nil
	}, nil)
	if err != nil {
		return fmt.Errorf("save clock: %w", err)
	}
	r.clockMu.Lock()
	r.clockSaved, r.clockSavedOpen = st, true
	r.clockMu.Unlock()
	return nil
}
