package edge

import (
	"context"
	"errors"
	"testing"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/sqlitestore"
	"github.com/edgesync/edgesync/replica/wire"
)

// Frames a sync session queues one behind the other share a group commit:
// each job must build on the sync state the jobs before it left in the
// open transaction, not on the state published at the last commit. Here an
// outcomes frame covering LSN 50 follows a changes frame covering 100 in
// the same group; judged against the published resume point (0), it would
// store 50 over 100.
func TestQueued_FramesShareAGroup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := openInternal(t, dir)

	// Hold the writer in a job so that the frames queue behind it and
	// join its group.
	release, holding := make(chan struct{}), make(chan struct{})
	hold, err := r.queue(ctx, func(context.Context) error {
		close(holding)
		<-release
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-holding
	commits := r.w.Stats().Commits.Load()
	changes, err := r.QueueConfirmed(ctx, nil, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	conflicts, err := r.QueueConflicts(ctx, []wire.Conflict{}, 7)
	if err != nil {
		t.Fatal(err)
	}
	outcomes, err := r.QueueOutcomes(ctx, nil, 50)
	if err != nil {
		t.Fatal(err)
	}
	later, err := r.QueueConflicts(ctx, nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	for _, wait := range []func() error{hold, changes, conflicts, outcomes, later} {
		if err := wait(); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.w.Stats().Commits.Load() - commits; n != 1 {
		t.Fatalf("%d commits for the held job and four frames, want 1 (the test needs them in one group)", n)
	}
	if got := r.ResumeLSN(); got != 100 {
		t.Errorf("resume LSN %d, want 100", got)
	}
	if got := r.ConflictSeq(); got != 7 {
		t.Errorf("conflict seq %d, want 7", got)
	}

	// And durably so.
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r2 := openInternal(t, dir)
	if got := r2.ResumeLSN(); got != 100 {
		t.Errorf("after reopening: resume LSN %d, want 100", got)
	}
	if got := r2.ConflictSeq(); got != 7 {
		t.Errorf("after reopening: conflict seq %d, want 7", got)
	}
}

// A group that fails is rolled back, and so is the writer's sync state:
// the next job builds on what was committed.
func TestQueued_RollbackRestoresSyncState(t *testing.T) {
	ctx := context.Background()
	r := openInternal(t, t.TempDir())
	if err := r.ApplyConfirmed(ctx, nil, nil, 10); err != nil {
		t.Fatal(err)
	}
	// A job that advances the state, then fails to write.
	err := r.submit(ctx, func(ctx context.Context) error {
		st := r.wsync
		st.ResumeLSN = 20
		if err := r.saveSyncState(ctx, &st); err != nil {
			return err
		}
		return sqlitestore.Wrote("write", errors.New("disk on fire"))
	}, nil)
	if err == nil {
		t.Fatal("the failing job succeeded")
	}
	if r.wsync.ResumeLSN != 10 {
		t.Errorf("writer's resume LSN %d after the failed job, want 10", r.wsync.ResumeLSN)
	}
	// Outcomes covering 15 advance the resume point past 10 (not judged
	// against the 20 that was rolled back).
	if err := r.ApplyOutcomes(ctx, nil, 15); err != nil {
		t.Fatal(err)
	}
	if got := r.ResumeLSN(); got != 15 {
		t.Errorf("resume LSN %d, want 15", got)
	}
}

// An own write confirmed as written, whose item the hub has already moved
// past (a newer version from another node was streamed first): the outcome
// settles the write, and the item keeps showing the newer version, locally
// and as confirmed.
func TestOutcome_ConfirmedBehindNewerVersion(t *testing.T) {
	ctx := context.Background()
	r := openInternal(t, t.TempDir())
	if _, _, err := r.PutContainer(ctx, replica.Container{Name: "products", PartitionKey: "/category"}); err != nil {
		t.Fatal(err)
	}
	own, err := r.Create(ctx, "products", []byte(`{"id":"p1","category":"tools","price":10}`))
	if err != nil {
		t.Fatal(err)
	}
	newer := wire.Change{LSN: 20, CRTS: 2, Container: "products", Op: replica.OpReplace, ID: "p1", PK: "tools",
		Version: "other-1", Base: own.Version, Origin: "other", TS: 2, Body: []byte(`{"id":"p1","category":"tools","price":12}`)}
	if err := r.ApplyConfirmed(ctx, nil, []wire.Change{newer}, 20); err != nil {
		t.Fatal(err)
	}
	out := wire.Outcome{Version: own.Version, Container: "products", ID: "p1", Outcome: wire.OutcomeConfirmed, LSN: 10, CRTS: 1}
	if err := r.ApplyOutcomes(ctx, []wire.Outcome{out}, 20); err != nil {
		t.Fatal(err)
	}
	if got := r.Pending(); got != 0 {
		t.Fatalf("%d writes pending, want 0", got)
	}
	for _, consistency := range []string{"", ConsistencyConfirmed} {
		it, err := r.Get(ctx, "products", "p1", ReadOptions{Consistency: consistency})
		if err != nil {
			t.Fatalf("Get (%q): %v", consistency, err)
		}
		if it.Version != newer.Version || it.LSN != 20 {
			t.Errorf("Get (%q): version %s at LSN %d, want %s at 20", consistency, it.Version, it.LSN, newer.Version)
		}
	}
}

// openInternal opens a replica in dir, closed at the end of the test.
func openInternal(t *testing.T, dir string) *Replica {
	t.Helper()
	r := New(Config{Dir: dir})
	if err := r.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}
