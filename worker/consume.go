package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/contact-sync/contact-sync/internal/contact"
	"github.com/contact-sync/contact-sync/internal/topology"
)

// Delays between attempts to get the consumer back after losing it, and
// after a failed pull.
const (
	consumerRetryInitial = 500 * time.Millisecond
	consumerRetryMax     = 15 * time.Second
	pullErrorPause       = 100 * time.Millisecond
)

// consume reads messages until ctx ends. When the message iterator closes
// for another reason (the consumer was deleted, say) it gets the consumer
// again through Options.Consumer, waiting longer after each failure.
func (w *Worker) consume(ctx context.Context, invalid chan<- invalidMessage) {
	delay := consumerRetryInitial
	for ctx.Err() == nil {
		err := w.consumeOnce(ctx, invalid)
		w.consuming.Store(false)
		w.metrics.ready.Set(0)
		if ctx.Err() != nil {
			return
		}

		w.logger.Error().Err(err).Dur("retry_in", delay).Msg("consuming stopped; not ready until the consumer is back")
		if sleepContext(ctx, delay) != nil {
			return
		}
		delay = min(2*delay, consumerRetryMax)
	}
}

// consumeOnce gets the consumer and reads it until ctx ends or the iterator
// closes. It returns why it stopped.
func (w *Worker) consumeOnce(ctx context.Context, invalid chan<- invalidMessage) error {
	consumer, err := w.opts.Consumer(ctx)
	if err != nil {
		return fmt.Errorf("get consumer: %w", err)
	}

	iterator, err := consumer.Messages(jetstream.PullMaxMessagesWithBytesLimit(w.opts.FetchBatch, w.opts.FetchBytes))
	if err != nil {
		return fmt.Errorf("start pulling messages: %w", err)
	}
	stopIterator := context.AfterFunc(ctx, iterator.Stop)
	defer stopIterator()
	defer iterator.Stop()

	w.consuming.Store(true)
	w.metrics.ready.Set(1)
	w.logger.Info().Str("stream", w.opts.Stream).Msg("consuming")

	for {
		msg, err := iterator.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return fmt.Errorf("message iterator closed: %w", err)
		}
		if err != nil {
			// Missed heartbeats while NATS reconnects land here; the
			// iterator keeps pulling once the connection is back. The
			// pause keeps a failure that repeats at once from spinning.
			w.retryLog.warn(err.Error(), noFields, "pulling messages failed; retrying")
			if sleepContext(ctx, pullErrorPause) != nil {
				return ctx.Err()
			}
			continue
		}
		w.handle(msg, invalid)
	}
}

// handle decodes one message and holds it, dead-letters it or acks it.
func (w *Worker) handle(msg jetstream.Msg, invalid chan<- invalidMessage) {
	held := heldMessage{reply: msg.Reply()}
	redelivered := false
	var pending uint64
	if metadata, err := msg.Metadata(); err == nil {
		held.sequence = metadata.Sequence.Stream
		redelivered = metadata.NumDelivered > 1
		pending = metadata.NumPending
	}
	w.metrics.receivedEvent(redelivered)
	w.metrics.heldDelta(1)
	w.catchUp.observe(pending, w.metrics.heldCount.Load())

	event, contactID, err := decodeMessage(msg.Subject(), msg.Data())
	if err != nil {
		invalid <- invalidMessage{msg: msg, held: held, contactID: contactID, err: err}
		return
	}

	if event.Changes.IsEmpty() {
		w.ack([]heldMessage{held})
		w.metrics.appliedEvents(1)
		return
	}

	if redelivered {
		if w.scheduler.refreshIfHeld(event.ContactID, held) {
			// The first delivery is still held; this one only renewed
			// its reply subject, and is acked with it.
			w.metrics.heldDelta(-1)
			return
		}
		if w.scheduler.holdIfReplayed(event.ContactID, held) {
			w.metrics.mergedEvent()
			return
		}
		last, err := w.appendLaterEvents(event.ContactID, held.sequence, &event.Changes)
		if err != nil {
			w.logger.Error().Err(err).Str("contact_id", event.ContactID).Uint64("stream_seq", held.sequence).
				Dur("retry_in", w.opts.DeadLetterRetry).Msg("reading the later events of a redelivered event failed; event nakked")
			w.nak([]heldMessage{held}, w.opts.DeadLetterRetry)
			return
		}
		if w.scheduler.addReplayed(event.ContactID, &event.Changes, held, last) == addMerged {
			w.metrics.mergedEvent()
		}
		return
	}

	if w.scheduler.add(event.ContactID, &event.Changes, held) == addMerged {
		w.metrics.mergedEvent()
	}
}

// maxLaterEvents bounds how many later events of one contact a redelivery
// reads back.
const maxLaterEvents = 10000

// appendLaterEvents merges, after a redelivered event's changes, the changes
// of every later event of the same contact in the stream.
//
// A redelivered event is older than events of its contact that this or an
// earlier process may already have applied, so applying it alone could
// overwrite newer values. Followed by every later event, the update ends
// with each field's newest value, as the fold of the stream does. The
// later events are applied again when they arrive themselves, which
// changes nothing.
//
// It returns the stream sequence of the last event read, or sequence when
// there is none.
func (w *Worker) appendLaterEvents(contactID string, sequence uint64, changes *contact.Changes) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), w.opts.PublishTimeout)
	defer cancel()

	stream, err := w.streams.get(ctx)
	if err != nil {
		return 0, err
	}

	subject := topology.ChangesSubject(contactID)
	last := sequence
	for range maxLaterEvents {
		message, err := stream.GetMsg(ctx, last+1, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return last, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read the event after stream sequence %d on %s: %w", last, subject, err)
		}
		last = message.Sequence

		later, err := contact.DecodeEvent(message.Data)
		if err != nil {
			continue // an invalid event is dead-lettered on its own delivery
		}
		changes.Merge(&later.Changes)
	}
	return 0, fmt.Errorf("contact %s has more than %d events after stream sequence %d", contactID, maxLaterEvents, sequence)
}

// decodeMessage decodes an event and checks that its contact_id matches the
// subject's. On error it returns the contact_id it could read, or "".
func decodeMessage(subject string, data []byte) (contact.Event, string, error) {
	token, ok := topology.ContactIDFromSubject(subject)
	if !ok {
		return contact.Event{}, "", fmt.Errorf("subject %q is not %s<contact_id>: %w", subject, topology.ChangesSubjectPrefix, contact.ErrInvalidEvent)
	}
	subjectID, err := contact.ParseID(token)
	if err != nil {
		return contact.Event{}, "", fmt.Errorf("subject's %w", err)
	}

	event, err := contact.DecodeEvent(data)
	if err != nil {
		return contact.Event{}, subjectID, err
	}
	if event.ContactID != subjectID {
		return contact.Event{}, subjectID, fmt.Errorf("contact_id %s differs from the subject's %s: %w", event.ContactID, subjectID, contact.ErrInvalidEvent)
	}
	return event, subjectID, nil
}
