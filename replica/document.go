package replica

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/edgesync/edgesync/replica/internal/jsonscan"
)

// Document is a validated item body ready to store.
type Document struct {
	ID   string
	PK   string // the partition key value, canonical text (see partitionKeyValue)
	Body []byte // the object with client-sent system properties removed
}

// systemProperties are set by the system; a client sending them is ignored.
var systemProperties = [...]string{"_ts", "_etag", "_lsn", "_crts", "_tentative"}

func isSystemProperty(key string) bool {
	for _, p := range systemProperties {
		if key == p {
			return true
		}
	}
	return false
}

// ParseDocument validates a client's item body against docs/architecture.md, Items: a JSON
// object of at most MaxDocumentSize bytes and MaxDepth levels, valid UTF-8,
// no duplicate keys in any object at any depth, no lone UTF-16 surrogate
// escape in a key, the id or the partition key value (encoding/json would
// decode it as U+FFFD, so distinct ids would collide), a valid string "id",
// and a partition key value
// at pkPath. System properties in the input are dropped. Every error wraps
// ErrInvalid or ErrTooLarge and says what was wrong.
func ParseDocument(b []byte, pkPath []string) (Document, error) {
	var d Document
	if len(b) > MaxDocumentSize {
		return d, fmt.Errorf("%w: document is %d bytes, limit %d", ErrTooLarge, len(b), MaxDocumentSize)
	}
	b = trimSpace(b)
	if len(b) == 0 {
		return d, fmt.Errorf("%w: empty body: want a JSON object", ErrInvalid)
	}
	if !utf8.Valid(b) {
		return d, fmt.Errorf("%w: body is not valid UTF-8", ErrInvalid)
	}
	// One scan checks both syntax and depth. Only a document it refuses is
	// looked at again, for the message: too deep first (whatever else is
	// wrong), else malformed.
	if end, ok, err := jsonscan.Document(b, MaxDepth); !ok || end != len(b) {
		if err != nil {
			return d, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if depth := jsonscan.MaxDepth(b); depth > MaxDepth {
			return d, fmt.Errorf("%w: nesting depth %d exceeds limit %d", ErrInvalid, depth, MaxDepth)
		}
		return d, fmt.Errorf("%w: malformed JSON: %v", ErrInvalid, jsonSyntaxError(b))
	}
	if b[0] != '{' {
		return d, fmt.Errorf("%w: body is a JSON %s, want an object", ErrInvalid, jsonKind(b[0]))
	}
	members, err := objectMembers(b)
	if err != nil {
		return d, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	strip := false
	idx := -1
	for i, m := range members {
		switch {
		case m.key == "id":
			idx = i
		case isSystemProperty(m.key):
			strip = true
		}
	}
	if idx < 0 {
		return d, fmt.Errorf("%w: missing \"id\" property", ErrInvalid)
	}
	idRaw := members[idx].value
	if idRaw[0] != '"' {
		return d, fmt.Errorf("%w: \"id\" must be a string, got a JSON %s", ErrInvalid, jsonKind(idRaw[0]))
	}
	if d.ID, err = jsonString(idRaw); err != nil {
		return d, fmt.Errorf("%w: \"id\": %v", ErrInvalid, err)
	}
	if err := ValidateID(d.ID); err != nil {
		return d, err
	}
	if pkPath != nil {
		pk, err := partitionKeyValue(members, pkPath)
		if err != nil {
			return d, err
		}
		d.PK = pk
	}
	if !strip {
		d.Body = bytes.Clone(b)
		return d, nil
	}
	out := make([]byte, 0, len(b))
	out = append(out, '{')
	n := 0
	for _, m := range members {
		if isSystemProperty(m.key) {
			continue
		}
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, m.raw...)
		n++
	}
	d.Body = append(out, '}')
	return d, nil
}

// ValidateID checks an item id: 1..1023 bytes of valid UTF-8 without '/',
// '\', '?', '#' or control characters.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: \"id\" is empty", ErrInvalid)
	}
	if len(id) > MaxIDLength {
		return fmt.Errorf("%w: \"id\" is %d bytes, limit %d", ErrInvalid, len(id), MaxIDLength)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("%w: \"id\" is not valid UTF-8", ErrInvalid)
	}
	for _, r := range id {
		switch {
		case r == '/' || r == '\\' || r == '?' || r == '#':
			return fmt.Errorf("%w: \"id\" %q contains %q, which is not allowed", ErrInvalid, id, r)
		case r < 0x20 || r >= 0x7f && r <= 0x9f:
			return fmt.Errorf("%w: \"id\" %q contains control character %U", ErrInvalid, id, r)
		}
	}
	return nil
}

// partitionKeyValue finds the partition key value at path among an object's
// members. It must be a string (so that scopes, ?pk= filters and the check
// that a value never changes all compare like with like); a missing value,
// null, or any other JSON type is an error.
func partitionKeyValue(members []member, path []string) (string, error) {
	name := func() string { return "/" + joinPath(path) } // for errors only
	for depth, seg := range path {
		var found *member
		for i := range members {
			if members[i].key == seg {
				if found != nil {
					return "", fmt.Errorf("%w: duplicate property %q on the partition key path %s", ErrInvalid, seg, name())
				}
				found = &members[i]
			}
		}
		if found == nil {
			return "", fmt.Errorf("%w: missing partition key value at %s", ErrInvalid, name())
		}
		v := found.value
		if depth < len(path)-1 {
			if v[0] != '{' {
				return "", fmt.Errorf("%w: missing partition key value at %s", ErrInvalid, name())
			}
			var err error
			if members, err = objectMembers(v); err != nil {
				return "", fmt.Errorf("%w: %v", ErrInvalid, err)
			}
			continue
		}
		switch c := v[0]; {
		case c == '"':
			s, err := jsonString(v)
			if err != nil {
				return "", fmt.Errorf("%w: partition key %s: %v", ErrInvalid, name(), err)
			}
			if len(s) > MaxIDLength {
				return "", fmt.Errorf("%w: partition key value at %s is %d bytes, limit %d", ErrInvalid, name(), len(s), MaxIDLength)
			}
			return s, nil
		case c == 'n':
			return "", fmt.Errorf("%w: partition key value at %s is null", ErrInvalid, name())
		default:
			return "", fmt.Errorf("%w: partition key value at %s must be a string, got a JSON %s", ErrInvalid, name(), jsonKind(c))
		}
	}
	return "", fmt.Errorf("%w: empty partition key path", ErrInvalid)
}

func joinPath(path []string) string {
	var buf bytes.Buffer
	for i, s := range path {
		if i > 0 {
			buf.WriteByte('/')
		}
		for j := 0; j < len(s); j++ {
			switch s[j] {
			case '~':
				buf.WriteString("~0")
			case '/':
				buf.WriteString("~1")
			default:
				buf.WriteByte(s[j])
			}
		}
	}
	return buf.String()
}

// jsonString decodes a JSON string that jsonscan.Value accepted, in a document
// already checked to be UTF-8: without escapes it is its bytes. A lone
// surrogate escape is an error rather than U+FFFD.
func jsonString(raw []byte) (string, error) {
	if bytes.IndexByte(raw[1:len(raw)-1], '\\') < 0 {
		return string(raw[1 : len(raw)-1]), nil
	}
	if jsonscan.LoneSurrogate(raw) {
		return "", errors.New("lone UTF-16 surrogate escape")
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// member is one property of a JSON object: its decoded key, the raw value and
// the raw "key":value text.
type member struct {
	key   string
	value []byte
	raw   []byte
}

// objectMembers lists the properties of a JSON object that json.Valid
// accepted. It does not descend into values.
func objectMembers(b []byte) ([]member, error) {
	i := jsonscan.SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, errors.New("want a JSON object")
	}
	i = jsonscan.SkipSpace(b, i+1)
	ms := make([]member, 0, 8) // most documents have a few top-level members
	if i < len(b) && b[i] == '}' {
		return ms, nil
	}
	for i < len(b) {
		start := i
		end := jsonscan.SkipString(b, i)
		keyRaw := b[i:end]
		var key string
		if bytes.IndexByte(keyRaw, '\\') < 0 {
			key = string(keyRaw[1 : len(keyRaw)-1])
		} else if err := json.Unmarshal(keyRaw, &key); err != nil {
			return nil, fmt.Errorf("property name: %v", err)
		}
		i = jsonscan.SkipSpace(b, end)
		i = jsonscan.SkipSpace(b, i+1) // ':'
		vstart := i
		i = jsonscan.Skip(b, i)
		ms = append(ms, member{key: key, value: b[vstart:i], raw: b[start:i]})
		i = jsonscan.SkipSpace(b, i)
		if i >= len(b) || b[i] == '}' {
			return ms, nil
		}
		i = jsonscan.SkipSpace(b, i+1) // ','
	}
	return nil, errors.New("truncated object")
}

func trimSpace(b []byte) []byte {
	i := jsonscan.SkipSpace(b, 0)
	j := len(b)
	for j > i && (b[j-1] == ' ' || b[j-1] == '\t' || b[j-1] == '\n' || b[j-1] == '\r') {
		j--
	}
	return b[i:j]
}

func jsonKind(c byte) string {
	switch {
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	default:
		return "number"
	}
}

func jsonSyntaxError(b []byte) error {
	var v any
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%v at byte %d", se, se.Offset)
	}
	if err == nil {
		return errors.New("invalid JSON")
	}
	return err
}
