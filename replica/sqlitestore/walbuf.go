package sqlitestore

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite writes a WAL frame with two write calls, its 24-byte header and
// then its page, so a commit of 25 pages makes 50 pwrite system calls before
// its fsync, and each costs about 4 µs on a 2-CPU virtual machine: the edge's HTTP writes
// spent 0.3 ms of every 1.7 ms group commit in them.
//
// WALBufVFS is a VFS that gathers a connection's WAL writes in memory and
// hands them to the file in one write when SQLite next syncs the WAL (at
// every commit with synchronous=FULL, before the commit is published in the
// WAL index), reads a range of it, asks its size, truncates it or closes it.
// Everything else, and every other file, is SQLite's own unix VFS.
//
// It is only correct where every commit syncs the WAL: with
// synchronous=NORMAL a commit is published without a sync, and another
// connection could then read frames still in the writer's buffer. Open uses
// it only for the write connection of a DurabilityFull database. Nothing
// acknowledged depends on it: a write is durable after the fsync, which
// follows the gathered write, as it followed the separate ones.
const WALBufVFS = "edgesync-walbuf"

// walBufMax bounds the bytes gathered for one WAL; past it they are written
// and gathering starts again. A hub's group of 1,024 pushed documents makes
// about 2.5 MB of frames.
const walBufMax = 4 << 20

// walWriteMax is the most the unix VFS writes in one call: it masks a
// write's length to 17 bits (a write of 128 KiB would write nothing).
const walWriteMax = 0x1f000

// walHdrSize is the size of the part of a WAL's sqlite3_file that is ours:
// our io_methods pointer and the handle of the walFile. The unix VFS's own
// file follows it.
const walHdrSize = 16

type walFileHdr struct {
	methods uintptr
	handle  uintptr
}

// walFile is the state of one open WAL: the writes gathered, which cover
// the file's bytes [start, start+len(buf)).
type walFile struct {
	buf   []byte
	start int64
}

var (
	walBufOnce sync.Once
	walBufErr  error
	unixVFS    uintptr              // the VFS wrapped
	walVFS     sqlite3.Tsqlite3_vfs // registered as WALBufVFS
	walIO      sqlite3.Tsqlite3_io_methods

	// walGathered counts the WAL writes SQLite asked for, walWritten the
	// writes made to the file (for tests).
	walGathered, walWritten atomic.Int64

	walFilesMu sync.Mutex
	walFiles   = map[uintptr]*walFile{}
	walNext    uintptr
)

// registerWALBuf registers WALBufVFS once. It must run after
// configureLookaside: registering a VFS initializes SQLite, after which
// sqlite3_config is refused.
func registerWALBuf() error {
	walBufOnce.Do(func() { walBufErr = doRegisterWALBuf() })
	return walBufErr
}

func doRegisterWALBuf() error {
	tls := libc.NewTLS()
	defer tls.Close()
	unixVFS = sqlite3.Xsqlite3_vfs_find(tls, 0)
	if unixVFS == 0 {
		return fmt.Errorf("register %s: SQLite has no default VFS", WALBufVFS)
	}
	name, err := libc.CString(WALBufVFS)
	if err != nil {
		return fmt.Errorf("register %s: %w", WALBufVFS, err)
	}
	walVFS = *(*sqlite3.Tsqlite3_vfs)(cptr(unixVFS))
	walVFS.FpNext = 0
	walVFS.FzName = name
	walVFS.FszOsFile += walHdrSize
	setFn(&walVFS.FxOpen, walOpen)

	walIO.FiVersion = 1 // no shared memory or memory mapping: a WAL uses neither
	setFn(&walIO.FxClose, walClose)
	setFn(&walIO.FxRead, walRead)
	setFn(&walIO.FxWrite, walWrite)
	setFn(&walIO.FxTruncate, walTruncate)
	setFn(&walIO.FxSync, walSync)
	setFn(&walIO.FxFileSize, walFileSize)
	setFn(&walIO.FxLock, walLock)
	setFn(&walIO.FxUnlock, walUnlock)
	setFn(&walIO.FxCheckReservedLock, walCheckReservedLock)
	setFn(&walIO.FxFileControl, walFileControl)
	setFn(&walIO.FxSectorSize, walSectorSize)
	setFn(&walIO.FxDeviceCharacteristics, walDeviceCharacteristics)

	if rc := sqlite3.Xsqlite3_vfs_register(tls, uintptr(unsafe.Pointer(&walVFS)), 0); rc != sqlite3.SQLITE_OK {
		return fmt.Errorf("register %s: SQLite error %d", WALBufVFS, rc)
	}
	return nil
}

// cptr turns an address in SQLite's memory into a pointer.
func cptr(a uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&a)) }

// setFn stores a Go function in a C function pointer slot, the way the
// transpiled SQLite represents them.
func setFn[F any](slot *uintptr, f F) { *(*F)(unsafe.Pointer(slot)) = f }

// fn reads a C function pointer slot as a Go function.
func fn[F any](slot *uintptr) F { return *(*F)(unsafe.Pointer(slot)) }

// inner is the unix VFS's file inside one of ours, and its methods.
func inner(pFile uintptr) (uintptr, *sqlite3.Tsqlite3_io_methods) {
	p := pFile + walHdrSize
	return p, (*sqlite3.Tsqlite3_io_methods)(cptr((*sqlite3.Tsqlite3_file)(cptr(p)).FpMethods))
}

func walOf(pFile uintptr) *walFile {
	h := (*walFileHdr)(cptr(pFile)).handle
	walFilesMu.Lock()
	f := walFiles[h]
	walFilesMu.Unlock()
	return f
}

func walOpen(tls *libc.TLS, pVfs, zName, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	u := (*sqlite3.Tsqlite3_vfs)(cptr(unixVFS))
	open := fn[func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32](&u.FxOpen)
	if flags&sqlite3.SQLITE_OPEN_WAL == 0 {
		// Not a WAL: the unix VFS's file, in place, with its own methods.
		return open(tls, unixVFS, zName, pFile, flags, pOutFlags)
	}
	hdr := (*walFileHdr)(cptr(pFile))
	*hdr = walFileHdr{}
	rc := open(tls, unixVFS, zName, pFile+walHdrSize, flags, pOutFlags)
	if (*sqlite3.Tsqlite3_file)(cptr(pFile+walHdrSize)).FpMethods == 0 {
		// Nothing to close: SQLite calls xClose only when xOpen set methods.
		return rc
	}
	walFilesMu.Lock()
	walNext++
	walFiles[walNext] = &walFile{}
	hdr.handle = walNext
	walFilesMu.Unlock()
	hdr.methods = uintptr(unsafe.Pointer(&walIO))
	return rc
}

// flush writes the gathered bytes.
func (f *walFile) flush(tls *libc.TLS, pFile uintptr) int32 {
	if len(f.buf) == 0 {
		return sqlite3.SQLITE_OK
	}
	rc := writeThrough(tls, pFile, uintptr(unsafe.Pointer(&f.buf[0])), int64(len(f.buf)), f.start)
	f.buf = f.buf[:0]
	return rc
}

// writeThrough writes n bytes at addr to the file at off, in calls the unix
// VFS can take.
func writeThrough(tls *libc.TLS, pFile, addr uintptr, n, off int64) int32 {
	p, m := inner(pFile)
	write := fn[func(*libc.TLS, uintptr, uintptr, int32, int64) int32](&m.FxWrite)
	for done := int64(0); done < n; done += walWriteMax {
		walWritten.Add(1)
		if rc := write(tls, p, addr+uintptr(done), int32(min(walWriteMax, n-done)), off+done); rc != sqlite3.SQLITE_OK {
			return rc
		}
	}
	return sqlite3.SQLITE_OK
}

// overlaps reports whether [off, off+n) meets the gathered bytes.
func (f *walFile) overlaps(off, n int64) bool {
	return len(f.buf) > 0 && off < f.start+int64(len(f.buf)) && off+n > f.start
}

func walWrite(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	walGathered.Add(1)
	f := walOf(pFile)
	n := int64(iAmt)
	if len(f.buf) > 0 {
		end := f.start + int64(len(f.buf))
		// Gather a write that starts inside or right after what is
		// gathered (SQLite rewrites a frame in place when a transaction
		// changes its page again) and keeps it under the bound.
		if iOfst < f.start || iOfst > end || iOfst+n-f.start > walBufMax {
			if rc := f.flush(tls, pFile); rc != sqlite3.SQLITE_OK {
				return rc
			}
		}
	}
	if n > walBufMax {
		return writeThrough(tls, pFile, zBuf, n, iOfst)
	}
	if len(f.buf) == 0 {
		f.start = iOfst
	}
	at := iOfst - f.start
	if need := int(at + n); need > len(f.buf) {
		f.buf = slices.Grow(f.buf, need-len(f.buf))[:need]
	}
	copy(f.buf[at:], unsafe.Slice((*byte)(cptr(zBuf)), n))
	return sqlite3.SQLITE_OK
}

func walRead(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	if f := walOf(pFile); f.overlaps(iOfst, int64(iAmt)) {
		if rc := f.flush(tls, pFile); rc != sqlite3.SQLITE_OK {
			return rc
		}
	}
	p, m := inner(pFile)
	return fn[func(*libc.TLS, uintptr, uintptr, int32, int64) int32](&m.FxRead)(tls, p, zBuf, iAmt, iOfst)
}

// flushed writes a WAL's gathered bytes and returns the unix VFS's file and
// methods, for a method that must see the whole file.
func flushed(tls *libc.TLS, pFile uintptr) (uintptr, *sqlite3.Tsqlite3_io_methods, int32) {
	rc := walOf(pFile).flush(tls, pFile)
	p, m := inner(pFile)
	return p, m, rc
}

func walSync(tls *libc.TLS, pFile uintptr, flags int32) int32 {
	p, m, rc := flushed(tls, pFile)
	if rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fn[func(*libc.TLS, uintptr, int32) int32](&m.FxSync)(tls, p, flags)
}

func walTruncate(tls *libc.TLS, pFile uintptr, size int64) int32 {
	p, m, rc := flushed(tls, pFile)
	if rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fn[func(*libc.TLS, uintptr, int64) int32](&m.FxTruncate)(tls, p, size)
}

func walFileSize(tls *libc.TLS, pFile, pSize uintptr) int32 {
	p, m, rc := flushed(tls, pFile)
	if rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fn[func(*libc.TLS, uintptr, uintptr) int32](&m.FxFileSize)(tls, p, pSize)
}

func walClose(tls *libc.TLS, pFile uintptr) int32 {
	p, m, rc := flushed(tls, pFile)
	if crc := fn[func(*libc.TLS, uintptr) int32](&m.FxClose)(tls, p); rc == sqlite3.SQLITE_OK {
		rc = crc
	}
	walFilesMu.Lock()
	delete(walFiles, (*walFileHdr)(cptr(pFile)).handle)
	walFilesMu.Unlock()
	return rc
}

func walFileControl(tls *libc.TLS, pFile uintptr, op int32, pArg uintptr) int32 {
	p, m, rc := flushed(tls, pFile)
	if rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fn[func(*libc.TLS, uintptr, int32, uintptr) int32](&m.FxFileControl)(tls, p, op, pArg)
}

func walLock(tls *libc.TLS, pFile uintptr, lock int32) int32 {
	p, m := inner(pFile)
	return fn[func(*libc.TLS, uintptr, int32) int32](&m.FxLock)(tls, p, lock)
}

func walUnlock(tls *libc.TLS, pFile uintptr, lock int32) int32 {
	p, m := inner(pFile)
	return fn[func(*libc.TLS, uintptr, int32) int32](&m.FxUnlock)(tls, p, lock)
}

func walCheckReservedLock(tls *libc.TLS, pFile, pResOut uintptr) int32 {
	p, m := inner(pFile)
	return fn[func(*libc.TLS, uintptr, uintptr) int32](&m.FxCheckReservedLock)(tls, p, pResOut)
}

func walSectorSize(tls *libc.TLS, pFile uintptr) int32 {
	p, m := inner(pFile)
	return fn[func(*libc.TLS, uintptr) int32](&m.FxSectorSize)(tls, p)
}

func walDeviceCharacteristics(tls *libc.TLS, pFile uintptr) int32 {
	p, m := inner(pFile)
	return fn[func(*libc.TLS, uintptr) int32](&m.FxDeviceCharacteristics)(tls, p)
}
