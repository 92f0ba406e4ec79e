package migrate

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
)

// checksum is a table's row count and the SHA-256 of its rows in key
// order, each column written with a type tag: integers as 8 bytes big
// endian, text and bytes with their length first, NULL and booleans as a
// tag alone. Both sides hash the values they read through the same code,
// so equal sums mean equal rows, column by column, in the same order.
type checksum struct {
	h    hash.Hash
	buf  []byte
	rows int64
}

func newChecksum() *checksum { return &checksum{h: sha256.New()} }

func (c *checksum) add(vals []any) error {
	b := c.buf[:0]
	for _, v := range vals {
		switch v := v.(type) {
		case int64:
			b = append(b, 'i')
			b = binary.BigEndian.AppendUint64(b, uint64(v))
		case string:
			b = append(b, 's')
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		case []byte:
			if v == nil {
				b = append(b, 'n')
				break
			}
			b = append(b, 'b')
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		case bool:
			if v {
				b = append(b, 't')
			} else {
				b = append(b, 'f')
			}
		default:
			return fmt.Errorf("checksum: value of type %T", v)
		}
	}
	c.h.Write(b)
	if cap(b) <= 1<<20 {
		c.buf = b
	}
	c.rows++
	return nil
}

func (c *checksum) sum() string { return hex.EncodeToString(c.h.Sum(nil)) }
