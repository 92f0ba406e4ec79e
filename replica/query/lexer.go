package query

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokKeyword
	tokNumber
	tokString
	tokParam
	tokPunct
)

// token is one lexeme; col is the 1-based column (in characters, counted
// from the start of the query text) where it begins.
type token struct {
	kind tokKind
	text string // keywords upper-cased; strings unescaped; params with '@'
	raw  string // a keyword as written
	num  float64
	col  int
}

var keywords = map[string]bool{
	"SELECT": true, "DISTINCT": true, "TOP": true, "VALUE": true, "AS": true, "FROM": true,
	"IN": true, "JOIN": true, "WHERE": true, "AND": true, "OR": true, "NOT": true,
	"BETWEEN": true, "ORDER": true, "BY": true, "ASC": true, "DESC": true, "GROUP": true,
	"OFFSET": true, "LIMIT": true, "TRUE": true, "FALSE": true, "NULL": true,
	"UNDEFINED": true, "LIKE": true, "EXISTS": true, "ARRAY": true, "ESCAPE": true,
}

// lexer turns query text into tokens. It works on bytes and counts columns
// in characters.
type lexer struct {
	src  string
	i    int // byte offset
	col  int // column of src[i]
	toks []token
}

func lex(src string) ([]token, error) {
	l := &lexer{src: src, col: 1}
	for {
		t, err := l.next()
		if err != nil {
			return nil, err
		}
		l.toks = append(l.toks, t)
		if t.kind == tokEOF {
			return l.toks, nil
		}
	}
}

func (l *lexer) advance(n int) {
	for k := 0; k < n && l.i < len(l.src); k++ {
		_, size := utf8.DecodeRuneInString(l.src[l.i:])
		l.i += size
		l.col++
	}
}

func (l *lexer) peek(off int) byte {
	if l.i+off < len(l.src) {
		return l.src[l.i+off]
	}
	return 0
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (l *lexer) next() (token, error) {
	// Skip blanks and comments ("-- to end of line").
	for l.i < len(l.src) {
		c := l.src[l.i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			l.advance(1)
			continue
		}
		if c == '-' && l.peek(1) == '-' {
			for l.i < len(l.src) && l.src[l.i] != '\n' {
				l.advance(1)
			}
			continue
		}
		break
	}
	col := l.col
	if l.i >= len(l.src) {
		return token{kind: tokEOF, col: col}, nil
	}
	c := l.src[l.i]
	switch {
	case isIdentStart(c):
		start := l.i
		for l.i < len(l.src) && (isIdentStart(l.src[l.i]) || isDigit(l.src[l.i])) {
			l.advance(1)
		}
		word := l.src[start:l.i]
		if up := strings.ToUpper(word); keywords[up] {
			return token{kind: tokKeyword, text: up, raw: word, col: col}, nil
		}
		return token{kind: tokIdent, text: word, col: col}, nil
	case c == '@':
		l.advance(1)
		start := l.i
		for l.i < len(l.src) && (isIdentStart(l.src[l.i]) || isDigit(l.src[l.i])) {
			l.advance(1)
		}
		if l.i == start {
			return token{}, errorAt(col, "a parameter name must follow @")
		}
		return token{kind: tokParam, text: "@" + l.src[start:l.i], col: col}, nil
	case isDigit(c) || c == '.' && isDigit(l.peek(1)):
		return l.number(col)
	case c == '\'' || c == '"':
		return l.str(col, c)
	}
	for _, p := range []string{"!=", "<>", "<=", ">=", "||", "??"} {
		if strings.HasPrefix(l.src[l.i:], p) {
			l.advance(2)
			return token{kind: tokPunct, text: p, col: col}, nil
		}
	}
	if strings.IndexByte("=<>+-*/%(),.[]{}:?", c) >= 0 {
		l.advance(1)
		return token{kind: tokPunct, text: string(c), col: col}, nil
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.i:])
	return token{}, errorAt(col, "unexpected character %q", r)
}

func (l *lexer) number(col int) (token, error) {
	start := l.i
	for l.i < len(l.src) && isDigit(l.src[l.i]) {
		l.advance(1)
	}
	if l.peek(0) == '.' {
		l.advance(1)
		for l.i < len(l.src) && isDigit(l.src[l.i]) {
			l.advance(1)
		}
	}
	if c := l.peek(0); c == 'e' || c == 'E' {
		l.advance(1)
		if c := l.peek(0); c == '+' || c == '-' {
			l.advance(1)
		}
		if !isDigit(l.peek(0)) {
			return token{}, errorAt(l.col, "a number's exponent needs digits")
		}
		for l.i < len(l.src) && isDigit(l.src[l.i]) {
			l.advance(1)
		}
	}
	if isIdentStart(l.peek(0)) {
		return token{}, errorAt(l.col, "unexpected character %q after a number", l.peek(0))
	}
	f, err := strconv.ParseFloat(l.src[start:l.i], 64)
	if err != nil {
		return token{}, errorAt(col, "number %s is out of range", l.src[start:l.i])
	}
	return token{kind: tokNumber, num: f, text: l.src[start:l.i], col: col}, nil
}

func (l *lexer) str(col int, quote byte) (token, error) {
	l.advance(1)
	var sb strings.Builder
	for {
		if l.i >= len(l.src) {
			return token{}, errorAt(col, "string literal is not closed")
		}
		c := l.src[l.i]
		if c == quote {
			l.advance(1)
			return token{kind: tokString, text: sb.String(), col: col}, nil
		}
		if c != '\\' {
			start := l.i
			l.advance(1)
			sb.WriteString(l.src[start:l.i])
			continue
		}
		escCol := l.col
		l.advance(1)
		e := l.peek(0)
		l.advance(1)
		switch e {
		case '\'', '"', '\\', '/':
			sb.WriteByte(e)
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 't':
			sb.WriteByte('\t')
		case 'u':
			r, ok := l.hex4()
			if !ok {
				return token{}, errorAt(escCol, `\u needs four hex digits`)
			}
			if r >= 0xD800 && r < 0xDC00 && l.peek(0) == '\\' && l.peek(1) == 'u' {
				save, saveCol := l.i, l.col
				l.advance(2)
				if r2, ok := l.hex4(); ok && r2 >= 0xDC00 && r2 < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
				} else {
					l.i, l.col = save, saveCol
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				return token{}, errorAt(escCol, "lone surrogate escape in a string")
			}
			sb.WriteRune(r)
		default:
			return token{}, errorAt(escCol, "unknown escape in a string")
		}
	}
}

func (l *lexer) hex4() (rune, bool) {
	if l.i+4 > len(l.src) {
		return 0, false
	}
	var r rune
	for k := 0; k < 4; k++ {
		c := l.src[l.i+k]
		switch {
		case isDigit(c):
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	l.advance(4)
	return r, true
}
