package meter

// frame is an open block, loop, if or else; the function itself is the first.
type frame struct {
	op   byte  // opBlock, opLoop, opIf, opElse, or opEnd for the function
	site int32 // the site charged for the instructions of this frame
	open int32 // the enclosing site where the block or if was opened
}

// site is a place that charges fuel: a function entry, a loop header, or a
// join point (the start of an else arm, the code after the end of a block
// or if), where forward branches land. A site charges the instructions from
// it to the next site, so code that a forward branch skips is not charged,
// while every backward branch (to a loop header) and every call pays again.
type site struct {
	pos  int   // where the fuel code goes, an offset in the module
	cost int64 // instructions charged there
	join bool  // a join point: no charge is written when it costs nothing
	// into is, for a join point, the site where its block or if opened:
	// every path to the join point passed that site's charge since the
	// last loop header or call, so a small join point's cost can be
	// charged there instead (folded), saving a charge for a few
	// instructions at the price of charging them when skipped.
	into   int32
	folded bool
}

// foldBelow is the cost under which a join point is folded into the site
// where its block opened.
const foldBelow = 16

// Opcodes the decoder treats specially or writes.
const (
	opUnreachable  = 0x00
	opBlock        = 0x02
	opLoop         = 0x03
	opIf           = 0x04
	opElse         = 0x05
	opEnd          = 0x0b
	opBr           = 0x0c
	opBrIf         = 0x0d
	opBrTable      = 0x0e
	opCall         = 0x10
	opCallIndirect = 0x11
	opGlobalGet    = 0x23
	opGlobalSet    = 0x24
	opI32Const     = 0x41
	opI64Const     = 0x42
	opI32LeU       = 0x4d
	opI32Add       = 0x6a
	opI32Sub       = 0x6b
	opI64GeS       = 0x59
	opI64Sub       = 0x7d
	opI64Add       = 0x7c
	opI64LtS       = 0x53
	opI64ShrU      = 0x88
	opI64ExtendU   = 0xad
	opDrop         = 0x1a
	opSelect       = 0x1b
	opMemoryGrow   = 0x40
	opEmptyBlock   = 0x40
	opMiscPrefix   = 0xfc
	opSIMDPrefix   = 0xfd
)

// bodyCoder decodes function bodies and writes their instrumented form. Its
// slices are reused from one body to the next.
type bodyCoder struct {
	fuel       uint32 // index of the fuel global
	numGlobals uint32 // globals of the original module: code may use no other

	frames []frame
	sites  []site // the function entry first, then loops and join points in order

	blocks    int // blocks, loops and ifs of the body so far
	brTargets int // br_table targets of the body so far

	weights     []uint32 // stack weight of a call of each function
	typeWeights []uint32 // of a call_indirect of each type
	calls       []callSite
	memory      bool // the module has a memory: the refill leaves to the host with memory.grow
}

// callSite is a call in a function body: the depth global goes up by
// weight before it (at pos) and back down after it (at after). Or, with
// bulk set, a bulk memory or table instruction at pos (after == pos),
// charged for its size before it.
type callSite struct {
	pos, after int
	weight     uint32
	bulk       bool
}

// appendBody reads one function body (size, locals, expression) from r and
// appends its instrumented form to w.
func (c *bodyCoder) appendBody(w []byte, r *reader) ([]byte, error) {
	start := r.pos
	size, err := r.u32("function body size")
	if err != nil {
		return nil, err
	}
	if int64(size) > int64(r.remaining()) {
		return nil, errorAt(start, ErrMalformed, "body of %d bytes overruns the code section", size)
	}
	if size > MaxBodyBytes {
		return nil, errorAt(start, ErrLimit, "function body of %d bytes, over the limit of %d", size, MaxBodyBytes)
	}
	body := newReader(r.b, r.pos, r.pos+int(size))
	r.pos = body.end

	localsAt := body.pos
	groups, err := body.count(2, maxModuleSize, "local declaration")
	if err != nil {
		return nil, err
	}
	var numLocals uint64
	for range groups {
		n, err := body.u32("local count")
		if err != nil {
			return nil, err
		}
		numLocals += uint64(n)
		if err := valueType(body); err != nil {
			return nil, err
		}
	}
	if numLocals > maxLocals {
		return nil, errorAt(localsAt, ErrLimit, "%d locals, over the limit of %d", numLocals, maxLocals)
	}

	if err := c.expr(body, true); err != nil {
		return nil, err
	}
	// Fold small join points, the last first, so that a chain of them
	// ends in the first site that is not folded.
	for i := len(c.sites) - 1; i > 0; i-- {
		if s := &c.sites[i]; s.join && s.cost > 0 && s.cost < foldBelow {
			s.folded = true
			c.sites[s.into].cost += s.cost
		}
	}
	if body.remaining() != 0 {
		return nil, errorAt(body.pos, ErrMalformed, "%d bytes after the end of the function body", body.remaining())
	}

	// Write the body into w after room for its size, then move it into place.
	const sizeRoom = 5
	sizeAt := len(w)
	w = append(w, make([]byte, sizeRoom)...)
	bodyAt := len(w)
	// Sites and calls are in the order of their positions: merge them.
	from, ci := localsAt, 0
	flushCalls := func(upTo int) {
		for ; ci < len(c.calls) && c.calls[ci].after <= upTo; ci++ {
			cs := c.calls[ci]
			w = append(w, r.b[from:cs.pos]...)
			if cs.bulk {
				w = c.appendBulkCharge(w)
				from = cs.pos
				continue
			}
			w = c.appendDepthUp(w, cs.weight)
			w = append(w, r.b[cs.pos:cs.after]...)
			w = c.appendDepthDown(w, cs.weight)
			from = cs.after
		}
	}
	for _, s := range c.sites {
		if s.join && (s.cost == 0 || s.folded) {
			continue // nothing runs there, or charged where its block opened
		}
		flushCalls(s.pos)
		w = append(w, r.b[from:s.pos]...)
		from = s.pos
		w = c.appendCharge(w, max(s.cost, 1))
	}
	flushCalls(body.end)
	w = append(w, r.b[from:body.end]...)

	n := len(w) - bodyAt
	if int64(n) > 1<<32-1 {
		return nil, errorAt(start, ErrLimit, "instrumented body would be over 4 GiB")
	}
	var buf [sizeRoom]byte
	enc := appendU32(buf[:0], uint32(n))
	copy(w[sizeAt:], enc)
	copy(w[sizeAt+len(enc):], w[bodyAt:])
	return w[:len(w)-(sizeRoom-len(enc))], nil
}

// appendCharge appends the code that charges cost:
//
//	global.get $fuel; i64.const cost; i64.sub; global.set $fuel
//	global.get $fuel; i64.const 0; i64.ge_s
//	if else (refill) end
//
// It leaves the operand stack and the branch depths of the code around it as
// they were. The refill is in the else arm so that wazero's compiler, which
// lays out blocks in reverse post-order, makes the path that goes on the
// fall-through: with `i64.lt_s; if (refill) end` it puts the refill inline
// and jumps over it on every pass, and the one-add loop of
// BenchmarkMeteredLoop/sum took 2.0 times as long as unmetered instead of 1.5.
// wazero keeps the value that global.set stored in a register for the
// global.get that follows, so the second read costs no load.
func (c *bodyCoder) appendCharge(w []byte, cost int64) []byte {
	w = c.appendGlobal(w, opGlobalGet, globalFuel)
	w = append(w, opI64Const)
	w = appendS64(w, cost)
	w = append(w, opI64Sub)
	return c.appendCheck(w)
}

// appendBulkCharge appends, before a bulk memory or table instruction,
// the code that charges its size (the i32 on top of the operand stack):
// one unit per BulkUnit bytes or elements, rounded down.
//
//	global.set $scratch; global.get $fuel
//	global.get $scratch; i64.extend_i32_u; i64.const log2(BulkUnit); i64.shr_u
//	i64.sub; (the check of appendCharge); global.get $scratch
func (c *bodyCoder) appendBulkCharge(w []byte) []byte {
	w = c.appendGlobal(w, opGlobalSet, globalScratch)
	w = c.appendGlobal(w, opGlobalGet, globalFuel)
	w = c.appendGlobal(w, opGlobalGet, globalScratch)
	w = append(w, opI64ExtendU, opI64Const)
	w = appendS64(w, bulkShift)
	w = append(w, opI64ShrU, opI64Sub)
	w = c.appendCheck(w)
	return c.appendGlobal(w, opGlobalGet, globalScratch)
}

// appendCheck appends the code that stores the new fuel (on the operand
// stack) and refills it from the reserve when it went negative:
//
//	global.set $fuel; global.get $fuel; i64.const 0; i64.ge_s
//	if else
//	  i32.const 0; memory.grow; drop         ;; leave to the host (with a memory)
//	  global.get $stop; if unreachable end   ;; the host stops the call
//	  ;; fuel, reserve = min(fuel+reserve, Slice), the rest
//	  global.get $fuel; global.get $reserve; i64.add; global.set $reserve
//	  global.get $reserve; i64.const Slice; global.get $reserve; i64.const Slice; i64.lt_s
//	  select; global.set $fuel
//	  global.get $reserve; global.get $fuel; i64.sub; global.set $reserve
//	  global.get $fuel; i64.const 0; i64.lt_s; if unreachable end  ;; out of fuel
//	end
func (c *bodyCoder) appendCheck(w []byte) []byte {
	w = c.appendGlobal(w, opGlobalSet, globalFuel)
	w = c.appendGlobal(w, opGlobalGet, globalFuel)
	w = append(w, opI64Const, 0x00, opI64GeS, opIf, opEmptyBlock, opElse)
	if c.memory {
		w = append(w, opI32Const, 0x00, opMemoryGrow, 0x00, opDrop)
	}
	w = c.appendGlobal(w, opGlobalGet, globalStop)
	w = append(w, opIf, opEmptyBlock, opUnreachable, opEnd)
	w = c.appendGlobal(w, opGlobalGet, globalFuel)
	w = c.appendGlobal(w, opGlobalGet, globalReserve)
	w = append(w, opI64Add)
	w = c.appendGlobal(w, opGlobalSet, globalReserve)
	for range 2 {
		w = c.appendGlobal(w, opGlobalGet, globalReserve)
		w = append(w, opI64Const)
		w = appendS64(w, Slice)
	}
	w = append(w, opI64LtS, opSelect)
	w = c.appendGlobal(w, opGlobalSet, globalFuel)
	w = c.appendGlobal(w, opGlobalGet, globalReserve)
	w = c.appendGlobal(w, opGlobalGet, globalFuel)
	w = append(w, opI64Sub)
	w = c.appendGlobal(w, opGlobalSet, globalReserve)
	w = c.appendGlobal(w, opGlobalGet, globalFuel)
	return append(w, opI64Const, 0x00, opI64LtS, opIf, opEmptyBlock, opUnreachable, opEnd, opEnd)
}

// appendGlobal appends global.get or global.set (op) of one of the added
// globals.
func (c *bodyCoder) appendGlobal(w []byte, op byte, g uint32) []byte {
	return appendU32(append(w, op), c.fuel+g)
}

// appendDepthUp appends the code that adds weight to the depth global
// before a call, trapping when that takes it over MaxDepth (the global is
// left over it, for the host to see):
//
//	global.get $depth; i32.const weight; i32.add; global.set $depth
//	global.get $depth; i32.const MaxDepth; i32.le_u
//	if else unreachable end
//
// Like appendCharge, it leaves the operand stack (the call's arguments) as
// it was.
func (c *bodyCoder) appendDepthUp(w []byte, weight uint32) []byte {
	depth := c.fuel + globalDepth
	w = append(w, opGlobalGet)
	w = appendU32(w, depth)
	w = append(w, opI32Const)
	w = appendS64(w, int64(weight))
	w = append(w, opI32Add, opGlobalSet)
	w = appendU32(w, depth)
	w = append(w, opGlobalGet)
	w = appendU32(w, depth)
	w = append(w, opI32Const)
	w = appendS64(w, MaxDepth)
	return append(w, opI32LeU, opIf, opEmptyBlock, opElse, opUnreachable, opEnd)
}

// appendDepthDown appends the code that takes weight back after a call:
//
//	global.get $depth; i32.const weight; i32.sub; global.set $depth
func (c *bodyCoder) appendDepthDown(w []byte, weight uint32) []byte {
	depth := c.fuel + globalDepth
	w = append(w, opGlobalGet)
	w = appendU32(w, depth)
	w = append(w, opI32Const)
	w = appendS64(w, int64(weight))
	w = append(w, opI32Sub, opGlobalSet)
	return appendU32(w, depth)
}

// expr decodes the instructions of an expression up to and including the
// `end` that closes it. With record set (a function body), it records the
// sites and their costs in c.sites; otherwise (a constant expression) it only
// checks the encoding.
func (c *bodyCoder) expr(r *reader, record bool) error {
	c.frames = append(c.frames[:0], frame{op: opEnd, site: 0})
	c.sites = append(c.sites[:0], site{pos: r.pos})
	c.blocks, c.brTargets = 0, 0
	c.calls = c.calls[:0]
	for len(c.frames) > 0 {
		at := r.pos
		op, err := r.readByte("function body (missing end)")
		if err != nil {
			return err
		}
		top := &c.frames[len(c.frames)-1]
		charged := top.site
		switch op {
		case opEnd:
			closed, open := top.op, top.open
			c.frames = c.frames[:len(c.frames)-1]
			if len(c.frames) > 0 && closed != opLoop {
				// A join point: branches to a block and the then arm of an
				// if land here. (Code after a loop is reached only by
				// falling out of it: it stays with the enclosing site.)
				site, err := c.newSite(r.pos, at, true, open)
				if err != nil {
					return err
				}
				c.frames[len(c.frames)-1].site = site
			}
			continue
		case opElse:
			if top.op != opIf {
				return errorAt(at, ErrMalformed, "else without if")
			}
			top.op = opElse
			site, err := c.newSite(r.pos, at, true, top.open)
			if err != nil {
				return err
			}
			top.site = site
			continue
		case opBlock, opIf:
			if err := c.open(at); err != nil {
				return err
			}
			if err := blockType(r); err != nil {
				return err
			}
			c.frames = append(c.frames, frame{op: op, site: charged, open: charged})
		case opLoop:
			if err := c.open(at); err != nil {
				return err
			}
			if err := blockType(r); err != nil {
				return err
			}
			site, err := c.newSite(r.pos, at, false, 0)
			if err != nil {
				return err
			}
			c.frames = append(c.frames, frame{op: op, site: site})
		case opBr, opBrIf:
			depth, err := r.u32("branch depth")
			if err != nil {
				return err
			}
			if int64(depth) >= int64(len(c.frames)) {
				return errorAt(at, ErrMalformed, "branch depth %d out of range", depth)
			}
		case opBrTable:
			n, err := r.count(1, maxModuleSize, "br_table")
			if err != nil {
				return err
			}
			if c.brTargets += n + 1; c.brTargets > MaxBrTableTargets {
				return errorAt(at, ErrLimit, "br_table targets of %d in one function, over the limit of %d", c.brTargets, MaxBrTableTargets)
			}
			for range n + 1 {
				lstart := r.pos
				depth, err := r.u32("branch depth")
				if err != nil {
					return err
				}
				if int64(depth) >= int64(len(c.frames)) {
					return errorAt(lstart, ErrMalformed, "branch depth %d out of range", depth)
				}
			}
		case opCall, opCallIndirect:
			idx, err := r.u32("call index")
			if err != nil {
				return err
			}
			if op == opCallIndirect {
				if _, err := r.u32("table index"); err != nil {
					return err
				}
			}
			if record {
				var weight uint32
				switch {
				case op == opCall && int64(idx) < int64(len(c.weights)):
					weight = c.weights[idx]
				case op == opCallIndirect && int64(idx) < int64(len(c.typeWeights)):
					weight = c.typeWeights[idx]
				default:
					return errorAt(at, ErrMalformed, "call of function or type %d: out of range", idx)
				}
				c.calls = append(c.calls, callSite{pos: at, after: r.pos, weight: weight})
			}
		case opMiscPrefix:
			sub, err := miscImmediates(r, at)
			if err != nil {
				return err
			}
			if record && bulk(sub) {
				c.calls = append(c.calls, callSite{pos: at, after: at, bulk: true})
			}
			if sub == 15 { // table.grow
				c.sites[charged].cost += GrowFuel - 1
			}
		case opGlobalGet, opGlobalSet:
			idx, err := r.u32("global index")
			if err != nil {
				return err
			}
			if idx >= c.numGlobals {
				return errorAt(at, ErrMalformed, "global index %d out of range", idx)
			}
		default:
			if err := immediates(r, op, at); err != nil {
				return err
			}
			if op == opMemoryGrow {
				c.sites[charged].cost += GrowFuel - 1
			}
		}
		c.sites[charged].cost++
	}
	if !record {
		c.sites = c.sites[:0]
	}
	return nil
}

// open counts a block, loop or if opened at at against the limits on
// nesting and on blocks per function.
func (c *bodyCoder) open(at int) error {
	if len(c.frames) > MaxNesting { // the function's own frame is not a block
		return errorAt(at, ErrLimit, "blocks nested more than %d deep", MaxNesting)
	}
	if c.blocks++; c.blocks > MaxBlocks {
		return errorAt(at, ErrLimit, "more than %d blocks, loops and ifs in one function", MaxBlocks)
	}
	return nil
}

// newSite records a site at pos (the instruction at at opened it).
func (c *bodyCoder) newSite(pos, at int, join bool, into int32) (int32, error) {
	if len(c.sites) >= 1<<31-1 {
		return 0, errorAt(at, ErrLimit, "too many loops and blocks in one function")
	}
	c.sites = append(c.sites, site{pos: pos, join: join, into: into})
	return int32(len(c.sites) - 1), nil
}

// blockType reads the type of a block, loop or if: the empty type 0x40, a
// value type, or a type index (a non-negative s33).
func blockType(r *reader) error {
	start := r.pos
	v, err := r.sleb(33, "block type")
	if err != nil {
		return err
	}
	switch v {
	case -0x40, -0x01, -0x02, -0x03, -0x04, -0x05, -0x10, -0x11: // empty i32 i64 f32 f64 v128 funcref externref
		return nil
	}
	if v < 0 {
		return errorAt(start, ErrUnsupported, "block type %#x", byte(v&0x7f))
	}
	return nil
}

// immediates reads the immediates of every instruction that expr does not
// handle itself, and refuses unknown and unsupported opcodes.
func immediates(r *reader, op byte, at int) error {
	switch {
	case op == 0x00 || op == 0x01 || op == 0x0f || op == 0x1a || op == 0x1b || op == 0xd1 ||
		0x45 <= op && op <= 0xc4: // unreachable nop return drop select ref.is_null, numeric, sign extension
		return nil
	case 0x20 <= op && op <= 0x22, op == 0x25, op == 0x26, op == 0xd2: // locals, table.get/set, ref.func
		_, err := r.u32("index")
		return err
	case 0x28 <= op && op <= 0x3e: // loads and stores
		return memarg(r)
	case op == 0x3f || op == 0x40: // memory.size, memory.grow
		return zeroByte(r, "memory index")
	case op == 0x41:
		_, err := r.sleb(32, "i32.const")
		return err
	case op == 0x42:
		_, err := r.sleb(64, "i64.const")
		return err
	case op == 0x43:
		return r.skip(4, "f32.const")
	case op == 0x44:
		return r.skip(8, "f64.const")
	case op == 0x1c: // select t*
		n, err := r.count(1, maxModuleSize, "select type")
		if err != nil {
			return err
		}
		if n != 1 {
			return errorAt(at, ErrMalformed, "typed select with %d types, want 1", n)
		}
		return valueType(r)
	case op == 0xd0: // ref.null t
		tstart := r.pos
		t, err := r.readByte("reference type")
		if err != nil {
			return err
		}
		if t != 0x70 && t != 0x6f {
			return errorAt(tstart, ErrUnsupported, "ref.null type %#x", t)
		}
		return nil
	case op == opMiscPrefix:
		_, err := miscImmediates(r, at)
		return err
	case op == opSIMDPrefix:
		return simdImmediates(r, at)
	case op == 0xfe:
		return errorAt(at, ErrUnsupported, "atomic opcode 0xfe (threads)")
	case 0x06 <= op && op <= 0x0a, op == 0x18, op == 0x19, op == 0x1f:
		return errorAt(at, ErrUnsupported, "exception handling opcode %#x", op)
	case op == 0x12, op == 0x13:
		return errorAt(at, ErrUnsupported, "tail call opcode %#x", op)
	case op == 0x14, op == 0x15, 0xd3 <= op && op <= 0xd6:
		return errorAt(at, ErrUnsupported, "typed function references opcode %#x", op)
	}
	return errorAt(at, ErrUnsupported, "unknown opcode %#x", op)
}

// memarg reads the alignment and offset of a memory instruction.
func memarg(r *reader) error {
	start := r.pos
	align, err := r.u32("memory alignment")
	if err != nil {
		return err
	}
	if align&0x40 != 0 {
		return errorAt(start, ErrUnsupported, "memory index in memarg (multiple memories)")
	}
	_, err = r.u32("memory offset")
	return err
}

// zeroByte reads a reserved memory index, which must be the single byte 0x00.
func zeroByte(r *reader, what string) error {
	start := r.pos
	b, err := r.readByte(what)
	if err != nil {
		return err
	}
	if b != 0 {
		return errorAt(start, ErrUnsupported, "%s %#x, want 0x00 (multiple memories)", what, b)
	}
	return nil
}

// bulk reports whether the 0xfc-prefixed instruction sub copies or fills
// as many bytes or elements as its last operand says: memory.init,
// memory.copy, memory.fill, table.init, table.copy, table.fill.
func bulk(sub uint32) bool {
	switch sub {
	case 8, 10, 11, 12, 14, 17:
		return true
	}
	return false
}

// miscImmediates reads a 0xfc-prefixed instruction and returns its
// sub-opcode.
func miscImmediates(r *reader, at int) (uint32, error) {
	sub, err := r.u32("0xfc opcode")
	if err != nil {
		return 0, err
	}
	switch sub {
	case 0, 1, 2, 3, 4, 5, 6, 7: // saturating truncations
		return sub, nil
	case 8: // memory.init data memory
		if _, err := r.u32("data index"); err != nil {
			return 0, err
		}
		return sub, zeroByte(r, "memory index")
	case 9, 13, 15, 16, 17: // data.drop, elem.drop, table.grow, table.size, table.fill
		_, err := r.u32("index")
		return sub, err
	case 10: // memory.copy dst src
		if err := zeroByte(r, "memory index"); err != nil {
			return 0, err
		}
		return sub, zeroByte(r, "memory index")
	case 11: // memory.fill
		return sub, zeroByte(r, "memory index")
	case 12, 14: // table.init elem table, table.copy dst src
		if _, err := r.u32("index"); err != nil {
			return 0, err
		}
		_, err := r.u32("table index")
		return sub, err
	}
	return 0, errorAt(at, ErrUnsupported, "unknown opcode 0xfc %#x", sub)
}

// simdGaps are the unassigned opcodes below 0x100 of the 0xfd prefix.
var simdGaps = [256]bool{
	0x9a: true, 0xa2: true, 0xa5: true, 0xa6: true, 0xaf: true, 0xb0: true,
	0xb2: true, 0xb3: true, 0xb4: true, 0xbb: true, 0xc2: true, 0xc5: true,
	0xc6: true, 0xcf: true, 0xd0: true, 0xd2: true, 0xd3: true, 0xd4: true,
	0xe2: true, 0xee: true,
}

// simdImmediates reads a 0xfd-prefixed instruction.
//
// The sub-opcode is a u32 LEB128 in the spec, but wazero reads it as one
// byte, so the two disagree on where the instruction ends when the encoding
// is not the shortest one. Only encodings on which both agree are accepted:
// one byte below 0x80, or two bytes `b 0x01` for b from 0x80 to 0xff (which
// wazero reads as the opcode b followed by a nop; these have no immediates).
func simdImmediates(r *reader, at int) error {
	b, err := r.readByte("0xfd opcode")
	if err != nil {
		return err
	}
	op := uint32(b)
	if b >= 0x80 {
		next, err := r.readByte("0xfd opcode")
		if err != nil {
			return err
		}
		if next != 0x01 {
			return errorAt(at, ErrUnsupported, "0xfd opcode %#x %#x: relaxed SIMD, unknown, or not in its shortest encoding", b, next)
		}
	}
	switch {
	case op <= 11 || op == 92 || op == 93: // loads and stores
		return memarg(r)
	case op == 12 || op == 13: // v128.const, i8x16.shuffle
		return r.skip(16, "v128 immediate")
	case 21 <= op && op <= 34: // extract_lane, replace_lane
		return r.skip(1, "lane index")
	case 84 <= op && op <= 91: // load_lane, store_lane
		if err := memarg(r); err != nil {
			return err
		}
		return r.skip(1, "lane index")
	case simdGaps[op]:
		return errorAt(at, ErrUnsupported, "unknown opcode 0xfd %#x", op)
	}
	return nil
}
