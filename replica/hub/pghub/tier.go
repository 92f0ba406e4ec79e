package pghub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
)

// DefaultLeaseTimeout is how long a lease lasts without renewal.
const DefaultLeaseTimeout = 5 * time.Second

// notifyChannel is the LISTEN/NOTIFY channel on which hubs announce
// commits and forwarded decisions; revokePrefix and an edge's name, that
// the edge was revoked; decidedPrefix and seqs, comma-separated, a commit
// and the forwarded decisions of those seqs that it decided (or refused),
// so that only the hub waiting for each reads its result.
const (
	notifyChannel = "edgesync"
	revokePrefix  = "revoke:"
	decidedPrefix = "decided:"
)

// TierConfig configures a Tier.
type TierConfig struct {
	// Store is the hub's store; the tier uses its connections.
	Store *Store
	// Name is this hub's name in the tier (unique among its hubs).
	Name string
	// Address is where this hub listens, as the status shows it.
	Address string
	// LeaseTimeout bounds how long the tier is without a sequencer when
	// the holder stops at any instant: the holder renews the lease every
	// LeaseTimeout/5 for a term of LeaseTimeout less one renewal interval
	// and a tenth of LeaseTimeout (leaseTerm), and the next hub takes it
	// over at the expiry, by the database's clock. Default
	// DefaultLeaseTimeout.
	LeaseTimeout time.Duration
	// Poll is how often a hub reads the heads without a notification.
	// Default 1s.
	Poll   time.Duration
	Logger *slog.Logger
}

// Tier is a hub's place among the hubs that share one PostgreSQL database:
// its row in hubs (heartbeat by the database's clock), the lease (one row:
// holder, epoch, expiry), the takeovers, and the queue of decisions the
// hubs that do not sequence forward to the one that does.
//
// Fencing: a write transaction of the store that takes an LSN or a conflict
// sequence number checks, just before it commits, that this hub holds the
// lease at its epoch and that it has not expired, locking the lease row
// FOR SHARE (tx.beforeCommit); a takeover updates that row, so it waits for
// such a transaction to end, and a transaction after it finds the lease
// gone and rolls back. A hub that lost the lease commits no decision.
type Tier struct {
	cfg  TierConfig
	s    *Store
	log  *slog.Logger
	held atomic.Pointer[lease] // nil while this hub does not hold the lease

	notify    replica.Notifier
	takeovers atomic.Int64
	trimmedAt atomic.Int64 // unix nanoseconds of the last trim of the queue
	expiresAt atomic.Int64 // unix nanoseconds when the lease expires, as the last round read it
	address   atomic.Pointer[string]

	revoked func(edge string) // set by OnRevoke before Open
	secret  []byte            // the tier's secret (read at Open)

	seqMu sync.Mutex
	seqAt time.Time // when seqOf was read
	seqOf [2]string // the sequencer's name and address as last read

	waitMu  sync.Mutex
	waiting map[int64]chan struct{} // the forwarded decisions this hub waits for, by seq: signalled when a notification names it

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var (
	_ hub.Tier        = (*Tier)(nil)
	_ hub.HandoffTier = (*Tier)(nil)
	_ hub.Lease       = (*lease)(nil)
)

// lease is the lease as this hub holds it.
type lease struct {
	holder string
	epoch  int64
	until  time.Time // by this process's monotonic clock: renewal start + term
}

func (l *lease) Holder() string { return l.holder }
func (l *lease) Epoch() int64   { return l.epoch }

// renewEvery is how often the holder renews the lease and every other hub
// heartbeats.
func (t *Tier) renewEvery() time.Duration { return max(t.cfg.LeaseTimeout/5, 10*time.Millisecond) }

// leaseTerm is how long each renewal holds the lease: the lease timeout
// less a renewal interval and a tenth of the timeout. The holder stops at
// any instant at most a term after its last renewal; the tenth is the
// margin the next hub has to see the expiry, take the lease and decide
// what waits, so that all is done within the lease timeout. A holder late
// by up to a term less a renewal interval keeps the lease.
func (t *Tier) leaseTerm() time.Duration {
	return max(t.cfg.LeaseTimeout-t.renewEvery()-t.cfg.LeaseTimeout/10, 10*time.Millisecond)
}

// takeLockWait bounds how long the next hub waits for the lease row's lock
// when it takes an expired lease (another hub's lease round or a commit
// holds it briefly): past it, it tries again at once.
func (t *Tier) takeLockWait() time.Duration { return max(t.renewEvery()/2, 10*time.Millisecond) }

// nextSQL selects the hub that takes the lease of lease row l over when
// it expires: the first hub in order, not removed, that heartbeat within
// the lease timeout ($1), other than the expired lease's holder (which
// missed its renewals); the empty name for none.
const nextSQL = `coalesce((SELECT name FROM hubs WHERE NOT removed AND heartbeat > clock_timestamp() - $1::interval
	AND (name <> l.holder OR l.expires_at > clock_timestamp()) ORDER BY ord LIMIT 1), '')`

// NewTier returns the tier of cfg.Store; call Open (the hub does).
func NewTier(cfg TierConfig) *Tier {
	if cfg.LeaseTimeout <= 0 {
		cfg.LeaseTimeout = DefaultLeaseTimeout
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	t := &Tier{cfg: cfg, s: cfg.Store, log: cfg.Logger.With("hub_name", cfg.Name)}
	t.address.Store(&cfg.Address)
	cfg.Store.tier = t
	return t
}

// SetAddress changes the address the tier lists for this hub (once it
// listens, on a port chosen then); the next heartbeat records it.
func (t *Tier) SetAddress(addr string) { t.address.Store(&addr) }

// Name is this hub's name.
func (t *Tier) Name() string { return t.cfg.Name }

// OnRevoke sets what runs when any hub of the tier revokes an edge; call
// it before Open.
func (t *Tier) OnRevoke(fn func(edge string)) { t.revoked = fn }

// Lease returns the lease while this hub holds it and has renewed it
// within the lease timeout by its own clock.
func (t *Tier) Lease() hub.Lease {
	l := t.held.Load()
	if l == nil || time.Now().After(l.until) {
		return nil
	}
	return l
}

// Secret is the tier's secret (hub.HandoffTier).
func (t *Tier) Secret() []byte { return t.secret }

// LeaseTimeout is the lease timeout.
func (t *Tier) LeaseTimeout() time.Duration { return t.cfg.LeaseTimeout }

// Sequencer returns the name and address of the hub that holds the lease,
// "" for none; it reads them at most every renewal interval, or again
// when fresh (hub.HandoffTier).
func (t *Tier) Sequencer(ctx context.Context, fresh bool) (name, address string, err error) {
	t.seqMu.Lock()
	defer t.seqMu.Unlock()
	if !fresh && time.Since(t.seqAt) < t.renewEvery() {
		return t.seqOf[0], t.seqOf[1], nil
	}
	err = t.s.pool.QueryRow(ctx, `SELECT l.holder, coalesce(h.address, '') FROM lease l LEFT JOIN hubs h ON h.name = l.holder AND NOT h.removed
		WHERE l.id = 1 AND l.expires_at > clock_timestamp()`).Scan(&name, &address)
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil
	}
	if err != nil {
		return "", "", fmt.Errorf("read the sequencer: %w", err)
	}
	t.seqOf, t.seqAt = [2]string{name, address}, time.Now()
	return name, address, nil
}

// Changed returns a channel closed at the next notification or poll.
func (t *Tier) Changed() <-chan struct{} { return t.notify.Changed() }

// TakeoverCount counts this hub's takeovers.
func (t *Tier) TakeoverCount() int64 { return t.takeovers.Load() }

// readSecret returns the tier's secret, drawing it if no hub has.
func (t *Tier) readSecret(ctx context.Context) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("draw the tier's secret: %w", err)
	}
	if _, err := t.s.pool.Exec(ctx, `INSERT INTO tier_secret (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, hex.EncodeToString(b[:])); err != nil {
		return "", fmt.Errorf("keep the tier's secret: %w", err)
	}
	// A statement of its own: it sees the secret another hub drew first.
	var secret string
	if err := t.s.pool.QueryRow(ctx, `SELECT secret FROM tier_secret WHERE id = 1`).Scan(&secret); err != nil {
		return "", fmt.Errorf("read the tier's secret: %w", err)
	}
	return secret, nil
}

// Open joins the tier, runs one round of the lease, and starts the
// heartbeat and the listener.
func (t *Tier) Open(ctx context.Context) error {
	if err := t.join(ctx); err != nil {
		return err
	}
	secret, err := t.readSecret(ctx)
	if err != nil {
		return err
	}
	t.secret = []byte(secret)
	if _, err := t.tick(ctx); err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	listening := make(chan struct{})
	t.wg.Add(2)
	go t.heartbeat(rctx)
	go t.listen(rctx, listening)
	// Notifications sent before this hub listens are not delivered to it:
	// it starts serving once it listens (or, if the listener cannot
	// connect, with the poll alone).
	select {
	case <-listening:
	case <-time.After(5 * time.Second):
		t.log.Warn("not listening for commits yet; following by polling")
	case <-ctx.Done():
	}
	return nil
}

// Close stops the heartbeat and the listener and releases the lease if
// this hub holds it, so that the next hub takes over at once.
func (t *Tier) Close(ctx context.Context) error {
	if t.cancel == nil {
		return nil
	}
	t.cancel()
	t.wg.Wait()
	l := t.held.Swap(nil)
	if l == nil {
		return nil
	}
	_, err := t.s.pool.Exec(ctx, `UPDATE lease SET expires_at = clock_timestamp(), renewed_at = clock_timestamp()
		WHERE id = 1 AND holder = $1 AND epoch = $2`, l.holder, l.epoch)
	if err != nil {
		return fmt.Errorf("release the lease: %w", err)
	}
	t.log.Info("lease released", "epoch", l.epoch)
	return nil
}

// join adds this hub to the tier, or records it back: a hub removed from
// the tier that starts again joins it last in order.
func (t *Tier) join(ctx context.Context) error {
	_, err := t.s.pool.Exec(ctx, `INSERT INTO hubs (name, address, heartbeat) VALUES ($1, $2, clock_timestamp())
		ON CONFLICT (name) DO UPDATE SET address = excluded.address, heartbeat = excluded.heartbeat,
			ord = CASE WHEN hubs.removed THEN nextval('hub_order') ELSE hubs.ord END, removed = false`, t.cfg.Name, *t.address.Load())
	if err != nil {
		return fmt.Errorf("join the tier: %w", err)
	}
	return nil
}

func (t *Tier) heartbeat(ctx context.Context) {
	defer t.wg.Done()
	every := t.renewEvery()
	tick := time.NewTimer(every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		start := time.Now()
		tctx, cancel := context.WithTimeout(ctx, t.cfg.LeaseTimeout)
		retry, err := t.tick(tctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			t.log.Warn("lease round", "err", err)
		}
		// The holder renews every interval from the start of its last
		// round. Another hub runs its next round at the lease's expiry,
		// by the database's clock, if that comes sooner, and at once if it
		// was to take the lease and could not lock it.
		next := every - time.Since(start)
		if t.held.Load() == nil {
			if in := time.Until(time.Unix(0, t.expiresAt.Load())); in > 0 && in < next {
				next = in + time.Millisecond
			}
			if retry {
				next = min(next, time.Millisecond)
			}
		}
		tick.Reset(max(next, 0))
	}
}

// interval formats d for PostgreSQL.
func interval(d time.Duration) string { return fmt.Sprintf("%d microseconds", d.Microseconds()) }

// lockNotAvailable is PostgreSQL's SQLSTATE for a lock not granted within
// lock_timeout.
const lockNotAvailable = "55P03"

// leaseRow is the lease row as a round reads it, by the database's clock.
type leaseRow struct {
	holder       string
	epoch        int64
	live         bool  // not expired
	sinceRenewMs int64 // since the last renewal (or release)
	expiresInUs  int64 // until the expiry (negative past it)
	next         string
}

// readLease reads the lease row (lock: "" or " FOR UPDATE OF l") and the
// hub to take it over (nextSQL).
func (t *Tier) readLease(ctx context.Context, tx pgx.Tx, lock string) (leaseRow, error) {
	var l leaseRow
	err := tx.QueryRow(ctx, `SELECT holder, epoch, expires_at > clock_timestamp(),
			(extract(epoch FROM clock_timestamp() - renewed_at) * 1000)::bigint,
			(extract(epoch FROM expires_at - clock_timestamp()) * 1000000)::bigint, `+nextSQL+`
		FROM lease l WHERE id = 1`+lock, interval(t.cfg.LeaseTimeout)).
		Scan(&l.holder, &l.epoch, &l.live, &l.sinceRenewMs, &l.expiresInUs, &l.next)
	return l, err
}

// takes says whether this hub is to take the lease l: it is not removed,
// and the lease is free or expired and this hub is the next in order, or
// it is held under this hub's name (an earlier process of it, or this one
// after a late renewal).
func (t *Tier) takes(l leaseRow, removed bool) bool {
	return !removed && (l.holder == t.cfg.Name || !l.live && l.next == t.cfg.Name)
}

// tick heartbeats this hub's row and renews, takes or gives up the lease,
// in one transaction by the database's clock. A round that changes nothing
// reads the lease row without locking it, so that the rounds of the hubs
// that follow neither wait for nor hold up the holder's renewal or the
// next hub's takeover. retry reports that this hub was to take the lease
// and could not lock its row within takeLockWait.
func (t *Tier) tick(ctx context.Context) (retry bool, err error) {
	start := time.Now()
	mine := t.held.Load()
	if mine == nil {
		t.endSessions(ctx)
	}
	tx, err := t.s.pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, `UPDATE hubs SET heartbeat = clock_timestamp(), address = $2 WHERE name = $1 AND NOT removed`, t.cfg.Name, *t.address.Load())
	if err != nil {
		return false, fmt.Errorf("heartbeat: %w", err)
	}
	removed := tag.RowsAffected() == 0
	l, err := t.readLease(ctx, tx, "")
	if err != nil {
		return false, fmt.Errorf("read the lease: %w", err)
	}
	t.expiresAt.Store(time.Now().Add(time.Duration(l.expiresInUs) * time.Microsecond).UnixNano())
	term := interval(t.leaseTerm())
	var next *lease
	switch {
	case mine != nil && l.holder == t.cfg.Name && l.epoch == mine.epoch && l.live && !removed:
		// Renewed only while it is still this hub's and not expired, as
		// the row is once the UPDATE has its lock.
		tag, err := tx.Exec(ctx, `UPDATE lease SET renewed_at = clock_timestamp(), expires_at = clock_timestamp() + $1::interval
			WHERE id = 1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp()`, term, t.cfg.Name, mine.epoch)
		if err != nil {
			return false, fmt.Errorf("renew the lease: %w", err)
		}
		if tag.RowsAffected() == 1 {
			next = &lease{holder: t.cfg.Name, epoch: mine.epoch, until: start.Add(t.leaseTerm())}
		}
	case mine != nil && l.holder == t.cfg.Name && l.epoch == mine.epoch && removed:
		if _, err := tx.Exec(ctx, `UPDATE lease SET renewed_at = clock_timestamp(), expires_at = clock_timestamp()
			WHERE id = 1 AND holder = $1 AND epoch = $2`, t.cfg.Name, mine.epoch); err != nil {
			return false, fmt.Errorf("release the lease: %w", err)
		}
	case t.takes(l, removed):
		// Lock the row and read it again: another hub may have taken it
		// since. A commit or another round holds the lock for a moment; a
		// stalled holder's transaction is ended (endSessions) before this
		// round, and the lock wait is bounded all the same.
		if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", t.takeLockWait().Milliseconds())); err != nil {
			return false, fmt.Errorf("take the lease: %w", err)
		}
		l, err = t.readLease(ctx, tx, " FOR UPDATE OF l")
		if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == lockNotAvailable {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("read the lease: %w", err)
		}
		if !t.takes(l, removed) {
			break
		}
		gap := l.sinceRenewMs
		if l.holder == "" {
			gap = 0
		}
		epoch := l.epoch + 1
		if _, err := tx.Exec(ctx, `UPDATE lease SET holder = $1, epoch = $2, renewed_at = clock_timestamp(),
			expires_at = clock_timestamp() + $3::interval WHERE id = 1`, t.cfg.Name, epoch, term); err != nil {
			return false, fmt.Errorf("take the lease: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO takeovers (epoch, holder, previous, taken_at, gap_ms) VALUES ($1, $2, $3, clock_timestamp(), $4)`,
			epoch, t.cfg.Name, l.holder, gap); err != nil {
			return false, fmt.Errorf("record the takeover: %w", err)
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, 'lease')`, notifyChannel); err != nil {
			return false, fmt.Errorf("take the lease: %w", err)
		}
		next = &lease{holder: t.cfg.Name, epoch: epoch, until: start.Add(t.leaseTerm())}
		defer func() {
			if err == nil {
				t.takeovers.Add(1)
				t.log.Info("lease taken: this hub sequences", "epoch", epoch, "previous", l.holder, "gap_ms", gap)
			}
		}()
	}
	if err = tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("lease round: %w", err)
	}
	if prev := t.held.Swap(next); prev != nil && next == nil {
		t.log.Info("lease lost: this hub follows", "epoch", prev.epoch, "removed", removed)
	}
	if next == nil || mine == nil || next.epoch != mine.epoch {
		t.notify.Wake()
	}
	return false, nil
}

// sessionName is the application_name of the database sessions of the hub
// named hub in a tier: a hash, since hub names may be longer than the
// server keeps.
func sessionName(hub string) string {
	sum := sha256.Sum256([]byte(hub))
	return "cloudhub " + hex.EncodeToString(sum[:8])
}

// endSessions ends the database sessions of the lease's holder once its
// lease has expired, when this hub is the one to take the lease over
// (nextSQL). A holder that stopped (paused, swapped out)
// inside a transaction keeps its locks on the lease and heads rows until
// the server ends its session, and the takeover and the next commit wait
// for them. Ending its sessions is safe: its lease has expired, so the
// fence fails any commit it would still make. Only sessions begun before
// the expiry are ended: those of a process of the same name started since
// (the hub removed and started again) are not the stalled holder's. It
// reads without locking; what it cannot do it logs, and the lease round
// goes on.
func (t *Tier) endSessions(ctx context.Context) {
	var holder, first string
	var expired bool
	err := t.s.pool.QueryRow(ctx, `SELECT holder, expires_at <= clock_timestamp(), `+nextSQL+` FROM lease l WHERE id = 1`,
		interval(t.cfg.LeaseTimeout)).Scan(&holder, &expired, &first)
	if err != nil {
		t.log.Warn("read the lease", "err", err)
		return
	}
	if !expired || holder == "" || holder == t.cfg.Name || first != t.cfg.Name {
		return
	}
	var ended int64
	err = t.s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()
			AND backend_start < (SELECT expires_at FROM lease WHERE id = 1 AND holder = $2 AND expires_at <= clock_timestamp())`,
		sessionName(holder), holder).Scan(&ended)
	if err != nil {
		t.log.Warn("end the sessions of the lease's previous holder", "previous", holder, "err", err)
		return
	}
	if ended > 0 {
		t.log.Info("ended the sessions of the lease's previous holder", "previous", holder, "sessions", ended)
	}
}

// stepDown forgets the lease of epoch after a fenced commit.
func (t *Tier) stepDown(epoch int64) {
	if l := t.held.Load(); l != nil && l.epoch == epoch && t.held.CompareAndSwap(l, nil) {
		t.log.Warn("lease lost at commit: this hub follows", "epoch", epoch)
		t.notify.Wake()
	}
}

// fence is queued in a write transaction that took numbers, with the
// writes it sends just before it commits: it holds the lease row FOR SHARE
// until the commit and announces the commit, naming the forwarded
// decisions it decided (decided), in the same round trip. The function it
// returns, called once the batch is sent, fails with hub.ErrNotSequencer
// if this hub does not hold the lease it sequences under.
func (t *Tier) fence(b *pgx.Batch, decided []int64) func() error {
	l := t.held.Load()
	if l == nil {
		return func() error { return fmt.Errorf("%w: hub %s holds no lease", hub.ErrNotSequencer, t.cfg.Name) }
	}
	held := false
	b.Queue(`SELECT true FROM lease, pg_notify($3, $4)
		WHERE id = 1 AND holder = $1 AND epoch = $2 AND expires_at > clock_timestamp() FOR SHARE OF lease`,
		l.holder, l.epoch, notifyChannel, commitPayload(decided)).QueryRow(func(r pgx.Row) error {
		err := r.Scan(&held)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	return func() error {
		if !held {
			t.stepDown(l.epoch)
			return fmt.Errorf("%w: hub %s lost the lease of epoch %d", hub.ErrNotSequencer, t.cfg.Name, l.epoch)
		}
		return nil
	}
}

// maxNotifyPayload bounds a notification's payload, below the server's
// limit (8000 bytes): a commit that decided more forwarded decisions than
// it holds announces a plain commit, and every hub waiting reads its
// result.
const maxNotifyPayload = 7000

// commitPayload is the notification of a commit that decided the
// forwarded decisions decided (none: decidedPrefix alone). A hub waits for
// the decisions a notification names; a plain "commit" (from a hub of an
// earlier version, or naming too many) may have decided any of them.
func commitPayload(decided []int64) string {
	b := []byte(decidedPrefix)
	for i, seq := range decided {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, seq, 10)
		if len(b) > maxNotifyPayload {
			return "commit"
		}
	}
	return string(b)
}

// notified handles a notification's payload: an edge revoked, or the
// forwarded decisions it names decided (the others wake every waiting
// decision: a plain commit may have decided any).
func (t *Tier) notified(payload string) {
	if edge, ok := strings.CutPrefix(payload, revokePrefix); ok {
		if t.revoked != nil {
			t.revoked(edge)
		}
		return
	}
	seqs, ok := strings.CutPrefix(payload, decidedPrefix)
	if !ok {
		if payload == "commit" {
			t.wakeWaiting()
		}
		return
	}
	t.waitMu.Lock()
	defer t.waitMu.Unlock()
	for _, f := range strings.Split(seqs, ",") {
		seq, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			continue
		}
		if c, ok := t.waiting[seq]; ok {
			signal(c)
		}
	}
}

// wakeWaiting signals every forwarded decision this hub waits for.
func (t *Tier) wakeWaiting() {
	t.waitMu.Lock()
	defer t.waitMu.Unlock()
	for _, c := range t.waiting {
		signal(c)
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// wait registers a forwarded decision this hub waits for; the channel is
// signalled when a notification names it. done unregisters it.
func (t *Tier) wait(seq int64) (c chan struct{}, done func()) {
	c = make(chan struct{}, 1)
	t.waitMu.Lock()
	if t.waiting == nil {
		t.waiting = make(map[int64]chan struct{})
	}
	t.waiting[seq] = c
	t.waitMu.Unlock()
	return c, func() {
		t.waitMu.Lock()
		delete(t.waiting, seq)
		t.waitMu.Unlock()
	}
}

// listen wakes Changed at every notification and at every poll; its
// connection is its own, made again when it breaks.
func (t *Tier) listen(ctx context.Context, listening chan<- struct{}) {
	defer t.wg.Done()
	poll := time.NewTicker(t.cfg.Poll)
	defer poll.Stop()
	go func() {
		for {
			select {
			case <-poll.C:
				t.notify.Wake()
			case <-ctx.Done():
				return
			}
		}
	}()
	backoff := 100 * time.Millisecond
	var once sync.Once
	ready := func() { once.Do(func() { close(listening) }) }
	for ctx.Err() == nil {
		err := t.listenOnce(ctx, ready)
		if ctx.Err() != nil {
			return
		}
		t.log.Warn("listen for commits; connecting again", "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (t *Tier) listenOnce(ctx context.Context, ready func()) error {
	conn, err := pgx.ConnectConfig(ctx, t.s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	ready()
	t.notify.Wake() // what was committed while not listening
	t.wakeWaiting()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		t.notified(n.Payload)
		t.notify.Wake()
	}
}

// Hubs lists the tier's hubs (not removed) in order.
func (t *Tier) Hubs(ctx context.Context) ([]hub.TierHub, error) {
	rows, err := t.s.pool.Query(ctx, `SELECT h.name, h.ord, h.address, h.heartbeat > clock_timestamp() - $1::interval,
			coalesce(l.holder = h.name AND l.expires_at > clock_timestamp(), false),
			(SELECT count(*) FROM edges e WHERE e.hub = h.name)
		FROM hubs h LEFT JOIN lease l ON l.id = 1 WHERE NOT h.removed ORDER BY h.ord`, interval(t.cfg.LeaseTimeout))
	if err != nil {
		return nil, fmt.Errorf("list hubs: %w", err)
	}
	defer rows.Close()
	out := []hub.TierHub{}
	for rows.Next() {
		var h hub.TierHub
		if err := rows.Scan(&h.Name, &h.Order, &h.Address, &h.Online, &h.Sequencer, &h.Edges); err != nil {
			return nil, fmt.Errorf("list hubs: %w", err)
		}
		if !h.Online {
			h.Edges = 0 // its rows outlive a hub that died
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// Takeovers returns the newest takeovers, newest first.
func (t *Tier) Takeovers(ctx context.Context, limit int) ([]hub.Takeover, error) {
	rows, err := t.s.pool.Query(ctx, `SELECT epoch, holder, previous, taken_at, gap_ms FROM takeovers ORDER BY epoch DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list takeovers: %w", err)
	}
	defer rows.Close()
	out := []hub.Takeover{}
	for rows.Next() {
		var k hub.Takeover
		if err := rows.Scan(&k.Epoch, &k.Holder, &k.Previous, &k.At, &k.GapMs); err != nil {
			return nil, fmt.Errorf("list takeovers: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// Remove removes a hub from the tier; if it holds the lease, the lease
// expires now and the next live hub in order takes it.
func (t *Tier) Remove(ctx context.Context, name string) error {
	tx, err := t.s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("remove hub: %w", err)
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, `UPDATE hubs SET removed = true WHERE name = $1 AND NOT removed`, name)
	if err != nil {
		return fmt.Errorf("remove hub: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: hub %q is not in the tier", replica.ErrNotFound, name)
	}
	if _, err := tx.Exec(ctx, `UPDATE lease SET expires_at = least(expires_at, clock_timestamp()), renewed_at = clock_timestamp()
		WHERE id = 1 AND holder = $1`, name); err != nil {
		return fmt.Errorf("remove hub: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE edges SET hub = '' WHERE hub = $1`, name); err != nil {
		return fmt.Errorf("remove hub: %w", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, 'hubs')`, notifyChannel); err != nil {
		return fmt.Errorf("remove hub: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("remove hub: %w", err)
	}
	if name == t.cfg.Name {
		if l := t.held.Swap(nil); l != nil {
			t.log.Info("removed from the tier: this hub follows", "epoch", l.epoch)
		}
	}
	return nil
}

// EdgeHub records the hub an edge is connected to.
func (t *Tier) EdgeHub(ctx context.Context, edge string, connected bool) error {
	var err error
	if connected {
		_, err = t.s.pool.Exec(ctx, `UPDATE edges SET hub = $1 WHERE name = $2`, t.cfg.Name, edge)
	} else {
		_, err = t.s.pool.Exec(ctx, `UPDATE edges SET hub = '' WHERE name = $1 AND hub = $2`, edge, t.cfg.Name)
	}
	if err != nil {
		return fmt.Errorf("record the edge's hub: %w", err)
	}
	return nil
}

// forwardedKeep is how long a decided record stays in the queue for the
// hub that forwarded it to read.
const forwardedKeep = 10 * time.Minute

// Forward queues a decision and announces it, in one round trip. The
// queue is an unlogged table (no WAL for its rows and their payloads),
// and the transaction does not wait
// for its commit record to reach the disk (synchronous_commit off):
// nothing is acknowledged on the strength of the record alone. A decision
// is durable once the sequencer's transaction that decides it commits,
// with the result it records in the queue; a crash of the database server
// empties the queue, and the hubs waiting for a result then fail the push
// (take), which the edge makes again. So a forward neither waits for a
// flush of its own nor holds the database's NOTIFY lock (which serialises
// the commits of every transaction that notifies) through one.
func (t *Tier) Forward(ctx context.Context, kind string, payload []byte, node string, first int64) (func(ctx context.Context) ([]byte, error), error) {
	var rec queued
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SET LOCAL synchronous_commit = off`)
	b.Queue(`WITH q AS (INSERT INTO forwarded (hub, kind, payload, node_id, first_counter) VALUES ($1, $2, $3, $5, $6) RETURNING seq, queued_at)
		SELECT seq, queued_at FROM q, pg_notify($4, 'forward')`, t.cfg.Name, kind, payload, notifyChannel, node, first).
		QueryRow(func(r pgx.Row) error { return r.Scan(&rec.seq, &rec.at) })
	b.Queue(`COMMIT`)
	if err := t.s.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	keep := kind == hub.ForwardedPush
	return func(ctx context.Context) ([]byte, error) { return t.await(ctx, rec, keep) }, nil
}

// queued names a record of the queue for the hub that forwarded it: its
// seq and the instant it was queued. The queue is an unlogged table: a
// crash of the database server empties it, and may hand out the seq of a
// record it lost again (its sequence's last advance, like the record's
// commit, need not have reached the disk), so a seq alone could name
// another hub's record queued after the crash.
type queued struct {
	seq int64
	at  time.Time
}

// await waits for a forwarded decision's result, reading it when a
// notification names it (or names no decision: a plain commit, a
// reconnection of the listener), and at every poll; the read that finds
// it deletes the record (one round trip, see take). So a commit that
// decides one hub's forwarded pushes costs the other hubs' waiting pushes
// no read. When ctx ends first, it withdraws the decision, unless keep:
// then the decision stays queued, and once decided stays forwardedKeep
// for nobody to read.
func (t *Tier) await(ctx context.Context, rec queued, keep bool) ([]byte, error) {
	named, done := t.wait(rec.seq)
	defer done()
	poll := time.NewTicker(t.cfg.Poll)
	defer poll.Stop()
	for {
		result, err := t.take(ctx, rec)
		if err != nil {
			return nil, err
		}
		if result != nil {
			return result, nil
		}
		select {
		case <-named:
		case <-poll.C:
		case <-ctx.Done():
			if keep {
				return nil, ctx.Err()
			}
			return t.withdraw(rec, ctx.Err())
		}
	}
}

// take deletes a decided record of the queue and returns its result: nil
// while it is not decided. The delete does not wait for its WAL to reach
// the disk (synchronous_commit off in its transaction): the result it
// reads was committed by the sequencer with the decision, and a delete
// lost in a crash is lost with the queue. A record the queue no longer
// holds (emptied by a crash of the database server) fails with
// errForwardedGone: the decision may have been committed or not, and
// the edge pushes again what got no outcome (pushes are idempotent by
// version id).
func (t *Tier) take(ctx context.Context, rec queued) ([]byte, error) {
	var result []byte
	var found bool
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SET LOCAL synchronous_commit = off`)
	b.Queue(`WITH d AS (DELETE FROM forwarded WHERE seq = $1 AND queued_at = $2 AND result IS NOT NULL RETURNING result)
		SELECT (SELECT result FROM d), EXISTS (SELECT 1 FROM forwarded WHERE seq = $1 AND queued_at = $2)`, rec.seq, rec.at).
		QueryRow(func(r pgx.Row) error { return r.Scan(&result, &found) })
	b.Queue(`COMMIT`)
	if err := t.s.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("read forwarded result: %w", err)
	}
	if result == nil && !found {
		return nil, fmt.Errorf("%w: decision %d", errForwardedGone, rec.seq)
	}
	return result, nil
}

// errForwardedGone means a forwarded decision's record is no longer in
// the queue: the database server was restarted after a crash, which
// empties the queue (an unlogged table), before its result was read. It
// is a hub.ErrNotSequencer: no result came from the sequencer (a hub API
// write answers 503; a push ends its session, and the edge pushes again).
var errForwardedGone = fmt.Errorf("%w: forwarded decision lost from the queue", hub.ErrNotSequencer)

// withdraw takes a forwarded decision back from the queue when its caller
// stops waiting, unless it was decided already: then its result is
// returned all the same.
func (t *Tier) withdraw(rec queued, cause error) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var result []byte
	err := t.s.pool.QueryRow(ctx, `WITH d AS (DELETE FROM forwarded WHERE seq = $1 AND queued_at = $2 RETURNING result) SELECT result FROM d`,
		rec.seq, rec.at).Scan(&result)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, cause
	case err != nil:
		return nil, fmt.Errorf("withdraw forwarded decision: %w", err)
	case result == nil:
		return nil, cause
	}
	return result, nil
}

// Pending returns the queued decisions not decided yet but those in skip,
// in order, and deletes decided ones nobody read.
func (t *Tier) Pending(ctx context.Context, skip []int64, limit int) ([]hub.Forwarded, error) {
	if now := time.Now().UnixNano(); now-t.trimmedAt.Load() > int64(forwardedKeep/10) {
		t.trimmedAt.Store(now)
		if _, err := t.s.pool.Exec(ctx, `DELETE FROM forwarded WHERE result IS NOT NULL AND decided_at < clock_timestamp() - $1::interval`,
			interval(forwardedKeep)); err != nil {
			return nil, fmt.Errorf("trim forwarded: %w", err)
		}
	}
	rows, err := t.s.pool.Query(ctx, `SELECT seq, kind, payload FROM forwarded WHERE result IS NULL AND seq <> ALL($1) ORDER BY seq LIMIT $2`, skip, limit)
	if err != nil {
		return nil, fmt.Errorf("read forwarded: %w", err)
	}
	defer rows.Close()
	var out []hub.Forwarded
	for rows.Next() {
		var f hub.Forwarded
		if err := rows.Scan(&f.Seq, &f.Kind, &f.Payload); err != nil {
			return nil, fmt.Errorf("read forwarded: %w", err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// PushQueued reports whether a push of node with a version before counter
// before waits in the queue, not decided, as the writer's transaction
// reads it (after sending what it keeps: a decision it finished is not
// waiting). It reads the queue's pending entries, which the sequencer
// keeps short, and runs only for a held version pushed again.
func (t *Tier) PushQueued(ctx context.Context, htx hub.Tx, node string, before, except int64) (bool, error) {
	tx, ok := htx.(*tx)
	if !ok {
		return false, fmt.Errorf("read forwarded: not a PostgreSQL transaction")
	}
	var queued bool
	_, err := tx.row(ctx, "read forwarded", `SELECT EXISTS (SELECT 1 FROM forwarded
		WHERE result IS NULL AND node_id = $1 AND first_counter < $2 AND seq <> $3)`, []any{node, before, except}, &queued)
	return queued, err
}

// Claim locks a queued decision in the writer's transaction. The lock is
// sent with what the transaction sends next (its first read, or its
// writes before COMMIT), not in a round trip of its own; a decision that
// was decided or withdrawn before fails that send with hub.ErrDecided.
func (t *Tier) Claim(ctx context.Context, htx hub.Tx, seq int64) error {
	tx, ok := htx.(*tx)
	if !ok {
		return fmt.Errorf("claim: not a PostgreSQL transaction")
	}
	tx.top().check(func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("forwarded decision %d: %w", seq, hub.ErrDecided)
		}
		return nil
	}, `SELECT 1 FROM forwarded WHERE seq = $1 AND result IS NULL FOR UPDATE`, seq)
	return nil
}

// Finish records a decision's result in the transaction that decided it,
// sent with its other writes.
func (t *Tier) Finish(ctx context.Context, htx hub.Tx, seq int64, result []byte) error {
	tx, ok := htx.(*tx)
	if !ok {
		return fmt.Errorf("finish: not a PostgreSQL transaction")
	}
	tx.top().stmt(`UPDATE forwarded SET result = $1, decided_at = clock_timestamp() WHERE seq = $2`, result, seq)
	tx.forwarded = true
	tx.decided = append(tx.decided, seq)
	return nil
}

// Refuse records the result of a decision that committed nothing.
func (t *Tier) Refuse(ctx context.Context, seq int64, result []byte) error {
	_, err := t.s.pool.Exec(ctx, `WITH u AS (UPDATE forwarded SET result = $1, decided_at = clock_timestamp() WHERE seq = $2 AND result IS NULL)
		SELECT pg_notify($3, $4)`, result, seq, notifyChannel, commitPayload([]int64{seq}))
	if err != nil {
		return fmt.Errorf("refuse forwarded: %w", err)
	}
	return nil
}
