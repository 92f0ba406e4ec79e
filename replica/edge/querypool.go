package edge

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/edgesync/edgesync/replica"
)

// queryPool runs queries on a fixed set of worker goroutines, each locked
// to an OS thread whose scheduling priority is lowered (queryNice, where
// the platform allows it: lowerThreadPriority). A query's CPU then never
// competes on equal terms with the writer's threads: when a durable
// commit's fsync returns, the kernel gives the writer's thread a CPU before
// the query threads, and the workers hold at most as many of the Go
// runtime's processors as there are workers, leaving the others to the
// write's goroutines.
//
// A caller hands its query to a worker and waits for it to finish; while
// every worker is busy, callers wait their turn (or until their context
// ends). A panic in a query is recovered on the worker, which goes on
// serving, and raised again on the caller's goroutine.
type queryPool struct {
	size    int
	jobs    chan *queryJob
	stop    chan struct{}
	wg      sync.WaitGroup
	started atomic.Bool
	mu      sync.Mutex // orders starting the workers and closing
	closed  bool
	// niced reports whether the workers' threads run at the lowered
	// priority (false where the platform does not allow it).
	niced bool
}

type queryJob struct {
	fn    func()
	done  chan struct{}
	panic *queryPanic
}

// queryPanic carries a panic from a worker to the caller, with the
// worker's stack (the caller's own shows only the hand-off).
type queryPanic struct {
	Value any
	Stack []byte
}

func (p *queryPanic) Error() string {
	return fmt.Sprintf("%v\n\nquery worker stack:\n%s", p.Value, p.Stack)
}

// Unwrap returns the panic's value when it is an error.
func (p *queryPanic) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

// queryNice is the nice value of the query workers' threads (0 is the
// process's default, 19 the lowest priority).
const queryNice = 10

// defaultQueryWorkers is the pool's size when Config.QueryWorkers is 0:
// half the Go processors (the servers run two per CPU: cli.TuneProcs),
// at least one.
func defaultQueryWorkers() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// init sizes the pool; its workers start at the first query (run), so
// that a process holding many replicas that are not queried holds no
// threads for them.
func (p *queryPool) init(n int) {
	p.size, p.jobs, p.stop = n, make(chan *queryJob), make(chan struct{})
}

// ensure starts the workers unless they run or the pool is closed.
func (p *queryPool) ensure() {
	if p.started.Load() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started.Load() || p.closed {
		return
	}
	ok := make(chan bool, p.size)
	p.wg.Add(p.size)
	for range p.size {
		go p.work(ok)
	}
	niced := true
	for range p.size {
		niced = <-ok && niced
	}
	p.niced = niced
	p.started.Store(true)
}

// work serves jobs on its own OS thread until stop. It never unlocks the
// thread: when it returns, the runtime ends the thread, so that the
// lowered priority never passes to other goroutines.
func (p *queryPool) work(ok chan<- bool) {
	defer p.wg.Done()
	runtime.LockOSThread()
	ok <- lowerThreadPriority(queryNice) == nil
	for {
		select {
		case j := <-p.jobs:
			j.run()
		case <-p.stop:
			return
		}
	}
}

func (j *queryJob) run() {
	defer close(j.done)
	defer func() {
		if v := recover(); v != nil {
			j.panic = &queryPanic{Value: v, Stack: debug.Stack()}
		}
	}()
	j.fn()
}

// run runs fn on a worker and returns once it has returned; it returns
// ctx's error if ctx ends before a worker is free, and replica.ErrClosed once the
// pool is closed. A panic in fn panics here.
func (p *queryPool) run(ctx context.Context, fn func()) error {
	p.ensure()
	j := &queryJob{fn: fn, done: make(chan struct{})}
	// A free worker takes the job even when ctx has ended meanwhile: the
	// query then stops at its own time limit, as it does on its caller.
	select {
	case p.jobs <- j:
	default:
		select {
		case p.jobs <- j:
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-p.stop:
			return replica.ErrClosed
		}
	}
	<-j.done
	if j.panic != nil {
		panic(j.panic)
	}
	return nil
}

// close stops the workers once the queries they run have returned.
func (p *queryPool) close() {
	if p.stop == nil {
		return
	}
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.stop)
	}
	p.mu.Unlock()
	p.wg.Wait()
}
