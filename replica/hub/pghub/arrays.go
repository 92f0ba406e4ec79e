package pghub

import (
	"encoding/binary"
	"slices"

	"github.com/jackc/pgx/v5/pgtype"
)

// The array parameters of the batched writes (buffer.go) are encoded by
// pgx into one buffer per statement, which it starts again at 256 bytes
// for every statement and grows by append, boxing every element into an
// interface on the way: a 256-row chunk's bodies were copied about five
// times while the buffer grew (a fifth of the sequencer's CPU in the
// tier's sync benchmark). byteaArray and textArray are encoded here
// instead, in PostgreSQL's binary array format, into a buffer grown once.

// byteaArray is a bytea[] parameter (a nil element is NULL).
type byteaArray [][]byte

// textArray is a text[] parameter.
type textArray []string

// arrayHeaderSize is the binary array header of one dimension: the
// number of dimensions, the has-NULL flag, the element type, then the
// dimension's length and lower bound.
const arrayHeaderSize = 20

// arrayHeadroom is room left after an array, for the smaller arrays of
// the same statement that come after it.
func arrayHeadroom(n int) int { return n/16 + 1024 }

func appendArrayHeader(buf []byte, elemOID uint32, n int, hasNull bool) []byte {
	var null uint32
	if hasNull {
		null = 1
	}
	buf = binary.BigEndian.AppendUint32(buf, 1)
	buf = binary.BigEndian.AppendUint32(buf, null)
	buf = binary.BigEndian.AppendUint32(buf, elemOID)
	buf = binary.BigEndian.AppendUint32(buf, uint32(n))
	return binary.BigEndian.AppendUint32(buf, 1)
}

func (a byteaArray) appendBinary(buf []byte) []byte {
	size, hasNull := arrayHeaderSize+4*len(a), false
	for _, b := range a {
		size += len(b)
		hasNull = hasNull || b == nil
	}
	buf = slices.Grow(buf, size+arrayHeadroom(size))
	buf = appendArrayHeader(buf, pgtype.ByteaOID, len(a), hasNull)
	for _, b := range a {
		if b == nil {
			buf = binary.BigEndian.AppendUint32(buf, 0xffffffff) // -1: NULL
			continue
		}
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(b)))
		buf = append(buf, b...)
	}
	return buf
}

func (a textArray) appendBinary(buf []byte) []byte {
	size := arrayHeaderSize + 4*len(a)
	for _, s := range a {
		size += len(s)
	}
	buf = slices.Grow(buf, size+arrayHeadroom(size))
	buf = appendArrayHeader(buf, pgtype.TextOID, len(a), false)
	for _, s := range a {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
		buf = append(buf, s...)
	}
	return buf
}

// presizeArrays has m encode byteaArray and textArray parameters of
// bytea[] and text[] in the binary format itself; anything else, and
// the text format, as before.
func presizeArrays(m *pgtype.Map) {
	for _, oid := range []uint32{pgtype.ByteaArrayOID, pgtype.TextArrayOID} {
		if t, ok := m.TypeForOID(oid); ok {
			if _, done := t.Codec.(arrayCodec); !done {
				m.RegisterType(&pgtype.Type{Name: t.Name, OID: t.OID, Codec: arrayCodec{t.Codec}})
			}
		}
	}
}

// arrayCodec is an array type's codec with byteaArray and textArray
// encoded by encodeArray.
type arrayCodec struct{ pgtype.Codec }

func (c arrayCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if format == pgtype.BinaryFormatCode {
		switch value.(type) {
		case byteaArray:
			if oid == pgtype.ByteaArrayOID {
				return encodeArray{}
			}
		case textArray:
			if oid == pgtype.TextArrayOID {
				return encodeArray{}
			}
		}
	}
	return c.Codec.PlanEncode(m, oid, format, value)
}

type encodeArray struct{}

func (encodeArray) Encode(value any, buf []byte) ([]byte, error) {
	switch v := value.(type) {
	case byteaArray:
		if v == nil {
			return nil, nil
		}
		return v.appendBinary(buf), nil
	case textArray:
		if v == nil {
			return nil, nil
		}
		return v.appendBinary(buf), nil
	}
	panic("pghub: encodeArray planned for another type")
}
