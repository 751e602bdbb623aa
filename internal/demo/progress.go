package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/contact-sync/contact-sync/internal/service"
	"github.com/contact-sync/contact-sync/worker"
)

// Progress display intervals.
const (
	pollInterval = 100 * time.Millisecond
	lineInterval = 2 * time.Second
)

// waitDrained waits until every published event is applied or
// dead-lettered, showing progress as a bar on a terminal or as a line every
// two seconds otherwise.
func waitDrained(ctx context.Context, svc *service.Service, published int, opts Options) error {
	var bar *progressbar.ProgressBar
	if opts.Terminal {
		bar = progressbar.NewOptions(published,
			progressbar.OptionSetWriter(opts.Progress),
			progressbar.OptionSetDescription("events applied or dead-lettered"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(pollInterval),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(opts.Progress) }),
		)
	}

	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	lastLine := time.Now()
	for {
		stats := svc.Worker().Stats()
		done := accountedEvents(stats)
		if bar != nil {
			_ = bar.Set(int(done))
		} else if time.Since(lastLine) >= lineInterval || done >= int64(published) {
			fmt.Fprintf(opts.Progress, "progress: %d of %d events done (%d applied, %d dead-lettered), %d PUTs\n",
				done, published, stats.EventsApplied, done-stats.EventsApplied, stats.Attempts)
			lastLine = time.Now()
		}
		if done >= int64(published) {
			return nil
		}

		select {
		case <-ctx.Done():
			return fmt.Errorf("the stream was not drained in time: %d of %d events done: %w", done, published, ctx.Err())
		case <-ticker.C:
		}
	}
}

func accountedEvents(stats worker.Stats) int64 {
	total := stats.EventsApplied
	for _, n := range stats.EventsDeadLettered {
		total += n
	}
	return total
}
