package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/contact-sync/contact-sync/internal/contact"
	"github.com/contact-sync/contact-sync/sink"
)

// runSenders runs Concurrency senders that take ready contacts until ctx
// ends, and returns when the last of them has finished its PUT. PUTs run
// on drainCtx, so a shutdown lets them finish.
func (w *Worker) runSenders(ctx, drainCtx context.Context) {
	var senders sync.WaitGroup
	for range w.opts.Concurrency {
		senders.Go(func() {
			for {
				pending, err := w.scheduler.next(ctx)
				if err != nil {
					return
				}
				w.sendUpdate(drainCtx, pending)
			}
		})
	}
	senders.Wait()
}

// sendUpdate sends a claimed contact's pending update, as one PUT or as the
// consecutive PUTs of its parts, then acks, dead-letters or naks the
// messages it carried and releases the contact.
func (w *Worker) sendUpdate(ctx context.Context, pending *pendingContact) {
	defer w.scheduler.finish(pending)

	var parts []contact.Changes
	takeFirstBody := func() []byte {
		changes := w.scheduler.take(pending)
		parts = changes.Parts()
		return marshalBody(&parts[0])
	}

	result, err := w.opts.Sink.PutFunc(ctx, pending.id, takeFirstBody)
	if err == nil && len(parts) > 1 {
		var restResult sink.Result
		restResult, err = w.putParts(ctx, pending.id, parts[1:])
		result = addResults(result, restResult)
	}

	// A redelivery may have renewed reply subjects meanwhile, so read the
	// messages only now.
	messages := w.scheduler.sendingMessages(pending)
	w.settle(ctx, pending.id, messages, result, err)
}

// putParts sends parts as consecutive PUTs and stops at the first failure.
func (w *Worker) putParts(ctx context.Context, contactID string, parts []contact.Changes) (sink.Result, error) {
	var total sink.Result
	for i := range parts {
		result, err := w.opts.Sink.PutFunc(ctx, contactID, fixedBody(marshalBody(&parts[i])))
		total = addResults(total, result)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// addResults sums attempts and keeps the later response.
func addResults(earlier, later sink.Result) sink.Result {
	return sink.Result{Attempts: earlier.Attempts + later.Attempts, Status: later.Status, Detail: later.Detail}
}

// settle decides the fate of the messages an update carried.
func (w *Worker) settle(ctx context.Context, contactID string, messages []heldMessage, result sink.Result, err error) {
	switch {
	case err == nil:
		w.metrics.putFinished(outcomeSuccess)
		w.ack(messages)
		w.metrics.appliedEvents(len(messages))
		if w.retryLog.reset() {
			w.logger.Info().Str("contact_id", contactID).Int("attempts", result.Attempts).Msg("update applied after retries; the API responds again")
		}

	case errors.Is(err, sink.ErrNotFound):
		w.metrics.putFinished(outcomeNotFound)
		w.deadLetterFailedUpdate(ctx, contactID, messages, apiFailureOf(ReasonNotFound, result))

	case errors.Is(err, sink.ErrRejected), errors.Is(err, contact.ErrInvalidEvent):
		w.metrics.putFinished(outcomeRejected)
		w.settleRejected(ctx, contactID, messages, result)

	case len(messages) == 0:
		// The PUT ended before it took any message: nothing was sent.

	default:
		// The drain timeout ended the PUT, so the messages go back to
		// JetStream. The API may or may not have stored the update, and
		// sending it again is safe because a PUT is idempotent.
		w.metrics.putFinished(outcomeAborted)
		w.logger.Error().Err(err).Str("contact_id", contactID).Int("events", len(messages)).
			Msg("update aborted at shutdown; events nakked for redelivery")
		w.nak(messages, 0)
	}
}

func apiFailureOf(reason string, result sink.Result) apiFailure {
	return apiFailure{reason: reason, status: result.Status, detail: result.Detail, attempts: result.Attempts}
}

// marshalBody encodes one part. Parts never fail to encode: Parts splits
// the one combination MarshalJSON rejects.
func marshalBody(part *contact.Changes) []byte {
	body, err := part.MarshalJSON()
	if err != nil {
		panic(fmt.Sprintf("worker: encode update part: %v", err))
	}
	return body
}

func fixedBody(body []byte) func() []byte {
	return func() []byte { return body }
}

func attemptResult(err error) string {
	switch {
	case err == nil:
		return resultSuccess
	case errors.Is(err, sink.ErrNotFound):
		return resultNotFound
	case errors.Is(err, sink.ErrUnauthorized):
		return resultUnauthorized
	case errors.Is(err, sink.ErrTransient):
		return resultTransient
	default:
		return resultRejected
	}
}

// retryKey describes a failed attempt without its contact_id, so that the
// same failure on many contacts counts as one repeated error.
func retryKey(attempt sink.Attempt) string {
	if attempt.Status != 0 {
		return fmt.Sprintf("HTTP %d: %v", attempt.Status, errors.Unwrap(attempt.Err))
	}
	return strings.ReplaceAll(attempt.Err.Error(), attempt.ContactID, "<contact_id>")
}

// noFields adds nothing to a log event.
func noFields(event *zerolog.Event) *zerolog.Event { return event }
