package pghub

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
)

// groupRows are the rows of one decided push of n new documents of 1 KiB,
// as the sequencer keeps them: n log records, n versions, n items.
func groupRows(g, n int, rnd *rand.Rand) *chunk {
	c := &chunk{}
	body := bytes.Repeat([]byte("x"), 1024)
	for i := range n {
		lsn := int64(g*n + i + 1)
		node := fmt.Sprintf("e-%016x", rnd.Uint64()%3)
		v := fmt.Sprintf("%s-%d", node, lsn)
		id := fmt.Sprintf("doc-%016x", rnd.Uint64())
		pk := "tenant-" + strconv.Itoa(rnd.IntN(50))
		c.logs = append(c.logs, hub.LogRecord{LSN: lsn, Container: "bench", ID: id, PK: pk, Op: "create", Version: v, Origin: node,
			TS: lsn, CRTS: lsn, Policy: "lww"})
		c.versions = append(c.versions, hub.VersionRecord{Version: v, Container: "bench", ID: id, PK: pk, Op: "create", Origin: node,
			TS: lsn, Body: body, Outcome: "confirmed", LSN: lsn})
		c.item(itemRow{container: "bench", id: id, pk: pk, version: v, lsn: lsn})
	}
	return c
}

// serverCPU is the CPU time, in nanoseconds, of the server process behind
// conn (the server must run on this machine).
func serverCPU(tb testing.TB, ctx context.Context, conn *pgx.Conn) func() int64 {
	var pid int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		tb.Fatal(err)
	}
	return func() int64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
		if err != nil {
			tb.Skipf("the server's CPU time: %v", err)
		}
		ns, _ := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
		return ns
	}
}

// walPosition is the server's WAL insert position in bytes. The WAL is the
// server's, shared by every database: read it over many groups, on a
// server doing little else.
func walPosition(tb testing.TB, ctx context.Context, conn *pgx.Conn) int64 {
	var n int64
	if err := conn.QueryRow(ctx, `SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// rowsVariant is a way of writing the rows, on a database of its own.
type rowsVariant struct {
	name string
	copy bool
	conn *pgx.Conn
	cpu  func() int64
	ns   int64
	lsn  int64
	wal  int64
}

// BenchmarkGroupRows writes groups of 256 new documents (log, versions and
// items rows) in transactions as the writer does, the heads row locked and
// updated, two ways, each on a database of its own: the log and versions
// rows sent by INSERT ... SELECT FROM unnest(...) in the batch or by COPY.
// The ways take turns group by group, so that they share the machine's
// moments; it reports the server process's CPU time per document of each
// (from /proc: the server must run on this machine) and the WAL written
// per document.
func BenchmarkGroupRows(b *testing.B) {
	ctx := context.Background()
	var vs []*rowsVariant
	for _, mode := range []string{"insert", "copy"} {
		s := New(Config{URL: pgtest.Database(b)})
		if err := s.Open(ctx, nil); err != nil {
			b.Fatal(err)
		}
		defer s.Close(ctx)
		conn, err := pgx.Connect(ctx, s.cfg.URL)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		presizeArrays(conn.TypeMap())
		vs = append(vs, &rowsVariant{name: mode, copy: mode == "copy", conn: conn, cpu: serverCPU(b, ctx, conn)})
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	const n = 256
	was := copyMinRows
	defer func() { copyMinRows = was }()
	for i := range b.N {
		for j := range vs {
			v := vs[j]
			if i%2 == 1 {
				v = vs[len(vs)-1-j] // every way goes first as often as last
			}
			c := groupRows(int(v.lsn)/n, n, rnd)
			w0 := walPosition(b, ctx, v.conn)
			before := v.cpu()
			tx, err := v.conn.Begin(ctx)
			if err != nil {
				b.Fatal(err)
			}
			var lsn, cseq, cid int64
			if err := tx.QueryRow(ctx, lockQuery).Scan(&lsn, &cseq, &cid); err != nil {
				b.Fatal(err)
			}
			copyMinRows = math.MaxInt
			if v.copy {
				copyMinRows = 1
			}
			var o sends
			c.queue(&o)
			v.lsn += n
			o.batch().Queue(`UPDATE heads SET lsn = $1 WHERE id = 1`, v.lsn)
			for _, st := range o.steps {
				if st.b == nil {
					err = st.copy.send(ctx, v.conn, nil, st.rows)
				} else {
					err = tx.SendBatch(ctx, st.b).Close()
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.Commit(ctx); err != nil {
				b.Fatal(err)
			}
			v.ns += v.cpu() - before
			v.wal += walPosition(b, ctx, v.conn) - w0
		}
	}
	for _, v := range vs {
		b.ReportMetric(float64(v.ns)/1e3/float64(b.N*n), v.name+"-µs/doc")
		b.ReportMetric(float64(v.wal)/float64(b.N*n), v.name+"-walB/doc")
	}
}
