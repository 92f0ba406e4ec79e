package bench

import (
	"fmt"
	"os"
	"path/filepath"
)

// SyncProbe times the disk alone: a write of a fixed size at the next
// offset of a preallocated file, then fdatasync, the two things a durable
// commit asks of the disk. The benchmarks run it between their steps, so
// that a report shows what the disk gave in the same minutes: on a shared
// VM an fsync's latency drifts by a factor of two, and every durable write
// figure with it.
type SyncProbe struct {
	f    *os.File
	buf  []byte
	off  int64
	span int64
}

// syncProbeSpan is the size of the probe's file: writes wrap around in it,
// overwriting blocks already allocated, as SQLite does in a WAL it has
// rewound.
const syncProbeSpan = 8 << 20

// NewSyncProbe creates the probe's file in dir; size is the bytes written
// before each sync (1..syncProbeSpan).
func NewSyncProbe(dir string, size int) (*SyncProbe, error) {
	if size <= 0 || size > syncProbeSpan {
		return nil, fmt.Errorf("sync probe: size %d: want 1..%d", size, syncProbeSpan)
	}
	f, err := os.OpenFile(filepath.Join(dir, "syncprobe"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	p := &SyncProbe{f: f, buf: make([]byte, size), span: syncProbeSpan - syncProbeSpan%int64(size)}
	for i := range p.buf {
		p.buf[i] = byte(i)
	}
	if _, err := f.WriteAt(make([]byte, syncProbeSpan), 0); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return p, nil
}

// Sync writes the next block and makes it durable.
func (p *SyncProbe) Sync() error {
	if _, err := p.f.WriteAt(p.buf, p.off); err != nil {
		return err
	}
	p.off = (p.off + int64(len(p.buf))) % p.span
	return fdatasync(p.f)
}

// Close closes the probe's file (the caller removes its dir).
func (p *SyncProbe) Close() error { return p.f.Close() }
