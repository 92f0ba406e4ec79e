package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestSyncProbe(t *testing.T) {
	for _, size := range []int{0, -1, syncProbeSpan + 1} {
		if _, err := NewSyncProbe(t.TempDir(), size); err == nil {
			t.Errorf("size %d: no error", size)
		}
	}
	dir := t.TempDir()
	const size = 3 << 20 // the span holds two such writes; the third wraps
	p, err := NewSyncProbe(dir, size)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range 3 {
		if err := p.Sync(); err != nil {
			t.Fatalf("sync %d: %v", i, err)
		}
	}
	if p.off != size {
		t.Errorf("after three writes the next is at %d, want %d (wrapped)", p.off, size)
	}
	got, err := os.ReadFile(filepath.Join(dir, "syncprobe"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != syncProbeSpan {
		t.Errorf("file is %d bytes, want %d: the probe must overwrite, not grow", len(got), syncProbeSpan)
	}
	if !bytes.Equal(got[:size], p.buf) || !bytes.Equal(got[size:2*size], p.buf) {
		t.Error("the written blocks do not hold the probe's bytes")
	}
	if tail := got[2*size:]; bytes.Count(tail, []byte{0}) != len(tail) {
		t.Error("bytes past the last block were written")
	}
}

func TestLoopProbe(t *testing.T) {
	p, err := NewLoopProbe()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		p.buf[0] = byte(i)
		if err := p.RoundTrip(); err != nil {
			t.Fatalf("round trip %d: %v", i, err)
		}
		if p.buf[0] != byte(i) {
			t.Fatalf("round trip %d brought back %d", i, p.buf[0])
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.RoundTrip(); err == nil {
		t.Error("a round trip after Close succeeded")
	}
}
