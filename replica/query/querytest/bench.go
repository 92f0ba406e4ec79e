package querytest

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// BenchDoc is document number i of the query benchmarks: 1,000 owners of
// 100 documents, 20,000 accounts of 5, prices 0-9,999 spread evenly.
func BenchDoc(i int64) []byte {
	return fmt.Appendf(nil, `{"id":"d%06d","owner":"user%d","account":"a%05d","price":%d,"name":"item %d","tags":["t%d","t%d"],"address":{"city":"c%d"}}`,
		i, i%1000, i%20000, (i*7919)%10000, i, i%10, i%7, i%50)
}

// Fill writes the n documents of BenchDoc through create from 32
// goroutines, and returns the first error.
func Fill(n int64, create func(body []byte) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
				if err := create(BenchDoc(i)); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
