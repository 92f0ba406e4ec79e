package meter

// reader decodes the primitive values of the WebAssembly binary format from a
// window of the module. Every read is bounds-checked: a read past the end of
// the window returns a truncation error and never panics.
type reader struct {
	b   []byte // the whole module
	pos int    // next byte to read, an offset in b
	end int    // end of the window being read
}

// newReader returns a reader of b[pos:end].
func newReader(b []byte, pos, end int) *reader {
	return &reader{b: b, pos: pos, end: end}
}

func (r *reader) remaining() int { return r.end - r.pos }

func (r *reader) truncated(what string) error {
	return errorAt(r.pos, ErrMalformed, "unexpected end of %s", what)
}

func (r *reader) readByte(what string) (byte, error) {
	if r.pos >= r.end {
		return 0, r.truncated(what)
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

func (r *reader) skip(n int, what string) error {
	if n < 0 || n > r.remaining() {
		return r.truncated(what)
	}
	r.pos += n
	return nil
}

// u32 reads an unsigned LEB128 value of at most 32 bits, in at most 5 bytes,
// as the spec requires: padding is allowed, unused bits of the last byte are not.
func (r *reader) u32(what string) (uint32, error) {
	start := r.pos
	var v uint32
	for i := 0; i < 5; i++ {
		c, err := r.readByte(what)
		if err != nil {
			return 0, err
		}
		if i == 4 && c&0xf0 != 0 {
			return 0, errorAt(start, ErrMalformed, "%s: LEB128 u32 overflow", what)
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, errorAt(start, ErrMalformed, "%s: LEB128 u32 overflow", what) // not reached
}

// sleb reads a signed LEB128 value of the given width (32, 33 or 64 bits) in
// at most ceil(bits/7) bytes; the unused bits of the last byte must repeat the
// sign bit.
func (r *reader) sleb(bits int, what string) (int64, error) {
	start := r.pos
	maxBytes := (bits + 6) / 7
	var v int64
	shift := 0
	for i := 0; i < maxBytes; i++ {
		c, err := r.readByte(what)
		if err != nil {
			return 0, err
		}
		if i == maxBytes-1 {
			if c&0x80 != 0 {
				return 0, errorAt(start, ErrMalformed, "%s: LEB128 s%d overflow", what, bits)
			}
			used := bits - 7*i // significant bits in this byte, 1 to 7
			g := int64(int8(c<<1) >> 1)
			if g < -(1<<(used-1)) || g >= 1<<(used-1) {
				return 0, errorAt(start, ErrMalformed, "%s: LEB128 s%d overflow", what, bits)
			}
			return v | g<<shift, nil
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if c&0x40 != 0 {
				v |= -1 << shift
			}
			return v, nil
		}
	}
	return 0, errorAt(start, ErrMalformed, "%s: LEB128 s%d overflow", what, bits) // not reached
}

// count reads the length of a vector whose elements take at least minSize
// bytes each, and refuses a length that the rest of the window cannot hold or
// that is over max.
func (r *reader) count(minSize int, max uint32, what string) (int, error) {
	start := r.pos
	n, err := r.u32(what + " count")
	if err != nil {
		return 0, err
	}
	if n > max {
		return 0, errorAt(start, ErrLimit, "%s count %d is over the limit of %d", what, n, max)
	}
	if uint64(n)*uint64(minSize) > uint64(r.remaining()) {
		return 0, errorAt(start, ErrMalformed, "%s count %d does not fit in the remaining %d bytes", what, n, r.remaining())
	}
	return int(n), nil
}

// name reads a name (a length-prefixed byte string) and returns its bytes.
func (r *reader) name(what string) ([]byte, error) {
	n, err := r.count(1, maxModuleSize, what+" length")
	if err != nil {
		return nil, err
	}
	s := r.b[r.pos : r.pos+n]
	r.pos += n
	return s, nil
}

// appendU32 appends the shortest LEB128 encoding of v.
func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// appendS64 appends the shortest signed LEB128 encoding of v.
func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
