package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/contact-sync/contact-sync/internal/contact"
	"github.com/contact-sync/contact-sync/sink"
)

// settleRejected handles an update the API rejected for good. A single
// event is dead-lettered. An update merged from several events may have
// been rejected for one of them only, such as a duplicate email. So the
// events are sent again in halves, in stream order, and each rejected half
// is halved again. Only the events the API rejects on their own end up
// dead-lettered.
func (w *Worker) settleRejected(ctx context.Context, contactID string, messages []heldMessage, result sink.Result) {
	if len(messages) == 1 {
		w.deadLetterFailedUpdate(ctx, contactID, messages, apiFailureOf(ReasonRejected, result))
		return
	}

	changes, err := w.loadChanges(ctx, messages)
	if err != nil {
		w.logger.Error().Err(err).Str("contact_id", contactID).Int("events", len(messages)).Dur("retry_in", w.opts.DeadLetterRetry).
			Msg("reading the events of a rejected update failed; events nakked for redelivery")
		w.nak(messages, w.opts.DeadLetterRetry)
		return
	}

	w.logger.Info().Str("contact_id", contactID).Int("events", len(messages)).Msg("merged update rejected; sending its events in smaller groups to find the rejected ones")
	w.sendGroups(ctx, contactID, messages, changes)
}

// sendGroups sends two halves of messages one after the other, each as one
// merged update, and splits a rejected half again. It returns false when it
// stopped early because the context ended; the messages it did not settle
// are nakked by then.
func (w *Worker) sendGroups(ctx context.Context, contactID string, messages []heldMessage, changes []contact.Changes) bool {
	half := len(messages) / 2
	for _, bounds := range [][2]int{{0, half}, {half, len(messages)}} {
		group, groupChanges := messages[bounds[0]:bounds[1]], changes[bounds[0]:bounds[1]]

		merged := mergeAll(groupChanges)
		result, err := w.putParts(ctx, contactID, merged.Parts())
		switch {
		case err == nil:
			w.metrics.putFinished(outcomeSuccess)
			w.ack(group)
			w.metrics.appliedEvents(len(group))

		case errors.Is(err, sink.ErrRejected) && len(group) == 1:
			w.metrics.putFinished(outcomeRejected)
			w.deadLetterFailedUpdate(ctx, contactID, group, apiFailureOf(ReasonRejected, result))

		case errors.Is(err, sink.ErrRejected):
			w.metrics.putFinished(outcomeRejected)
			if !w.sendGroups(ctx, contactID, group, groupChanges) {
				w.nak(messages[bounds[1]:], 0)
				return false
			}

		case errors.Is(err, sink.ErrNotFound):
			// The contact was deleted meanwhile: nothing after this can
			// be applied either.
			w.metrics.putFinished(outcomeNotFound)
			w.deadLetterFailedUpdate(ctx, contactID, messages[bounds[0]:], apiFailureOf(ReasonNotFound, result))
			return true

		default:
			w.metrics.putFinished(outcomeAborted)
			w.logger.Error().Err(err).Str("contact_id", contactID).Int("events", len(messages)-bounds[0]).
				Msg("update aborted at shutdown; events nakked for redelivery")
			w.nak(messages[bounds[0]:], 0)
			return false
		}
	}
	return true
}

// mergeAll merges updates in order into one.
func mergeAll(updates []contact.Changes) contact.Changes {
	var merged contact.Changes
	for i := range updates {
		merged.Merge(&updates[i])
	}
	return merged
}

// loadChanges reads the original events of held messages back from the
// stream and decodes their changes, in the order of messages.
func (w *Worker) loadChanges(ctx context.Context, messages []heldMessage) ([]contact.Changes, error) {
	stream, err := w.streams.get(ctx)
	if err != nil {
		return nil, err
	}

	changes := make([]contact.Changes, len(messages))
	for i, message := range messages {
		original, err := stream.GetMsg(ctx, message.sequence)
		if err != nil {
			return nil, fmt.Errorf("read stream sequence %d: %w", message.sequence, err)
		}
		event, err := contact.DecodeEvent(original.Data)
		if err != nil {
			return nil, fmt.Errorf("decode stream sequence %d: %w", message.sequence, err)
		}
		changes[i] = event.Changes
	}
	return changes, nil
}
