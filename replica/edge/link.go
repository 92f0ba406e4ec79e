package edge

import (
	"context"
	"sync"
	"time"
)

// Link is a replica's connection to its hubs that can be taken offline and
// back ("airplane mode"): offline, the Syncer is closed and the replica goes
// on accepting reads and writes; online, a new Syncer resumes from the
// replica's durable sync state.
type Link struct {
	r    *Replica
	cfg  SyncConfig
	home *home // the hub last synced with and the rehome count, across Syncers
	mu   sync.Mutex
	s    *Syncer
}

// NewLink returns an offline link; call SetOnline(true).
func NewLink(r *Replica, cfg SyncConfig) (*Link, error) {
	if _, err := NewSyncer(r, cfg); err != nil { // check the config once
		return nil, err
	}
	return &Link{r: r, cfg: cfg, home: &home{}}, nil
}

// linkCloseTimeout bounds how long going offline waits for the sync session
// to end.
const linkCloseTimeout = 10 * time.Second

// SetOnline starts or stops syncing; it does nothing when already so.
func (l *Link) SetOnline(on bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), linkCloseTimeout)
	defer cancel()
	return l.set(ctx, on)
}

func (l *Link) set(ctx context.Context, on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case on && l.s == nil:
		s, err := NewSyncer(l.r, l.cfg)
		if err != nil {
			return err
		}
		s.home = l.home
		if err := s.Open(context.Background()); err != nil {
			return err
		}
		l.s = s
	case !on && l.s != nil:
		err := l.s.Close(ctx)
		l.s = nil
		return err
	}
	return nil
}

// Online reports whether the link is syncing.
func (l *Link) Online() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s != nil
}

// Status reports the sync client's state (offline: not connected).
func (l *Link) Status() SyncStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s == nil {
		return SyncStatus{LastError: "offline: syncing was turned off", Rehomes: l.home.rehomes.Load()}
	}
	return l.s.Status()
}

// Close takes the link offline.
func (l *Link) Close(ctx context.Context) error { return l.set(ctx, false) }
