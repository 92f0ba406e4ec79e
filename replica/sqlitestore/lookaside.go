package sqlitestore

import (
	"unsafe"

	"modernc.org/libc"
	"modernc.org/libc/sys/types"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite's lookaside is a per-connection arena for the small, short-lived
// objects a statement needs (cursors, records being built, expression
// values); what does not fit goes to the process-wide allocator, which
// takes one global lock. Its default (40 slots of 1,200 bytes) leaves out
// the record of a 1 KiB document and runs out during a group commit, and in
// a process where a hub's and an edge's writers run at once (cloudhub demo,
// cloudhub bench) the two then queue on that lock: about 15% of the sync
// run's CPU went to it. 500 slots of 2 KiB took the sync run's CPU per
// document from 88.7 to 82.3 µs (ten alternating pairs; throughput +8%).
// It costs 1 MiB per open connection.
const (
	LookasideSlotSize = 2048
	LookasideSlots    = 500
)

// lookasideRC is SQLite's answer to the lookaside configuration, made once
// before any connection opens (SQLITE_OK, or SQLITE_MISUSE if something in
// the process initialized SQLite first; connections then get the default).
var lookasideRC = configureLookaside(LookasideSlotSize, LookasideSlots)

func configureLookaside(size, slots int32) int32 {
	tls := libc.NewTLS()
	defer tls.Close()
	va := libc.Xmalloc(tls, types.Size_t(2*unsafe.Sizeof(int64(0))))
	if va == 0 {
		return sqlite3.SQLITE_NOMEM
	}
	defer libc.Xfree(tls, va)
	return sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_LOOKASIDE, libc.VaList(va, size, slots))
}
