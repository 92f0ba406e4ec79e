package edge

import (
	"context"
	"syscall"
	"testing"
)

// A query runs on a thread whose nice value is queryNice; the caller's
// thread keeps its own.
func TestQueryPool_LowersPriority(t *testing.T) {
	var p queryPool
	p.init(1)
	defer p.close()
	// The raw system call returns 20 - nice.
	nice := func() int {
		v, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
		if err != nil {
			t.Fatal(err)
		}
		return 20 - v
	}
	var got int
	if err := p.run(context.Background(), func() { got = nice() }); err != nil {
		t.Fatal(err)
	}
	if !p.niced {
		t.Fatal("niced=false, want the workers' priority lowered")
	}
	if got != queryNice {
		t.Fatalf("a query's thread nice=%d, want %d", got, queryNice)
	}
	if got := nice(); got == queryNice {
		t.Fatalf("the caller's thread nice=%d, want it unchanged", got)
	}
}
