package importer

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxErrors is the number of record errors that Result.Errors keeps.
const MaxErrors = 100

// Result counts what an import did. After a complete run, Records equals
// Published + Duplicates + Failed.
type Result struct {
	// BatchID is the batch id of the event ids of CSV rows, "" for JSONL.
	BatchID string

	// Records is the number of CSV rows (without the header) or non-blank
	// JSONL lines read.
	Records int

	// Published is the number of records that JetStream acknowledged and
	// stored.
	Published int

	// Duplicates is the number of records that JetStream acknowledged as
	// duplicates of an event_id it had already stored within its duplicate
	// window, and did not store again.
	Duplicates int

	// Failed is the number of records that were invalid or not acknowledged.
	Failed int

	// Errors contains the first MaxErrors record errors, in the order they were
	// found. Publish errors are found when the ack arrives, so they may come
	// after errors of later records.
	Errors []*RecordError
}

// collector gathers the counts of one import from the reading goroutine and
// the goroutine that waits for acks.
type collector struct {
	mu     sync.Mutex
	result Result
	first  *RecordError
}

func (c *collector) addRecord() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.result.Records++
}

func (c *collector) acknowledged(duplicate bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if duplicate {
		c.result.Duplicates++
	} else {
		c.result.Published++
	}
}

func (c *collector) fail(err *RecordError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.result.Failed++
	if c.first == nil {
		c.first = err
	}
	if len(c.result.Errors) < MaxErrors {
		c.result.Errors = append(c.result.Errors, err)
	}
}

// firstError returns the first record error, or nil.
func (c *collector) firstError() *RecordError {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first
}

func (c *collector) snapshot() Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.result
}

// publisher publishes asynchronously with at most maxPending records
// without an ack, and counts each ack or failure in a collector. One
// goroutine calls publish, and a second goroutine waits for the acks in
// publish order.
type publisher struct {
	js      jetstream.JetStream
	slots   chan struct{}
	pending chan pendingAck
	drained chan struct{}
	results *collector
}

type pendingAck struct {
	future jetstream.PubAckFuture
	format string
	number int
}

// newPublisher starts a publisher on its own JetStream context of js's
// connection, so that the limit on outstanding acks and the ack timeout are
// this import's, whatever js was created with.
func newPublisher(ctx context.Context, js jetstream.JetStream, opts Options, results *collector) (*publisher, error) {
	publishJS, err := jetstream.New(js.Conn(),
		jetstream.WithPublishAsyncMaxPending(opts.MaxPending),
		jetstream.WithPublishAsyncTimeout(opts.AckTimeout),
	)
	if err != nil {
		return nil, fmt.Errorf("create JetStream publisher: %w", err)
	}

	p := &publisher{
		js:      publishJS,
		slots:   make(chan struct{}, opts.MaxPending),
		pending: make(chan pendingAck, opts.MaxPending),
		drained: make(chan struct{}),
		results: results,
	}
	go p.drain(ctx)
	return p, nil
}

// publish sends one record with its event id as Nats-Msg-Id. It blocks
// while MaxPending records wait for their acks, and returns an error only
// when ctx ends first. A failed publish is counted, not returned.
func (p *publisher) publish(ctx context.Context, format string, number int, subject, msgID string, body []byte) error {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}

	// No retries on "no responders": a retry is sent after later messages
	// and could store two events of one contact out of order. The record
	// fails instead, and a re-run publishes it.
	message := &nats.Msg{Subject: subject, Data: body}
	future, err := p.js.PublishMsgAsync(message, jetstream.WithMsgID(msgID), jetstream.WithRetryAttempts(0))
	if err != nil {
		<-p.slots
		p.results.fail(&RecordError{Format: format, Number: number, Err: fmt.Errorf("%w: %w", ErrPublishFailed, err)})
		return nil
	}

	p.pending <- pendingAck{future: future, format: format, number: number}
	return nil
}

// drain waits for each ack in publish order and frees its slot.
func (p *publisher) drain(ctx context.Context) {
	defer close(p.drained)

	for pending := range p.pending {
		p.await(ctx, pending)
		<-p.slots
	}
}

func (p *publisher) await(ctx context.Context, pending pendingAck) {
	// An ack or error that has already arrived counts even after ctx ended.
	select {
	case ack := <-pending.future.Ok():
		p.results.acknowledged(ack.Duplicate)
		return
	case err := <-pending.future.Err():
		p.failPublish(pending, err)
		return
	default:
	}

	select {
	case ack := <-pending.future.Ok():
		p.results.acknowledged(ack.Duplicate)
	case err := <-pending.future.Err():
		p.failPublish(pending, err)
	case <-ctx.Done():
		p.failPublish(pending, fmt.Errorf("no ack before the import was canceled: %w", ctx.Err()))
	}
}

func (p *publisher) failPublish(pending pendingAck, err error) {
	p.results.fail(&RecordError{Format: pending.format, Number: pending.number, Err: fmt.Errorf("%w: %w", ErrPublishFailed, err)})
}

// finish waits until every published record is counted, then releases the
// reply subscription. publish must not be called afterwards.
func (p *publisher) finish() {
	close(p.pending)
	<-p.drained
	p.js.CleanupPublisher()
}
