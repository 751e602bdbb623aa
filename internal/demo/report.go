package demo

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/contact-sync/contact-sync/internal/contact"
	"github.com/contact-sync/contact-sync/internal/topology"
	"github.com/contact-sync/contact-sync/worker"
)

// Report summarises a demo run.
type Report struct {
	// Events is the number of events imported; Contacts the number of
	// distinct contacts they concern.
	Events   int
	Contacts int

	// Applied counts events whose PUT succeeded; DeadLettered counts the
	// dead letters stored in the dead-letter stream, by reason.
	Applied      int64
	DeadLettered map[string]int

	// Lost is Events minus Applied minus dead letters; it must be 0.
	Lost int64

	// Updates counts merged updates sent, by outcome; Requests counts
	// every request, retries and split updates included.
	Updates  map[string]int64
	Requests int64

	// Mismatches counts known contacts whose state at the stand-in differs
	// from the fold of their events in stream order; it must be 0.
	Mismatches int

	// Elapsed is the time from the worker's start to the drained stream.
	Elapsed time.Duration
}

// MergeRatio is the number of events per request sent.
func (r Report) MergeRatio() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Events) / float64(r.Requests)
}

// RequestsPerSecond is the rate of requests over Elapsed.
func (r Report) RequestsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// WriteText writes the report as a small table.
func (r Report) WriteText(out io.Writer) {
	table := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(table, "contact-sync demo report")
	fmt.Fprintf(table, "  events imported\t%d\n", r.Events)
	fmt.Fprintf(table, "  contacts\t%d\n", r.Contacts)
	fmt.Fprintf(table, "  events applied\t%d\n", r.Applied)
	fmt.Fprintf(table, "  events dead-lettered\t%s\n", formatCounts(r.DeadLettered))
	fmt.Fprintf(table, "  events lost\t%d\n", r.Lost)
	fmt.Fprintf(table, "  updates sent\t%d succeeded, %d not found, %d rejected\n", r.Updates["success"], r.Updates["not_found"], r.Updates["rejected"])
	fmt.Fprintf(table, "  PUT requests\t%d\n", r.Requests)
	fmt.Fprintf(table, "  merge ratio\t%.2f events per PUT\n", r.MergeRatio())
	fmt.Fprintf(table, "  contacts differing from the stream-order fold\t%d\n", r.Mismatches)
	fmt.Fprintf(table, "  elapsed\t%s\n", r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(table, "  PUTs per second\t%.1f\n", r.RequestsPerSecond())
	table.Flush()
}

func formatCounts(counts map[string]int) string {
	total := 0
	keys := make([]string, 0, len(counts))
	for key, n := range counts {
		total += n
		keys = append(keys, key)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, key := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", key, counts[key]))
	}
	if len(parts) == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

// buildReport reads back every event and dead letter from JetStream and
// compares the stand-in's contacts with the fold of the events.
func buildReport(ctx context.Context, env *environment, stats worker.Stats, data *dataset, published int, elapsed time.Duration) (Report, error) {
	fold, err := foldStream(ctx, env)
	if err != nil {
		return Report{}, err
	}
	deadLetters, err := countDeadLetters(ctx, env)
	if err != nil {
		return Report{}, err
	}

	report := Report{
		Events:       published,
		Contacts:     len(fold),
		Applied:      stats.EventsApplied,
		DeadLettered: deadLetters,
		Updates:      stats.PUTs,
		Requests:     env.api.Stats().Requests,
		Elapsed:      elapsed,
	}
	report.Lost = int64(published) - report.Applied
	for _, n := range deadLetters {
		report.Lost -= int64(n)
	}
	for _, id := range data.known {
		got, _ := env.api.Contact(id)
		want := fold[id]
		if !got.Equal(&want) {
			report.Mismatches++
		}
	}
	return report, nil
}

// foldStream folds every event of the change stream in stream order.
func foldStream(ctx context.Context, env *environment) (map[string]contact.State, error) {
	stream, err := env.js.Stream(ctx, topology.DefaultStream)
	if err != nil {
		return nil, fmt.Errorf("read back the change stream: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read back the change stream: %w", err)
	}

	fold := make(map[string]contact.State)
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		message, err := stream.GetMsg(ctx, seq)
		if err != nil {
			return nil, fmt.Errorf("read back event %d: %w", seq, err)
		}
		event, err := contact.DecodeEvent(message.Data)
		if err != nil {
			continue // dead-lettered as invalid; it changes no contact
		}
		state := fold[event.ContactID]
		state.Apply(&event.Changes)
		fold[event.ContactID] = state
	}
	return fold, nil
}

// countDeadLetters counts the dead-letter stream's messages by reason.
func countDeadLetters(ctx context.Context, env *environment) (map[string]int, error) {
	stream, err := env.js.Stream(ctx, topology.DefaultDeadLetterStream)
	if err != nil {
		return nil, fmt.Errorf("read back the dead-letter stream: %w", err)
	}
	info, err := stream.Info(ctx, jetstreamSubjectsFilter())
	if err != nil {
		return nil, fmt.Errorf("read back the dead-letter stream: %w", err)
	}

	counts := make(map[string]int)
	for subject, n := range info.State.Subjects {
		counts[strings.TrimPrefix(subject, topology.DeadLetterSubjectPrefix)] = int(n)
	}
	return counts, nil
}

func jetstreamSubjectsFilter() jetstream.StreamInfoOpt {
	return jetstream.WithSubjectFilter(topology.DeadLetterSubjects)
}
