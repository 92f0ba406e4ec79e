package meter

import (
	"bytes"
	"strconv"
)

// Section ids.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

var sectionNames = [...]string{
	secCustom: "custom", secType: "type", secImport: "import", secFunction: "function",
	secTable: "table", secMemory: "memory", secGlobal: "global", secExport: "export",
	secStart: "start", secElement: "element", secCode: "code", secData: "data",
	secDataCount: "data count", secTag: "tag",
}

// sectionOrder is the position of each non-custom section id in a module
// (the data count section comes before the code section).
var sectionOrder = [...]int{
	secType: 1, secImport: 2, secFunction: 3, secTable: 4, secMemory: 5, secTag: 6,
	secGlobal: 7, secExport: 8, secStart: 9, secElement: 10, secDataCount: 11,
	secCode: 12, secData: 13,
}

var header = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

type section struct {
	id        byte
	start     int // offset of the id byte
	body, end int // the section's contents are wasm[body:end]
	order     int
}

// module is what Instrument needs to know of a module.
type module struct {
	wasm     []byte
	sections []section
	byID     [secTag + 1]*section

	numTypes    int
	numFuncs    int // defined functions
	funcImports int
	numGlobals  uint32 // imported and defined
	numDefined  int    // defined globals
	numExports  int

	typeParams []uint32 // parameters of each type
	funcTypes  []uint32 // type of each function, imported ones first

	numTables     int    // imported and defined
	tableElements uint64 // sum of the tables' minimum sizes
	numMemories   int    // imported and defined
	dataCount     int    // from the data count section
	nameSeen      bool
}

func parse(wasm []byte) (*module, error) {
	if len(wasm) < len(header) || !bytes.Equal(wasm[:4], header[:4]) {
		return nil, errorAt(0, ErrMalformed, "not a WebAssembly binary (no \\0asm magic)")
	}
	if !bytes.Equal(wasm[4:8], header[4:8]) {
		return nil, errorAt(4, ErrUnsupported, "binary format version % x, want 01 00 00 00", wasm[4:8])
	}
	m := &module{wasm: wasm}
	r := newReader(wasm, len(header), len(wasm))
	last := 0
	for r.remaining() > 0 {
		start := r.pos
		id, _ := r.readByte("section id")
		if int(id) >= len(sectionNames) {
			return nil, errorAt(start, ErrMalformed, "unknown section id %d", id)
		}
		size, err := r.u32("section size")
		if err != nil {
			return nil, err
		}
		if int64(size) > int64(r.remaining()) {
			return nil, errorAt(start, ErrMalformed, "%s section of %d bytes overruns the module", sectionNames[id], size)
		}
		s := section{id: id, start: start, body: r.pos, end: r.pos + int(size)}
		r.pos = s.end
		if id == secTag {
			return nil, errorAt(start, ErrUnsupported, "tag section (exception handling)")
		}
		if id != secCustom {
			s.order = sectionOrder[id]
			if s.order <= last {
				return nil, errorAt(start, ErrMalformed, "%s section out of order or repeated", sectionNames[id])
			}
			last = s.order
		}
		m.sections = append(m.sections, s)
	}
	for i := range m.sections {
		if s := &m.sections[i]; s.id != secCustom {
			m.byID[s.id] = s
		}
	}
	steps := []struct {
		id    byte
		parse func(*reader) error
	}{
		{secType, m.parseTypes},
		{secImport, m.parseImports},
		{secFunction, m.parseFunctions},
		{secTable, m.parseTables},
		{secMemory, m.parseMemories},
		{secGlobal, m.parseGlobals},
		{secExport, m.parseExports},
		{secStart, m.parseStart},
		{secElement, m.parseElements},
		{secDataCount, m.parseDataCount},
		{secData, m.parseData},
	}
	for _, step := range steps {
		s := m.byID[step.id]
		if s == nil {
			continue
		}
		r := newReader(wasm, s.body, s.end)
		err := step.parse(r)
		if err == nil && r.remaining() != 0 {
			err = errorAt(r.pos, ErrMalformed, "%d bytes left over at the end of the section", r.remaining())
		}
		if err != nil {
			return nil, inSection(err, sectionNames[step.id])
		}
	}
	if err := m.checkDataCount(); err != nil {
		return nil, inSection(err, "data count")
	}
	for i := range m.sections {
		if s := &m.sections[i]; s.id == secCustom {
			if err := m.parseCustom(newReader(wasm, s.body, s.end)); err != nil {
				return nil, inSection(err, "custom")
			}
		}
	}
	return m, nil
}

func (m *module) parseTypes(r *reader) error {
	n, err := r.count(1, maxEntries, "type")
	if err != nil {
		return err
	}
	m.numTypes = n
	for i := range n {
		start := r.pos
		form, err := r.readByte("function type")
		if err != nil {
			return err
		}
		if form != 0x60 {
			return errorAt(start, ErrUnsupported, "type %d has form %#x, only function types (0x60) are supported", i, form)
		}
		params, err := r.count(1, maxParams, "parameter")
		if err != nil {
			return err
		}
		m.typeParams = append(m.typeParams, uint32(params))
		for range params {
			if err := valueType(r); err != nil {
				return err
			}
		}
		results, err := r.count(1, maxParams, "result")
		if err != nil {
			return err
		}
		for range results {
			if err := valueType(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// valueType reads one of the value types of WebAssembly 2.0.
func valueType(r *reader) error {
	start := r.pos
	t, err := r.readByte("value type")
	if err != nil {
		return err
	}
	if !isValueType(t) {
		return errorAt(start, ErrUnsupported, "value type %#x", t)
	}
	return nil
}

func isValueType(t byte) bool {
	switch t {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f: // i32 i64 f32 f64 v128 funcref externref
		return true
	}
	return false
}

func (m *module) parseImports(r *reader) error {
	n, err := r.count(4, maxEntries, "import")
	if err != nil {
		return err
	}
	for i := range n {
		if _, err := r.name("import module name"); err != nil {
			return err
		}
		if _, err := r.name("import name"); err != nil {
			return err
		}
		start := r.pos
		kind, err := r.readByte("import kind")
		if err != nil {
			return err
		}
		switch kind {
		case 0x00: // function
			tstart := r.pos
			t, err := r.u32("import type index")
			if err != nil {
				return err
			}
			if int64(t) >= int64(m.numTypes) {
				return errorAt(tstart, ErrMalformed, "import %d: type index %d out of range", i, t)
			}
			m.funcTypes = append(m.funcTypes, t)
			m.funcImports++
		case 0x01: // table
			tstart := r.pos
			t, err := r.readByte("table type")
			if err != nil {
				return err
			}
			if t != 0x70 && t != 0x6f {
				return errorAt(tstart, ErrUnsupported, "import %d: table element type %#x", i, t)
			}
			if err := m.tableLimits(r); err != nil {
				return err
			}
		case 0x02: // memory
			if err := m.memoryLimits(r); err != nil {
				return err
			}
		case 0x03: // global
			if err := valueType(r); err != nil {
				return err
			}
			mstart := r.pos
			mut, err := r.readByte("global mutability")
			if err != nil {
				return err
			}
			if mut > 1 {
				return errorAt(mstart, ErrMalformed, "import %d: global mutability %#x", i, mut)
			}
			m.numGlobals++
		case 0x04:
			return errorAt(start, ErrUnsupported, "import %d: tag import (exception handling)", i)
		default:
			return errorAt(start, ErrMalformed, "import %d: unknown import kind %#x", i, kind)
		}
	}
	if m.funcImports > maxFunctions {
		return errorAt(r.pos, ErrLimit, "%d imported functions, over the limit of %d", m.funcImports, maxFunctions)
	}
	return nil
}

// limits reads the limits of a table or a memory and returns the minimum.
func limits(r *reader) (uint32, error) {
	start := r.pos
	flags, err := r.readByte("limits")
	if err != nil {
		return 0, err
	}
	switch flags {
	case 0x00, 0x01:
	case 0x02, 0x03:
		return 0, errorAt(start, ErrUnsupported, "shared memory (threads)")
	default:
		return 0, errorAt(start, ErrUnsupported, "limits flags %#x (memory64 or unknown)", flags)
	}
	min, err := r.u32("limits minimum")
	if err != nil || flags == 0x00 {
		return min, err
	}
	max, err := r.u32("limits maximum")
	if err != nil {
		return 0, err
	}
	if max < min {
		return 0, errorAt(start, ErrMalformed, "limits maximum %d under the minimum %d", max, min)
	}
	return min, nil
}

func (m *module) parseFunctions(r *reader) error {
	n, err := r.count(1, maxFunctions, "function")
	if err != nil {
		return err
	}
	if m.funcImports+n > maxFunctions {
		return errorAt(r.pos, ErrLimit, "%d functions, over the limit of %d", m.funcImports+n, maxFunctions)
	}
	m.numFuncs = n
	for i := range n {
		start := r.pos
		t, err := r.u32("function type index")
		if err != nil {
			return err
		}
		if int64(t) >= int64(m.numTypes) {
			return errorAt(start, ErrMalformed, "function %d: type index %d out of range", m.funcImports+i, t)
		}
		m.funcTypes = append(m.funcTypes, t)
	}
	return nil
}

func (m *module) parseGlobals(r *reader) error {
	n, err := r.count(3, maxEntries, "global")
	if err != nil {
		return err
	}
	if uint64(m.numGlobals)+uint64(n) >= maxEntries {
		return errorAt(r.pos, ErrLimit, "%d globals, over the limit of %d", int(m.numGlobals)+n, maxEntries)
	}
	m.numDefined = n
	// The defined globals are visible to the initialisers from here on; the
	// runtime checks which of them an initialiser may read.
	m.numGlobals += uint32(n)
	var c bodyCoder
	c.numGlobals = m.numGlobals
	for range n {
		if err := valueType(r); err != nil {
			return err
		}
		start := r.pos
		mut, err := r.readByte("global mutability")
		if err != nil {
			return err
		}
		if mut > 1 {
			return errorAt(start, ErrMalformed, "global mutability %#x", mut)
		}
		if err := c.expr(r, false); err != nil {
			return err
		}
	}
	return nil
}

func (m *module) parseExports(r *reader) error {
	n, err := r.count(3, maxEntries, "export")
	if err != nil {
		return err
	}
	m.numExports = n
	for range n {
		start := r.pos
		name, err := r.name("export name")
		if err != nil {
			return err
		}
		if bytes.HasPrefix(name, []byte(GlobalName)) {
			return errorAt(start, ErrReservedName, "export %s: names starting with %q are reserved for the fuel global", quote(name), GlobalName)
		}
		kstart := r.pos
		kind, err := r.readByte("export kind")
		if err != nil {
			return err
		}
		idx, err := r.u32("export index")
		if err != nil {
			return err
		}
		switch kind {
		case 0x00, 0x01, 0x02:
		case 0x03:
			if idx >= m.numGlobals {
				return errorAt(kstart, ErrMalformed, "export %s: global index %d out of range", quote(name), idx)
			}
		case 0x04:
			return errorAt(kstart, ErrUnsupported, "export %s: tag export (exception handling)", quote(name))
		default:
			return errorAt(kstart, ErrMalformed, "export %s: unknown export kind %#x", quote(name), kind)
		}
	}
	return nil
}

// instrument writes the instrumented module.
func (m *module) instrument() ([]byte, error) {
	w := make([]byte, 0, len(m.wasm)+len(m.wasm)/4+64)
	w = append(w, header...)
	fuel := m.numGlobals // the index of the fuel global; the other new globals follow
	globalDone, exportDone := false, false
	emitMissing := func(order int) {
		if !globalDone && order > sectionOrder[secGlobal] {
			w = appendSection(w, secGlobal, appendNewGlobal(appendU32(nil, newGlobals)))
			globalDone = true
		}
		if !exportDone && order > sectionOrder[secExport] {
			w = appendSection(w, secExport, appendNewExport(appendU32(nil, newExports), fuel))
			exportDone = true
		}
	}
	if m.numFuncs > 0 && m.byID[secCode] == nil {
		s := m.byID[secFunction]
		return nil, errorAt(s.start, ErrMalformed, "%d functions declared and no code section", m.numFuncs)
	}
	for i := range m.sections {
		s := &m.sections[i]
		if s.id == secCustom {
			w = append(w, m.wasm[s.start:s.end]...)
			continue
		}
		emitMissing(s.order)
		switch s.id {
		case secGlobal:
			r := newReader(m.wasm, s.body, s.end)
			_, _ = r.u32("global count") // parsed before
			c := appendU32(nil, uint32(m.numDefined+newGlobals))
			c = append(c, m.wasm[r.pos:s.end]...)
			w = appendSection(w, secGlobal, appendNewGlobal(c))
			globalDone = true
		case secExport:
			r := newReader(m.wasm, s.body, s.end)
			_, _ = r.u32("export count")
			c := appendU32(nil, uint32(m.numExports+newExports))
			c = append(c, m.wasm[r.pos:s.end]...)
			w = appendSection(w, secExport, appendNewExport(c, fuel))
			exportDone = true
		case secCode:
			var err error
			w, err = m.appendCode(w, s, fuel)
			if err != nil {
				return nil, inSection(err, "code")
			}
		default:
			w = append(w, m.wasm[s.start:s.end]...)
		}
		if len(w) > maxOutputSize {
			return nil, errorAt(s.start, ErrLimit, "instrumented module would be over %d bytes", maxOutputSize)
		}
	}
	emitMissing(len(sectionOrder) + 1)
	return w, nil
}

// The globals Instrument adds after the module's own, in this order, and
// how many of them it exports (the first four).
const (
	globalFuel = iota
	globalDepth
	globalReserve
	globalStop
	globalScratch
	newGlobals
	newExports = globalScratch
)

// appendNewGlobal appends the fuel global (mutable i64, initialised to
// StartFuel), the depth global (mutable i32), the reserve (mutable i64),
// the stop flag (mutable i32) and the scratch global (mutable i32), the
// last four initialised to 0.
func appendNewGlobal(b []byte) []byte {
	b = append(b, 0x7e, 0x01, 0x42)
	b = appendS64(b, StartFuel)
	b = append(b, 0x0b)
	b = append(b, 0x7f, 0x01, 0x41, 0x00, 0x0b)
	b = append(b, 0x7e, 0x01, 0x42, 0x00, 0x0b)
	b = append(b, 0x7f, 0x01, 0x41, 0x00, 0x0b)
	return append(b, 0x7f, 0x01, 0x41, 0x00, 0x0b)
}

// appendNewExport appends the exports of the fuel, depth, reserve and stop
// globals.
func appendNewExport(b []byte, fuel uint32) []byte {
	for i, name := range []string{GlobalName, DepthGlobalName, ReserveGlobalName, StopGlobalName} {
		b = appendU32(b, uint32(len(name)))
		b = append(b, name...)
		b = append(b, 0x03)
		b = appendU32(b, fuel+uint32(i))
	}
	return b
}

func appendSection(w []byte, id byte, contents []byte) []byte {
	w = append(w, id)
	w = appendU32(w, uint32(len(contents)))
	return append(w, contents...)
}

// appendCode appends the code section with every function body instrumented.
func (m *module) appendCode(w []byte, s *section, fuel uint32) ([]byte, error) {
	r := newReader(m.wasm, s.body, s.end)
	n, err := r.count(2, maxFunctions, "function body")
	if err != nil {
		return nil, err
	}
	if n != m.numFuncs {
		return nil, errorAt(s.body, ErrMalformed, "code section has %d function bodies, function section declares %d", n, m.numFuncs)
	}
	// The section's size is known at the end: write the contents after room
	// for the longest size, then move them into place.
	const sizeRoom = 5
	w = append(w, secCode)
	sizeAt := len(w)
	w = append(w, make([]byte, sizeRoom)...)
	contentsAt := len(w)
	w = appendU32(w, uint32(n))
	weights, typeWeights, err := m.frameWeights(r.pos, s.end, n)
	if err != nil {
		return nil, err
	}
	c := bodyCoder{fuel: fuel, numGlobals: m.numGlobals, weights: weights, typeWeights: typeWeights,
		memory: m.numMemories > 0}
	for i := range n {
		idx := m.funcImports + i
		w, err = c.appendBody(w, r)
		if err != nil {
			return nil, inFunc(err, idx)
		}
		if len(w) > maxOutputSize {
			return nil, errorAt(r.pos, ErrLimit, "instrumented module would be over %d bytes", maxOutputSize)
		}
	}
	if r.remaining() != 0 {
		return nil, errorAt(r.pos, ErrMalformed, "%d bytes left over after the function bodies", r.remaining())
	}
	size := len(w) - contentsAt
	if int64(size) > 1<<32-1 {
		return nil, errorAt(s.start, ErrLimit, "instrumented code section would be over 4 GiB")
	}
	var buf [sizeRoom]byte
	enc := appendU32(buf[:0], uint32(size))
	copy(w[sizeAt:], enc)
	copy(w[sizeAt+len(enc):], w[contentsAt:])
	return w[:len(w)-(sizeRoom-len(enc))], nil
}

// frameWeights returns the stack weight of a call of each function and,
// for call_indirect, the heaviest of each type: FrameBase plus its
// parameters and locals (what the runtime's frame for it holds). It reads
// the n bodies of the code section at wasm[pos:end] for their locals;
// appendBody checks them.
func (m *module) frameWeights(pos, end, n int) (weights, typeWeights []uint32, err error) {
	weights = make([]uint32, m.funcImports+n)
	typeWeights = make([]uint32, m.numTypes)
	for i, t := range m.funcTypes {
		w := FrameBase + m.typeParams[t]
		if i >= m.funcImports {
			r := newReader(m.wasm, pos, end)
			size, err := r.u32("function body size")
			if err != nil {
				return nil, nil, err
			}
			if int64(size) > int64(r.remaining()) {
				return nil, nil, errorAt(pos, ErrMalformed, "body of %d bytes overruns the code section", size)
			}
			pos = r.pos + int(size)
			body := newReader(m.wasm, r.pos, pos)
			groups, err := body.count(2, maxModuleSize, "local declaration")
			if err != nil {
				return nil, nil, err
			}
			var locals uint64
			for range groups {
				k, err := body.u32("local count")
				if err != nil {
					return nil, nil, err
				}
				locals += uint64(k)
				body.pos++ // the type: appendBody checks it
			}
			if locals > maxLocals {
				return nil, nil, errorAt(r.pos, ErrLimit, "%d locals, over the limit of %d", locals, maxLocals)
			}
			w += uint32(locals)
		}
		weights[i] = w
		typeWeights[t] = max(typeWeights[t], w)
	}
	return weights, typeWeights, nil
}

// quote quotes a name for an error message, cut to its first 64 bytes.
func quote(name []byte) string {
	const limit = 64
	if len(name) > limit {
		return strconv.Quote(string(name[:limit])) + "..."
	}
	return strconv.Quote(string(name))
}
