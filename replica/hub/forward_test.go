package hub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/wire"
)

// queueTier is a tier of one hub that always holds the lease, with a queue
// of forwarded decisions the test fills: Pending hands them out one at a
// time, and Claim of the first waits until release is closed, as a
// decision the writer takes its time to commit.
type queueTier struct {
	replica.Notifier
	release chan struct{}
	after   chan int64 // the after of each Pending call

	mu       sync.Mutex
	queue    []hub.Forwarded
	finished []int64
}

var _ hub.Tier = (*queueTier)(nil)

func (q *queueTier) Name() string                                { return "a" }
func (q *queueTier) Lease() hub.Lease                            { return hub.StaticLease{HubName: "a"} }
func (q *queueTier) Open(context.Context) error                  { return nil }
func (q *queueTier) Close(context.Context) error                 { return nil }
func (q *queueTier) Hubs(context.Context) ([]hub.TierHub, error) { return nil, nil }
func (q *queueTier) TakeoverCount() int64                        { return 0 }
func (q *queueTier) Remove(context.Context, string) error        { return nil }
func (q *queueTier) EdgeHub(context.Context, string, bool) error { return nil }
func (q *queueTier) Refuse(context.Context, int64, []byte) error { return nil }
func (q *queueTier) Takeovers(context.Context, int) ([]hub.Takeover, error) {
	return nil, nil
}
func (q *queueTier) Forward(context.Context, string, []byte) (func(context.Context) ([]byte, error), error) {
	return nil, errors.New("the sequencer forwards nothing")
}

func (q *queueTier) Pending(_ context.Context, after int64, _ int) ([]hub.Forwarded, error) {
	select {
	case q.after <- after:
	default:
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, f := range q.queue {
		if f.Seq > after {
			return []hub.Forwarded{f}, nil
		}
	}
	return nil, nil
}

func (q *queueTier) Claim(_ context.Context, _ hub.Tx, seq int64) error {
	if seq == 1 {
		<-q.release
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, s := range q.finished {
		if s == seq {
			return hub.ErrDecided
		}
	}
	return nil
}

func (q *queueTier) Finish(_ context.Context, _ hub.Tx, seq int64, _ []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.finished = append(q.finished, seq)
	q.queue = q.queue[1:]
	return nil
}

// TestTier_SequencerQueuesForwardedWhileCommitting: while the writer is
// still deciding one forwarded push, the sequencer reads the next from the
// queue and queues it behind; both are decided once, in queue order.
func TestTier_SequencerQueuesForwardedWhileCommitting(t *testing.T) {
	ctx := context.Background()
	q := &queueTier{release: make(chan struct{}), after: make(chan int64, 16)}
	h := hub.New(hub.Config{Store: newStore(t, t.TempDir()), Name: "a", Tier: q})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	if _, _, err := h.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	q.mu.Lock()
	for seq := int64(1); seq <= 2; seq++ {
		id := fmt.Sprintf("d%d", seq)
		v := wire.Version{Container: "c", ID: id, Op: replica.OpCreate, Version: fmt.Sprintf("n-%d", seq), TS: 1,
			Body: []byte(fmt.Sprintf(`{"id":%q,"pk":"a"}`, id))}
		q.queue = append(q.queue, hub.Forwarded{Seq: seq, Kind: hub.ForwardKindPush, Payload: hub.ForwardedPush("n", []wire.Version{v})})
	}
	q.mu.Unlock()
	q.Wake()
	released := false
	defer func() {
		if !released {
			close(q.release)
		}
	}()
	timeout := time.After(10 * time.Second)
	for read := false; !read; {
		select {
		case after := <-q.after:
			read = after == 1
		case <-timeout:
			t.Fatal("the sequencer did not read the forwarded push after the first while the first was being decided")
		}
	}
	close(q.release)
	released = true
	for {
		q.mu.Lock()
		got := append([]int64(nil), q.finished...)
		q.mu.Unlock()
		if len(got) == 2 && (got[0] != 1 || got[1] != 2) {
			t.Fatalf("decided %v, want [1 2]", got)
		}
		if len(got) == 2 && h.Head() == 2 {
			break
		}
		select {
		case <-timeout:
			t.Fatalf("decided %v after 10s, head %d, want [1 2], head 2", got, h.Head())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
