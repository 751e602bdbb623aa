package sink

import (
	"context"
	"sync"
	"time"
)

// pauseGate holds every request of a client until a deadline, which a
// Retry-After response sets. The zero value is open. Safe for concurrent use.
type pauseGate struct {
	mu    sync.Mutex
	until time.Time
}

// extend moves the deadline to until if that is later.
func (g *pauseGate) extend(until time.Time) {
	g.mu.Lock()
	if until.After(g.until) {
		g.until = until
	}
	g.mu.Unlock()
}

// wait returns once the deadline has passed, or with ctx's error.
func (g *pauseGate) wait(ctx context.Context) error {
	for {
		g.mu.Lock()
		remaining := time.Until(g.until)
		g.mu.Unlock()

		if remaining <= 0 {
			return nil
		}
		if err := sleepContext(ctx, remaining); err != nil {
			return err
		}
	}
}
