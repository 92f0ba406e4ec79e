package meter

import (
	"errors"
	"testing"
)

func TestReader_LEB128(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		bits int // 0 for u32
		want int64
		n    int   // bytes read
		err  error // nil when the value decodes
	}{
		{name: "u32 zero", in: []byte{0x00}, want: 0, n: 1},
		{name: "u32 padded zero", in: []byte{0x80, 0x80, 0x80, 0x80, 0x00}, want: 0, n: 5},
		{name: "u32 max", in: []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, want: 1<<32 - 1, n: 5},
		{name: "u32 unused bits set", in: []byte{0xff, 0xff, 0xff, 0xff, 0x1f}, err: ErrMalformed},
		{name: "u32 six bytes", in: []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, err: ErrMalformed},
		{name: "u32 truncated", in: []byte{0x80}, err: ErrMalformed},
		{name: "s32 minus one", in: []byte{0x7f}, bits: 32, want: -1, n: 1},
		{name: "s32 min", in: []byte{0x80, 0x80, 0x80, 0x80, 0x78}, bits: 32, want: -1 << 31, n: 5},
		{name: "s32 max", in: []byte{0xff, 0xff, 0xff, 0xff, 0x07}, bits: 32, want: 1<<31 - 1, n: 5},
		{name: "s32 unused bits not sign", in: []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, bits: 32, err: ErrMalformed},
		{name: "s32 padded minus one", in: []byte{0xff, 0x7f}, bits: 32, want: -1, n: 2},
		{name: "s33 empty block type", in: []byte{0x40}, bits: 33, want: -64, n: 1},
		{name: "s33 max", in: []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, bits: 33, want: 1<<32 - 1, n: 5},
		{name: "s33 overflow", in: []byte{0xff, 0xff, 0xff, 0xff, 0x1f}, bits: 33, err: ErrMalformed},
		{name: "s64 min", in: []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f}, bits: 64, want: -1 << 63, n: 10},
		{name: "s64 max", in: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00}, bits: 64, want: 1<<63 - 1, n: 10},
		{name: "s64 overflow", in: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, bits: 64, err: ErrMalformed},
		{name: "s64 eleven bytes", in: []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, bits: 64, err: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReader(tt.in, 0, len(tt.in))
			var got int64
			var err error
			if tt.bits == 0 {
				var v uint32
				v, err = r.u32("value")
				got = int64(v)
			} else {
				got, err = r.sleb(tt.bits, "value")
			}
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err=%v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || r.pos != tt.n {
				t.Errorf("got %d in %d bytes, want %d in %d", got, r.pos, tt.want, tt.n)
			}
		})
	}
}

func TestAppendLEB128(t *testing.T) {
	for _, v := range []int64{0, 1, -1, 63, 64, -64, -65, 127, 128, 1 << 31, -1 << 63, 1<<63 - 1} {
		b := appendS64(nil, v)
		r := newReader(b, 0, len(b))
		got, err := r.sleb(64, "value")
		if err != nil || got != v || r.pos != len(b) {
			t.Errorf("appendS64(%d)=% x decodes to %d, %v", v, b, got, err)
		}
	}
	for _, tt := range []struct {
		v    uint32
		size int
	}{{0, 1}, {1, 1}, {127, 1}, {128, 2}, {1<<32 - 1, 5}} {
		v := tt.v
		b := appendU32(nil, v)
		r := newReader(b, 0, len(b))
		got, err := r.u32("value")
		if err != nil || got != v || len(b) != tt.size {
			t.Errorf("appendU32(%d)=% x decodes to %d, %v", v, b, got, err)
		}
	}
}
