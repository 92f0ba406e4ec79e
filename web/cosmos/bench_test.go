package cosmos_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkServer_Create is one SDK-shaped item create through the Cosmos
// endpoint's handler over a real edge replica (durability normal), without
// the network.
func BenchmarkServer_Create(b *testing.B) {
	n := newNode(b)
	srv := n.handler
	date := time.Now().UTC().Format(http.TimeFormat)
	auth := n.key.Authorization("POST", "docs", collLink, date)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		body := fmt.Sprintf(`{"id":"b%d","region":"r%d","price":%d,"name":"item %d"}`, i, i%8, i, i)
		req := httptest.NewRequest("POST", docs, strings.NewReader(body))
		req.Header.Set("x-ms-date", date)
		req.Header.Set("Authorization", auth)
		req.Header.Set("x-ms-documentdb-partitionkey", fmt.Sprintf(`["r%d"]`, i%8))
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
