package worker

import (
	"sync"
	"time"
)

// catchUpGate holds back new PUTs while the worker is still fetching a
// backlog, so that every event of a contact already in the stream merges
// into its first PUT instead of a second one.
//
// An episode starts when a message arrives with more messages pending
// behind it. The gate closes then, and opens for the rest of the episode
// once the worker holds heldLimit messages (the consumer would deliver no
// more), once it has been closed for maxHold, or once nothing is pending.
// Under a steady load that never catches up, it stays open. The zero value
// is always open. Safe for concurrent use.
type catchUpGate struct {
	heldLimit int64
	maxHold   time.Duration

	mu          sync.Mutex
	closedSince time.Time
	episodeOver bool
}

func newCatchUpGate(maxAckPending, fetchBatch int, maxHold time.Duration) *catchUpGate {
	limit := int64(maxAckPending - fetchBatch)
	if limit <= 0 {
		limit = int64(maxAckPending) / 2
	}
	return &catchUpGate{heldLimit: limit, maxHold: maxHold}
}

// observe updates the gate from a message's pending count and the number
// of messages held.
func (g *catchUpGate) observe(pending uint64, held int64) {
	if g == nil || g.heldLimit <= 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()

	switch {
	case pending == 0:
		g.closedSince, g.episodeOver = time.Time{}, false
	case g.episodeOver:
	case held >= g.heldLimit:
		g.closedSince, g.episodeOver = time.Time{}, true
	case g.closedSince.IsZero():
		g.closedSince = time.Now()
	}
}

// isOpen reports whether a sender may start a PUT.
func (g *catchUpGate) isOpen() bool {
	if g == nil {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()

	if g.closedSince.IsZero() {
		return true
	}
	if time.Since(g.closedSince) >= g.maxHold {
		g.closedSince, g.episodeOver = time.Time{}, true
		return true
	}
	return false
}
