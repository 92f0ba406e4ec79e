package pghub

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// The presized arrays encode to the same bytes as the plain slices, in
// both formats, NULL and empty included.
func TestPresizeArrays_SameEncoding(t *testing.T) {
	plain, sized := pgtype.NewMap(), pgtype.NewMap()
	presizeArrays(sized)
	tests := []struct {
		name       string
		oid        uint32
		want, have any
	}{
		{"bytea", pgtype.ByteaArrayOID, [][]byte{[]byte(`{"id":"a"}`), {}, nil, bytes.Repeat([]byte("x"), 3000)}, nil},
		{"bytea empty", pgtype.ByteaArrayOID, [][]byte{}, nil},
		{"bytea null", pgtype.ByteaArrayOID, [][]byte(nil), nil},
		{"text", pgtype.TextArrayOID, []string{"a", "", "é ü", "x,y \"z\""}, nil},
		{"text empty", pgtype.TextArrayOID, []string{}, nil},
		{"text null", pgtype.TextArrayOID, []string(nil), nil},
	}
	for _, tt := range tests {
		switch v := tt.want.(type) {
		case [][]byte:
			tt.have = byteaArray(v)
		case []string:
			tt.have = textArray(v)
		}
		for _, format := range []int16{pgtype.BinaryFormatCode, pgtype.TextFormatCode} {
			t.Run(fmt.Sprintf("%s/%d", tt.name, format), func(t *testing.T) {
				want, err := plain.Encode(tt.oid, format, tt.want, []byte("prefix"))
				if err != nil {
					t.Fatal(err)
				}
				got, err := sized.Encode(tt.oid, format, tt.have, []byte("prefix"))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) || (got == nil) != (want == nil) {
					t.Fatalf("Encode(%T)=%q, want %q", tt.have, got, want)
				}
			})
		}
	}
}

// versionArgs are the arguments of the versions' INSERT for n versions of
// 1 KiB bodies, as chunk.queue builds them.
func versionArgs(n int, presized bool) []any {
	body := make([][]byte, n)
	cols := make([][]string, 9)
	for i := range cols {
		cols[i] = make([]string, n)
	}
	ts, lsn, cid := make([]int64, n), make([]int64, n), make([]int64, n)
	for i := range n {
		body[i] = bytes.Repeat([]byte("x"), 1024)
		cols[0][i], cols[1][i], cols[2][i], cols[3][i] = fmt.Sprintf("n1-%09d", i), "bench", fmt.Sprintf("d%09d", i), "tenant-7"
		cols[4][i], cols[6][i], cols[7][i] = "upsert", "n1", "confirmed"
	}
	col := func(i int) any {
		if presized {
			return textArray(cols[i])
		}
		return cols[i]
	}
	var b any = body
	if presized {
		b = byteaArray(body)
	}
	return []any{col(0), col(1), col(2), col(3), col(4), col(5), col(6), ts, b, col(7), lsn, col(8), cid}
}

// BenchmarkVersionsInsert_Params is pgx building the parameters of the
// versions' INSERT for a chunk of 256 versions of 1 KiB, as a batch does
// for each statement.
func BenchmarkVersionsInsert_Params(b *testing.B) {
	t, i8 := uint32(pgtype.TextArrayOID), uint32(pgtype.Int8ArrayOID)
	sd := &pgconn.StatementDescription{ParamOIDs: []uint32{t, t, t, t, t, t, t, i8, pgtype.ByteaArrayOID, t, i8, t, i8}}
	for _, presized := range []bool{false, true} {
		b.Run(fmt.Sprintf("presized=%v", presized), func(b *testing.B) {
			m := pgtype.NewMap()
			if presized {
				presizeArrays(m)
			}
			args := versionArgs(256, presized)
			var eqb pgx.ExtendedQueryBuilder
			b.ReportAllocs()
			b.SetBytes(256 * 1024)
			for b.Loop() {
				if err := eqb.Build(m, sd, args); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
