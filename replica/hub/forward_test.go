package hub_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/wire"
)

// queueTier is a tier of one hub that always holds the lease, with a queue
// of forwarded decisions the test fills: Pending hands them out one at a
// time (none while paused), and Claim of decision hold waits until release
// is closed, as a decision the writer takes its time to commit.
type queueTier struct {
	replica.Notifier
	hold    int64 // the decision whose Claim waits for release
	release chan struct{}
	skip    chan []int64 // the skip of each Pending call

	mu       sync.Mutex
	paused   bool
	queue    []hub.Forwarded
	keys     map[int64]pushKey // the node and first counter of each push queued
	finished []int64
}

// pushKey is what a tier's queue keeps of a push (Tier.Forward).
type pushKey struct {
	node  string
	first int64
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
func (q *queueTier) Forward(context.Context, string, []byte, string, int64) (func(context.Context) ([]byte, error), error) {
	return nil, errors.New("the sequencer forwards nothing")
}

func (q *queueTier) PushQueued(_ context.Context, _ hub.Tx, node string, before, except int64) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, f := range q.queue {
		if k, ok := q.keys[f.Seq]; ok && f.Seq != except && k.node == node && k.first < before {
			return true, nil
		}
	}
	return false, nil
}

func (q *queueTier) Pending(_ context.Context, skip []int64, _ int) ([]hub.Forwarded, error) {
	select {
	case q.skip <- skip:
	default:
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.paused {
		return nil, nil
	}
	for _, f := range q.queue {
		if !slices.Contains(skip, f.Seq) {
			return []hub.Forwarded{f}, nil
		}
	}
	return nil, nil
}

func (q *queueTier) Claim(_ context.Context, _ hub.Tx, seq int64) error {
	if seq == q.hold {
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
	q.queue = slices.DeleteFunc(q.queue, func(f hub.Forwarded) bool { return f.Seq == seq })
	return nil
}

// add queues a forwarded push of one new document, decision seq.
func (q *queueTier) add(seq int64) {
	id := fmt.Sprintf("d%d", seq)
	v := wire.Version{Container: "c", ID: id, Op: replica.OpCreate, Version: fmt.Sprintf("n-%d", seq), TS: 1,
		Body: []byte(fmt.Sprintf(`{"id":%q,"pk":"a"}`, id))}
	q.addPush(seq, "n", v)
}

// addPush queues a forwarded push of versions by node, decision seq.
func (q *queueTier) addPush(seq int64, node string, versions ...wire.Version) {
	k := pushKey{}
	k.node, k.first = hub.ForwardedPushKey(node, versions)
	q.mu.Lock()
	q.queue = append(q.queue, hub.Forwarded{Seq: seq, Kind: hub.ForwardedPush, Payload: hub.ForwardedPushPayload(node, versions)})
	slices.SortFunc(q.queue, func(a, b hub.Forwarded) int { return int(a.Seq - b.Seq) })
	if q.keys == nil {
		q.keys = map[int64]pushKey{}
	}
	q.keys[seq] = k
	q.mu.Unlock()
	q.Wake()
}

// remove takes decision seq out of the queue undecided, as a queue entry
// that is gone.
func (q *queueTier) remove(seq int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queue = slices.DeleteFunc(q.queue, func(f hub.Forwarded) bool { return f.Seq == seq })
}

// pause stops (true) or resumes the sequencer's reading of the queue.
func (q *queueTier) pause(paused bool) {
	q.mu.Lock()
	q.paused = paused
	q.mu.Unlock()
	q.Wake()
}

// isFinished says decision seq was decided.
func (q *queueTier) isFinished(seq int64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Contains(q.finished, seq)
}

// decided waits until the decisions finished are want, in order, and the
// hub's head is len(want).
func (q *queueTier) decided(t *testing.T, h *hub.Hub, want ...int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q.mu.Lock()
		got := append([]int64(nil), q.finished...)
		q.mu.Unlock()
		if len(got) >= len(want) && !slices.Equal(got, want) {
			t.Fatalf("decided %v, want %v", got, want)
		}
		if len(got) == len(want) && h.Head() == int64(len(want)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("decided %v after 10s, head %d, want %v, head %d", got, h.Head(), want, len(want))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func openQueueTierHub(t *testing.T, q *queueTier) *hub.Hub {
	t.Helper()
	ctx := context.Background()
	h := hub.New(hub.Config{Store: newStore(t, t.TempDir()), Name: "a", Tier: q})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(ctx) })
	if _, _, err := h.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestTier_SequencerDecidesForwardedSeenLate: a forwarded decision that
// appears in the queue after one behind it was decided (its hub's insert
// committed later) is decided too.
func TestTier_SequencerDecidesForwardedSeenLate(t *testing.T) {
	q := &queueTier{skip: make(chan []int64, 16)}
	h := openQueueTierHub(t, q)
	q.add(2)
	q.decided(t, h, 2)
	q.add(1)
	q.decided(t, h, 2, 1)
}

// TestTier_SequencerQueuesForwardedWhileCommitting: while the writer is
// still deciding one forwarded push, the sequencer reads the next from the
// queue and queues it behind; both are decided once, in queue order.
func TestTier_SequencerQueuesForwardedWhileCommitting(t *testing.T) {
	q := &queueTier{hold: 1, release: make(chan struct{}), skip: make(chan []int64, 16)}
	h := openQueueTierHub(t, q)
	q.add(1)
	q.add(2)
	released := false
	defer func() {
		if !released {
			close(q.release)
		}
	}()
	timeout := time.After(10 * time.Second)
	for read := false; !read; {
		select {
		case skip := <-q.skip:
			read = slices.Equal(skip, []int64{1})
		case <-timeout:
			t.Fatal("the sequencer did not read the forwarded push after the first while the first was being decided")
		}
	}
	close(q.release)
	released = true
	q.decided(t, h, 1, 2)
}
