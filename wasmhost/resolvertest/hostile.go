package resolvertest

import "slices"

// Generated hostile modules. The malicious corpus
// (testdata/resolvers/malicious/expect.json) lists them under "generated":
// they are too large to commit as files, so the corpus tests build them with
// Hostile. Each is a valid ABI v1 resolver (it answers "existing") whose one
// oddity is in the body of edgesync_resolve or in its number of functions,
// so that only a structural limit refuses it.

// Hostile returns the generated module called name and whether there is
// one.
func Hostile(name string) ([]byte, bool) {
	switch name {
	case "deep-nesting-4m":
		// Four million nested blocks: wazero's compiler recursed past Go's
		// stack limit on this one and the process died.
		return NestedBlocks(4_000_000), true
	case "huge-function":
		return HugeFunction(30 << 20), true
	case "many-functions":
		return ManyFunctions(1_000_000), true
	case "big-br-table":
		return BigBrTable(1_000_000), true
	}
	return nil, false
}

// HostileNames lists the names Hostile knows, sorted.
func HostileNames() []string {
	return []string{"big-br-table", "deep-nesting-4m", "huge-function", "many-functions"}
}

// NestedBlocks is a resolver whose edgesync_resolve opens depth nested
// empty blocks and closes them.
func NestedBlocks(depth int) []byte {
	body := make([]byte, 0, 4*depth)
	for range depth {
		body = append(body, 0x02, 0x40) // block
	}
	for range depth {
		body = append(body, 0x0b) // end
	}
	return module(body, 0, nil)
}

// HugeFunction is a resolver whose edgesync_resolve is about size bytes of
// `i32.const 0; drop`.
func HugeFunction(size int) []byte {
	body := make([]byte, 0, size+3)
	for len(body) < size {
		body = append(body, 0x41, 0x00, 0x1a)
	}
	return module(body, 0, nil)
}

// ManyFunctions is a resolver with n more functions, each a few
// instructions.
func ManyFunctions(n int) []byte { return module(nil, n, nil) }

// BigBrTable is a resolver whose edgesync_resolve holds a br_table of n
// targets.
func BigBrTable(n int) []byte {
	body := []byte{0x02, 0x40, 0x41, 0x00, 0x0e} // block; i32.const 0; br_table
	body = appendU32(body, uint32(n))
	body = append(body, make([]byte, n+1)...) // every target and the default: depth 0
	body = append(body, 0x0b)                 // end
	return module(body, 0, nil)
}

// WithFunctions is a resolver with n more functions of type func() whose
// body (instructions that leave the operand stack empty, without the final
// end) is body.
func WithFunctions(n int, body []byte) []byte { return module(nil, n, body) }

// output is what every generated resolver answers.
const output = `{"action":"existing"}`

// module assembles a resolver: edgesync_resolve runs payload (which must
// leave the operand stack empty) and returns output, placed at address 0 by
// a data segment; extra functions of type func() follow the ABI's three,
// each running extraBody (default: `i32.const 1; drop`).
func module(payload []byte, extra int, extraBody []byte) []byte {
	if extraBody == nil {
		extraBody = []byte{0x41, 0x01, 0x1a}
	}
	w := []byte("\x00asm\x01\x00\x00\x00")
	section := func(id byte, contents []byte) {
		w = append(w, id)
		w = appendU32(w, uint32(len(contents)))
		w = append(w, contents...)
	}
	// Types: func(), func(i32) -> i32, func(i32) -> i64.
	section(1, []byte{3, 0x60, 0, 0, 0x60, 1, 0x7f, 1, 0x7f, 0x60, 1, 0x7f, 1, 0x7e})
	funcs := appendU32(nil, uint32(3+extra))
	funcs = append(funcs, 0, 1, 2)
	funcs = append(funcs, slices.Repeat([]byte{0}, extra)...)
	section(3, funcs)
	section(5, []byte{1, 0x00, 1}) // one memory of one page
	var exports []byte
	exports = appendU32(exports, 4)
	for i, name := range []string{"memory", "edgesync_abi_v1", "edgesync_input", "edgesync_resolve"} {
		exports = appendU32(exports, uint32(len(name)))
		exports = append(exports, name...)
		if i == 0 {
			exports = append(exports, 0x02, 0)
		} else {
			exports = append(exports, 0x00, byte(i-1))
		}
	}
	section(7, exports)

	code := appendU32(nil, uint32(3+extra))
	fn := func(body []byte) {
		code = appendU32(code, uint32(len(body)+1))
		code = append(code, 0) // no locals
		code = append(code, body...)
	}
	fn([]byte{0x0b})                              // edgesync_abi_v1
	fn([]byte{0x41, 0x80, 0x08, 0x0b})            // edgesync_input: 1024
	resolve := append(slices.Clip(payload), 0x42) // i64.const len(output): address 0
	resolve = appendS64(resolve, int64(len(output)))
	fn(append(resolve, 0x0b))
	extraBody = append(slices.Clip(extraBody), 0x0b)
	for range extra {
		fn(extraBody)
	}
	section(10, code)
	data := []byte{1, 0, 0x41, 0, 0x0b} // one active segment at i32.const 0
	data = appendU32(data, uint32(len(output)))
	section(11, append(data, output...))
	return w
}

func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

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

// Module is a resolver that answers "existing" after running payload
// (instructions that leave the operand stack empty) in edgesync_resolve,
// with extra more functions of a few instructions each.
func Module(payload []byte, extra int) []byte { return module(payload, extra, nil) }
