package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/contact-sync/contact-sync/internal/contact"
	"github.com/contact-sync/contact-sync/internal/eventgen"
	"github.com/contact-sync/contact-sync/internal/topology"
)

// Parameters of the skewed contact choice: rand.NewZipf's s and v. Over
// 20,000 contacts and 200,000 events they make the hottest contact get
// about 1.8% of the events (some 3,700), and leave about 17% of the
// contacts without any.
const (
	zipfS = 1.1
	zipfV = 10
)

// workload describes the events of a backlog. The same workload always
// generates the same events.
type workload struct {
	Events   int
	Contacts int

	// Skewed picks contacts from a Zipf distribution; otherwise uniformly.
	Skewed bool

	Seed uint64
}

// String describes the workload for a report row.
func (w workload) String() string {
	spread := "uniform"
	if w.Skewed {
		spread = fmt.Sprintf("Zipf s=%g v=%g", zipfS, float64(zipfV))
	}
	return fmt.Sprintf("%s events over %s contacts (%s)", thousands(w.Events), thousands(w.Contacts), spread)
}

// contactIDs returns the ids of every contact the workload may pick.
func (w workload) contactIDs() []string {
	return eventgen.ContactIDs(w.Contacts)
}

// each calls yield with every event in publish order, and stops at the
// first error yield returns.
func (w workload) each(ids []string, yield func(eventgen.Event) error) error {
	generator := eventgen.New(w.Seed)
	picker := rand.New(rand.NewPCG(w.Seed, w.Seed+1))
	pick := func() int { return picker.IntN(len(ids)) }
	if w.Skewed {
		zipf := rand.NewZipf(picker, zipfS, zipfV, uint64(len(ids)-1))
		pick = func() int { return int(zipf.Uint64()) }
	}

	for range w.Events {
		if err := yield(generator.Event(ids[pick()])); err != nil {
			return err
		}
	}
	return nil
}

// backlog is a workload published to a stream, with the state every
// contact must end with once the events are applied in stream order.
type backlog struct {
	workload workload
	ids      []string
	want     map[string]contact.State

	// merged is each contact's events merged into one update, as a worker
	// that held all of them before its PUT would send it.
	merged map[string]contact.Changes
}

// distinctContacts returns how many contacts have at least one event.
func (b *backlog) distinctContacts() int { return len(b.want) }

// publishWindow bounds the asynchronous publishes without an ack.
const publishWindow = 4096

// publishBacklog adds every contact of the workload to the stand-in,
// publishes the events asynchronously, and folds them into the expected
// final states. It returns once JetStream has stored every event.
func publishBacklog(ctx context.Context, env *environment, w workload) (*backlog, error) {
	b := &backlog{workload: w, ids: w.contactIDs(), want: make(map[string]contact.State), merged: make(map[string]contact.Changes)}
	if err := env.api.AddContacts(b.ids...); err != nil {
		return nil, fmt.Errorf("add contacts to the stand-in: %w", err)
	}

	var failed atomic.Int64
	publisher, err := jetstream.New(env.conn,
		jetstream.WithPublishAsyncMaxPending(publishWindow),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }),
	)
	if err != nil {
		return nil, fmt.Errorf("create JetStream publisher: %w", err)
	}

	err = w.each(b.ids, func(event eventgen.Event) error {
		if err := b.fold(event); err != nil {
			return err
		}
		_, err := publisher.PublishAsync(topology.ChangesSubject(event.ContactID), event.Body)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("publish the backlog: %w", err)
	}

	if err := waitPublished(ctx, publisher, &failed); err != nil {
		return nil, err
	}
	return b, checkStored(ctx, env, int64(w.Events))
}

func (b *backlog) fold(event eventgen.Event) error {
	decoded, err := contact.DecodeEvent(event.Body)
	if err != nil {
		return fmt.Errorf("decode a generated event of contact %s: %w", event.ContactID, err)
	}
	state := b.want[decoded.ContactID]
	state.Apply(&decoded.Changes)
	b.want[decoded.ContactID] = state

	merged := b.merged[decoded.ContactID]
	merged.Merge(&decoded.Changes)
	b.merged[decoded.ContactID] = merged
	return nil
}

// minimumPUTs returns the fewest PUTs that apply the backlog: one per
// contact whose merged update changes anything, and two where the update
// clears the dynamic fields and then sets some, because one body cannot
// express both.
func (b *backlog) minimumPUTs() int {
	total := 0
	for _, changes := range b.merged {
		total += len(changes.Parts())
	}
	return total
}

// publishTimeout bounds the wait for the last acks of a backlog.
const publishTimeout = time.Minute

func waitPublished(ctx context.Context, publisher jetstream.JetStream, failed *atomic.Int64) error {
	timer := time.NewTimer(publishTimeout)
	defer timer.Stop()

	select {
	case <-publisher.PublishAsyncComplete():
	case <-timer.C:
		return fmt.Errorf("publish the backlog: %d acks still missing after %s", publisher.PublishAsyncPending(), publishTimeout)
	case <-ctx.Done():
		return fmt.Errorf("publish the backlog: %w", ctx.Err())
	}

	if n := failed.Load(); n > 0 {
		return fmt.Errorf("publish the backlog: %d publishes failed", n)
	}
	return nil
}

// checkStored returns an error unless the change stream holds want events.
func checkStored(ctx context.Context, env *environment, want int64) error {
	stream, err := env.js.Stream(ctx, topology.DefaultStream)
	if err != nil {
		return fmt.Errorf("read the change stream: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("read the change stream: %w", err)
	}
	if got := int64(info.State.Msgs); got != want {
		return fmt.Errorf("the change stream contains %d events, expected %d", got, want)
	}
	return nil
}

// mismatches returns how many contacts differ at the stand-in from the
// fold of their events. Untouched contacts must still be empty.
func (b *backlog) mismatches(env *environment) int {
	count := 0
	for _, id := range b.ids {
		got, _ := env.api.Contact(id)
		want := b.want[id]
		if !got.Equal(&want) {
			count++
		}
	}
	return count
}
