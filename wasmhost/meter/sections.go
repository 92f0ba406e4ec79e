package meter

// Parsers for the sections Instrument copies unchanged. They add nothing to
// the output; they exist so that every vector length and size in the module
// is checked against the bytes that hold it and against the limits below
// before a runtime sees the module. A runtime's decoder may allocate a slice
// as long as a declared count before it reads the entries (wazero does, for
// data segments, element segments, locals and the name section), so a
// 20-byte module declaring 2^31 data segments would otherwise make it
// allocate gigabytes.

// Limits on the sections Instrument copies unchanged (chosen well above what
// compilers produce, in line with the limits browsers apply).
const (
	maxTables        = 100
	maxTableElements = 10_000_000 // sum of the tables' minimum sizes
	maxMemoryPages   = 65536      // 4 GiB, the 32-bit address space
	maxSegments      = 100_000    // element segments; data segments
	maxElemEntries   = 10_000_000 // sum over element segments
	maxLocals        = 50_000     // per function, parameters excluded
	maxParams        = 1000       // parameters or results of a function type
	maxNameEntries   = 1_000_000  // sum over the name section's maps
)

// Limits on function bodies: what makes wazero's compiler slow or deep is
// the work inside one function, which it cannot stop half way (the host
// stops it between functions when its compile timeout ends). Measured with
// wazero 1.12 on two loaded cores: 4,096 blocks in one function compile in
// 0.7 s, 10,000 in 2.3 s (the cost grows with the square; four million
// nested ones made it recurse past Go's stack limit); 16 blocks holding a
// br_table of 1,024 targets each in 0.4 s and 50 MiB (16 of 4,096 in 1 s and
// 160 MiB, 64 of them in 6 s and 620 MiB); a 1 MiB body of simple
// instructions in 0.2 s and 70 MiB (8 MiB in 4 s and 470 MiB, 30 MiB in
// minutes and 9 GB). Go's compiler nests a block per call site of a
// function (550 deep, 964 br_table targets in its runtime).
const (
	MaxNesting        = 2048    // blocks, loops and ifs open at once
	MaxBlocks         = 4096    // blocks, loops and ifs in one function
	MaxBrTableTargets = 16_384  // br_table targets in one function
	MaxBodyBytes      = 1 << 20 // bytes of one function body
)

// parseTables reads the table section.
func (m *module) parseTables(r *reader) error {
	n, err := r.count(3, maxTables, "table")
	if err != nil {
		return err
	}
	for i := range n {
		start := r.pos
		t, err := r.readByte("table type")
		if err != nil {
			return err
		}
		if t != 0x70 && t != 0x6f {
			return errorAt(start, ErrUnsupported, "table %d: element type %#x", i, t)
		}
		if err := m.tableLimits(r); err != nil {
			return err
		}
	}
	return nil
}

// tableLimits reads a table's limits and adds its minimum size to the
// module's total.
func (m *module) tableLimits(r *reader) error {
	start := r.pos
	min, err := limits(r)
	if err != nil {
		return err
	}
	m.tableElements += uint64(min)
	if m.numTables++; m.numTables > maxTables {
		return errorAt(start, ErrLimit, "%d tables, over the limit of %d", m.numTables, maxTables)
	}
	if m.tableElements > maxTableElements {
		return errorAt(start, ErrLimit, "tables of %d elements in all, over the limit of %d", m.tableElements, maxTableElements)
	}
	return nil
}

// memoryLimits reads a memory's limits.
func (m *module) memoryLimits(r *reader) error {
	start := r.pos
	min, err := limits(r)
	if err != nil {
		return err
	}
	if m.numMemories++; m.numMemories > 1 {
		return errorAt(start, ErrUnsupported, "more than one memory (multiple memories)")
	}
	if min > maxMemoryPages {
		return errorAt(start, ErrLimit, "memory of %d pages, over the limit of %d", min, maxMemoryPages)
	}
	return nil
}

// parseMemories reads the memory section.
func (m *module) parseMemories(r *reader) error {
	n, err := r.count(2, maxEntries, "memory")
	if err != nil {
		return err
	}
	for range n {
		if err := m.memoryLimits(r); err != nil {
			return err
		}
	}
	return nil
}

// parseStart reads the start section.
func (m *module) parseStart(r *reader) error {
	start := r.pos
	idx, err := r.u32("start function index")
	if err != nil {
		return err
	}
	if int64(idx) >= int64(m.funcImports+m.numFuncs) {
		return errorAt(start, ErrMalformed, "start function index %d out of range", idx)
	}
	return nil
}

// parseElements reads the element section: segments of function indices or
// of constant expressions, active (with a table and an offset), passive or
// declarative.
func (m *module) parseElements(r *reader) error {
	n, err := r.count(3, maxSegments, "element segment")
	if err != nil {
		return err
	}
	var c bodyCoder
	c.numGlobals = m.numGlobals
	var entries uint64
	for i := range n {
		start := r.pos
		flags, err := r.u32("element segment flags")
		if err != nil {
			return err
		}
		if flags > 7 {
			return errorAt(start, ErrMalformed, "element segment %d: flags %d", i, flags)
		}
		active, explicitTable, exprs := flags&1 == 0, flags&2 != 0, flags&4 != 0
		if active && explicitTable {
			if _, err := r.u32("table index"); err != nil {
				return err
			}
		}
		if active {
			if err := c.expr(r, false); err != nil {
				return err
			}
		}
		if !active || explicitTable {
			// An element kind (0x00, funcref) or a reference type.
			kstart := r.pos
			k, err := r.readByte("element kind")
			if err != nil {
				return err
			}
			if exprs && k != 0x70 && k != 0x6f || !exprs && k != 0x00 {
				return errorAt(kstart, ErrUnsupported, "element segment %d: element type %#x", i, k)
			}
		}
		minSize := 1 // a function index
		if exprs {
			minSize = 2 // an instruction and end
		}
		cstart := r.pos
		k, err := r.count(minSize, maxElemEntries, "element")
		if err != nil {
			return err
		}
		if entries += uint64(k); entries > maxElemEntries {
			return errorAt(cstart, ErrLimit, "element segments of %d entries in all, over the limit of %d", entries, maxElemEntries)
		}
		for range k {
			if exprs {
				err = c.expr(r, false)
			} else {
				_, err = r.u32("function index")
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// parseDataCount reads the data count section.
func (m *module) parseDataCount(r *reader) error {
	start := r.pos
	n, err := r.u32("data count")
	if err != nil {
		return err
	}
	if n > maxSegments {
		return errorAt(start, ErrLimit, "data count %d is over the limit of %d", n, maxSegments)
	}
	m.dataCount = int(n)
	return nil
}

// parseData reads the data section: active segments (in memory 0 or an
// explicit one) and passive ones.
func (m *module) parseData(r *reader) error {
	start := r.pos
	n, err := r.count(2, maxSegments, "data segment")
	if err != nil {
		return err
	}
	if m.byID[secDataCount] != nil && n != m.dataCount {
		return errorAt(start, ErrMalformed, "%d data segments, the data count section says %d", n, m.dataCount)
	}
	var c bodyCoder
	c.numGlobals = m.numGlobals
	for i := range n {
		fstart := r.pos
		flags, err := r.u32("data segment flags")
		if err != nil {
			return err
		}
		switch flags {
		case 0:
		case 1:
		case 2:
			if _, err := r.u32("memory index"); err != nil {
				return err
			}
		default:
			return errorAt(fstart, ErrMalformed, "data segment %d: flags %d", i, flags)
		}
		if flags != 1 {
			if err := c.expr(r, false); err != nil {
				return err
			}
		}
		if _, err := r.name("data segment contents"); err != nil {
			return err
		}
	}
	return nil
}

// checkDataCount refuses a data count section without a data section that
// matches it.
func (m *module) checkDataCount() error {
	if s := m.byID[secDataCount]; s != nil && m.byID[secData] == nil && m.dataCount != 0 {
		return errorAt(s.start, ErrMalformed, "the data count section says %d data segments and there is no data section", m.dataCount)
	}
	return nil
}

// parseCustom reads a custom section's name and, for the "name" section,
// its function and local name maps.
func (m *module) parseCustom(r *reader) error {
	name, err := r.name("custom section name")
	if err != nil {
		return err
	}
	if string(name) != "name" {
		return nil // its contents are opaque
	}
	if m.nameSeen {
		return errorAt(r.pos, ErrMalformed, "more than one name section")
	}
	m.nameSeen = true
	var entries int
	for r.remaining() > 0 {
		id, _ := r.readByte("name subsection id")
		size, err := r.count(1, maxModuleSize, "name subsection size")
		if err != nil {
			return err
		}
		sub := newReader(r.b, r.pos, r.pos+size)
		r.pos = sub.end
		switch id {
		case 1: // function names
			err = nameMap(sub, &entries)
		case 2: // local names
			var k int
			if k, err = sub.count(2, maxFunctions, "local name map"); err != nil {
				return err
			}
			for range k {
				if _, err = sub.u32("function index"); err != nil {
					return err
				}
				if err = nameMap(sub, &entries); err != nil {
					return err
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// nameMap reads a name map of the name section, adding its length to
// *entries.
func nameMap(r *reader, entries *int) error {
	start := r.pos
	n, err := r.count(2, maxNameEntries, "name")
	if err != nil {
		return err
	}
	if *entries += n; *entries > maxNameEntries {
		return errorAt(start, ErrLimit, "name section of %d entries, over the limit of %d", *entries, maxNameEntries)
	}
	for range n {
		if _, err := r.u32("index"); err != nil {
			return err
		}
		if _, err := r.name("name"); err != nil {
			return err
		}
	}
	return nil
}
