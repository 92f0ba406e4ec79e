package sqlitestore

import (
	"testing"

	sqlite3 "modernc.org/sqlite/lib"
)

// TestLookasideConfigured: the lookaside configuration reached SQLite before
// any connection opened (it fails if something initializes SQLite first, for
// example a package that opens a database in its init).
func TestLookasideConfigured(t *testing.T) {
	if lookasideRC != sqlite3.SQLITE_OK {
		t.Fatalf("SQLITE_CONFIG_LOOKASIDE returned %d, want SQLITE_OK", lookasideRC)
	}
	// A second configuration, now that the first has run: SQLite is not
	// initialized until a connection opens, so it is still accepted.
	if rc := configureLookaside(LookasideSlotSize, LookasideSlots); rc != sqlite3.SQLITE_OK {
		t.Fatalf("configuring again before any open: %d", rc)
	}
	db, err := Open(t.Context(), t.TempDir()+"/x.db", Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Write.Exec(`CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	if rc := configureLookaside(LookasideSlotSize, LookasideSlots); rc != sqlite3.SQLITE_MISUSE {
		t.Fatalf("configuring after a connection opened: %d, want SQLITE_MISUSE (%d)", rc, sqlite3.SQLITE_MISUSE)
	}
}
