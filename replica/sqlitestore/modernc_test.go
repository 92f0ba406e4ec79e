package sqlitestore

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// These tests open connections, which initializes SQLite: the file sorts
// after lookaside_test.go, whose test needs SQLite not yet initialized.

// walbuf.go and lookaside.go reach into the Go that modernc.org/sqlite
// transpiles from SQLite's C, and into modernc.org/libc: struct layouts
// (sqlite3_vfs, sqlite3_io_methods, sqlite3_file), the way a C function
// pointer holds a Go function, the unix VFS's 17-bit write length, and how
// libc.VaList lays out variadic arguments. They were written and measured
// against these versions.
var internalsCheckedAgainst = map[string]string{
	"modernc.org/sqlite": "v1.62.0",
	"modernc.org/libc":   "v1.80.1",
}

// internalsAdvice is what a failure of these tests asks of the reader.
const internalsAdvice = `
walbuf.go (the WAL-gathering VFS) and lookaside.go (SQLITE_CONFIG_LOOKASIDE) use unsafe against the
internals of modernc.org/sqlite and modernc.org/libc. Before changing either version, or when these
checks fail:
  1. read the new lib/sqlite_<os>_<arch>.go and sqlite.go: Tsqlite3_vfs, Tsqlite3_io_methods,
     Tsqlite3_file, __ccgo_fp (a C function pointer is the data word of a Go func value),
     unixWrite's length mask (walWriteMax), and libc.VaList;
  2. fix walbuf.go/lookaside.go, then run go test -race ./replica/sqlitestore and the sync benchmark
     (docs/benchmarks.md) to see the gain still holds (docs/RATIONALE.md, "WAL write gathering");
  3. update internalsCheckedAgainst in modernc_test.go.
If the code cannot follow the library, drop it: delete walbuf.go and the "vfs" pragma in Open
(durability is unchanged, commits get slower), and lookaside.go (the default lookaside is used).`

// goModRequires reads the versions the module requires from its go.mod.
// Test binaries carry no dependency list in their build information, so
// the file is the record of what is built.
func goModRequires(t *testing.T) map[string]string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for range 10 { // the module root is a few levels up
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		dir = filepath.Dir(dir)
	}
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	req := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && strings.HasPrefix(fields[1], "v") {
			req[fields[0]] = fields[1]
		}
		if len(fields) >= 1 && fields[0] == "replace" {
			t.Fatalf("go.mod replaces a module (%s); check that it is not one of %v%s", sc.Text(), internalsCheckedAgainst, internalsAdvice)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return req
}

// TestInternals_Versions fails as soon as go.mod requires a version of
// modernc.org/sqlite or modernc.org/libc other than the ones walbuf.go and
// lookaside.go were written for, before anything can misbehave at run time.
func TestInternals_Versions(t *testing.T) {
	req := goModRequires(t)
	for mod, want := range internalsCheckedAgainst {
		if got := req[mod]; got != want {
			t.Errorf("go.mod requires %s %q; walbuf.go and lookaside.go were checked against %s", mod, got, want)
		}
	}
	if t.Failed() {
		t.Log(internalsAdvice)
	}
}

// TestInternals_Layout checks that the transpiled structs still have the C
// layout walbuf.go relies on: the fields it reads and sets sit where
// sqlite3.h puts them, and a file's methods pointer comes first, so that a
// walFileHdr can stand in front of the unix VFS's file.
func TestInternals_Layout(t *testing.T) {
	p := unsafe.Sizeof(uintptr(0))
	var vfs sqlite3.Tsqlite3_vfs
	var io sqlite3.Tsqlite3_io_methods
	var file sqlite3.Tsqlite3_file
	roundUp := func(n, to uintptr) uintptr { return (n + to - 1) / to * to }
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"sqlite3_vfs.iVersion", unsafe.Offsetof(vfs.FiVersion), 0},
		{"sqlite3_vfs.szOsFile", unsafe.Offsetof(vfs.FszOsFile), 4},
		{"sqlite3_vfs.pNext", unsafe.Offsetof(vfs.FpNext), roundUp(12, p)},
		{"sqlite3_vfs.zName", unsafe.Offsetof(vfs.FzName), roundUp(12, p) + p},
		{"sqlite3_vfs.xOpen", unsafe.Offsetof(vfs.FxOpen), roundUp(12, p) + 3*p},
		{"sqlite3_io_methods.iVersion", unsafe.Offsetof(io.FiVersion), 0},
		{"sqlite3_io_methods.xClose", unsafe.Offsetof(io.FxClose), p},
		{"sqlite3_io_methods.xRead", unsafe.Offsetof(io.FxRead), 2 * p},
		{"sqlite3_io_methods.xWrite", unsafe.Offsetof(io.FxWrite), 3 * p},
		{"sqlite3_io_methods.xTruncate", unsafe.Offsetof(io.FxTruncate), 4 * p},
		{"sqlite3_io_methods.xSync", unsafe.Offsetof(io.FxSync), 5 * p},
		{"sqlite3_io_methods.xFileSize", unsafe.Offsetof(io.FxFileSize), 6 * p},
		{"sqlite3_io_methods.xLock", unsafe.Offsetof(io.FxLock), 7 * p},
		{"sqlite3_io_methods.xUnlock", unsafe.Offsetof(io.FxUnlock), 8 * p},
		{"sqlite3_io_methods.xCheckReservedLock", unsafe.Offsetof(io.FxCheckReservedLock), 9 * p},
		{"sqlite3_io_methods.xFileControl", unsafe.Offsetof(io.FxFileControl), 10 * p},
		{"sqlite3_io_methods.xSectorSize", unsafe.Offsetof(io.FxSectorSize), 11 * p},
		{"sqlite3_io_methods.xDeviceCharacteristics", unsafe.Offsetof(io.FxDeviceCharacteristics), 12 * p},
		{"sqlite3_file.pMethods", unsafe.Offsetof(file.FpMethods), 0},
		{"sizeof(walFileHdr)", unsafe.Sizeof(walFileHdr{}), walHdrSize},
		{"walHdrSize is pointer-aligned", walHdrSize % p, 0},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	if t.Failed() {
		t.Log(internalsAdvice)
	}
}

// rawOpen opens a connection with SQLite's C API, as the driver does, so
// that the test can read what SQLite made of the configuration.
func rawOpen(t *testing.T, tls *libc.TLS, path, vfs string) uintptr {
	t.Helper()
	cPath, err := libc.CString(path)
	if err != nil {
		t.Fatal(err)
	}
	defer libc.Xfree(tls, cPath)
	var cVFS uintptr
	if vfs != "" {
		if cVFS, err = libc.CString(vfs); err != nil {
			t.Fatal(err)
		}
		defer libc.Xfree(tls, cVFS)
	}
	pDB := libc.Xmalloc(tls, 8)
	defer libc.Xfree(tls, pDB)
	rc := sqlite3.Xsqlite3_open_v2(tls, cPath, pDB, sqlite3.SQLITE_OPEN_READWRITE|sqlite3.SQLITE_OPEN_CREATE|sqlite3.SQLITE_OPEN_FULLMUTEX, cVFS)
	db := *(*uintptr)(cptr(pDB))
	if rc != sqlite3.SQLITE_OK {
		t.Fatalf("sqlite3_open_v2(%s, vfs %q): %d", path, vfs, rc)
	}
	t.Cleanup(func() { sqlite3.Xsqlite3_close(tls, db) })
	return db
}

func rawExec(t *testing.T, tls *libc.TLS, db uintptr, sql string) {
	t.Helper()
	cSQL, err := libc.CString(sql)
	if err != nil {
		t.Fatal(err)
	}
	defer libc.Xfree(tls, cSQL)
	if rc := sqlite3.Xsqlite3_exec(tls, db, cSQL, 0, 0, 0); rc != sqlite3.SQLITE_OK {
		t.Fatalf("%s: SQLite error %d", sql, rc)
	}
}

// TestInternals_LookasideReadsBack: a new connection's lookaside has the
// slots lookaside.go configured through libc.VaList, read back from
// SQLite's own connection struct.
func TestInternals_LookasideReadsBack(t *testing.T) {
	if lookasideRC != sqlite3.SQLITE_OK {
		t.Fatalf("SQLITE_CONFIG_LOOKASIDE returned %d, want SQLITE_OK", lookasideRC)
	}
	tls := libc.NewTLS()
	defer tls.Close()
	db := rawOpen(t, tls, filepath.Join(t.TempDir(), "l.db"), "")
	la := (*sqlite3.Tsqlite3)(cptr(db)).Flookaside
	// SQLite carves the arena into big slots of the configured size and
	// small slots of 128 bytes from part of it: the big slot's size and
	// the arena's size are what was asked.
	arena := uintptr(la.FpTrueEnd) - uintptr(la.FpStart)
	if got, want := int(la.FszTrue), LookasideSlotSize; got != want {
		t.Errorf("lookaside slot size %d, want %d", got, want)
	}
	if got, want := arena, uintptr(LookasideSlotSize*LookasideSlots); got != want {
		t.Errorf("lookaside arena %d bytes, want %d (%d slots of %d)", got, want, LookasideSlots, LookasideSlotSize)
	}
	if la.FbDisable != 0 {
		t.Errorf("lookaside disabled (%d)", la.FbDisable)
	}
	if t.Failed() {
		t.Log(internalsAdvice)
	}
}

// TestInternals_WALBufReadsBack: the VFS registered reads back as the unix
// VFS with room for walFileHdr, and a WAL opened through it is one of ours:
// its methods are walIO, its handle names a walFile, and the unix VFS's
// file follows the header.
func TestInternals_WALBufReadsBack(t *testing.T) {
	if err := registerWALBuf(); err != nil {
		t.Fatal(err)
	}
	tls := libc.NewTLS()
	defer tls.Close()
	cName, err := libc.CString(WALBufVFS)
	if err != nil {
		t.Fatal(err)
	}
	defer libc.Xfree(tls, cName)
	found := sqlite3.Xsqlite3_vfs_find(tls, cName)
	if found != uintptr(unsafe.Pointer(&walVFS)) {
		t.Fatalf("sqlite3_vfs_find(%q) = %#x, want the registered struct %p", WALBufVFS, found, &walVFS)
	}
	unix := (*sqlite3.Tsqlite3_vfs)(cptr(unixVFS))
	if got := libc.GoString(unix.FzName); got != "unix" {
		t.Errorf("default VFS %q, want unix", got)
	}
	if unix.FiVersion < 1 || unix.FszOsFile <= 0 || unix.FszOsFile > 4096 || unix.FmxPathname != 512 {
		t.Errorf("unix VFS reads back as iVersion %d, szOsFile %d, mxPathname %d; want >=1, (0, 4096], 512",
			unix.FiVersion, unix.FszOsFile, unix.FmxPathname)
	}
	if got, want := walVFS.FszOsFile, unix.FszOsFile+walHdrSize; got != want {
		t.Errorf("%s szOsFile %d, want %d", WALBufVFS, got, want)
	}

	db := rawOpen(t, tls, filepath.Join(t.TempDir(), "w.db"), WALBufVFS)
	rawExec(t, tls, db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t (x); INSERT INTO t VALUES (randomblob(5000))")
	pWAL := libc.Xmalloc(tls, 8)
	defer libc.Xfree(tls, pWAL)
	*(*uintptr)(cptr(pWAL)) = 0
	cMain, err := libc.CString("main")
	if err != nil {
		t.Fatal(err)
	}
	defer libc.Xfree(tls, cMain)
	if rc := sqlite3.Xsqlite3_file_control(tls, db, cMain, sqlite3.SQLITE_FCNTL_JOURNAL_POINTER, pWAL); rc != sqlite3.SQLITE_OK {
		t.Fatalf("SQLITE_FCNTL_JOURNAL_POINTER: %d", rc)
	}
	wal := *(*uintptr)(cptr(pWAL))
	if wal == 0 {
		t.Fatal("the database has no open WAL")
	}
	hdr := (*walFileHdr)(cptr(wal))
	if hdr.methods != uintptr(unsafe.Pointer(&walIO)) || walOf(wal) == nil {
		// Nothing behind the header can be trusted: stop here.
		t.Fatalf("the WAL's methods are %#x (want walIO %p), its handle %d (a walFile: %t)%s",
			hdr.methods, &walIO, hdr.handle, walOf(wal) != nil, internalsAdvice)
	}
	innerFile, m := inner(wal)
	if innerFile != wal+walHdrSize || m == nil || m.FxWrite == 0 || m.FxSync == 0 {
		t.Errorf("the unix VFS's file does not follow the header: file %#x (WAL %#x), methods %p", innerFile, wal, m)
	}
	if t.Failed() {
		t.Log(internalsAdvice)
	}
}
