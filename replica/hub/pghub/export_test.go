package pghub

// Pause stops the tier's heartbeat and listener without releasing the
// lease, as a hub that stalls (or is stopped with SIGSTOP) does.
func (t *Tier) Pause() {
	t.cancel()
	t.wg.Wait()
}
