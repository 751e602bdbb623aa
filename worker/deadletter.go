package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/contact-sync/contact-sync/internal/deadletter"
	"github.com/contact-sync/contact-sync/internal/topology"
)

// apiFailure is the API's last response to an update that failed for good.
type apiFailure struct {
	reason   string
	status   int
	detail   string
	attempts int
}

// invalidMessage is a message that failed decoding, on its way to the
// dead-letter subject.
type invalidMessage struct {
	msg       jetstream.Msg
	held      heldMessage
	contactID string
	err       error
}

// deadLetterInvalid stores an invalid message as a dead letter and acks it,
// or naks it for a later retry when the publish fails.
func (w *Worker) deadLetterInvalid(ctx context.Context, invalid invalidMessage) {
	letter := deadletter.Letter{
		Reason:    ReasonInvalid,
		Err:       invalid.err.Error(),
		ContactID: invalid.contactID,
		Stream:    w.opts.Stream,
		Subject:   invalid.msg.Subject(),
		Sequence:  invalid.held.sequence,
		Data:      invalid.msg.Data(),
		Header:    invalid.msg.Headers(),
		At:        time.Now(),
	}

	if err := w.publishDeadLetter(ctx, letter); err != nil {
		w.deadLetterFailed(err, letter, []heldMessage{invalid.held})
		return
	}

	w.logger.Warn().Str("contact_id", invalid.contactID).Str("reason", ReasonInvalid).
		Uint64("stream_seq", invalid.held.sequence).Str("error", letter.Err).Msg("event dead-lettered")
	w.ack([]heldMessage{invalid.held})
	w.metrics.deadLettered(ReasonInvalid, 1)
}

// deadLetterFailedUpdate stores every message of a failed update as its own
// dead letter, with the original body read back from the stream, and acks
// each one after JetStream confirmed its dead letter. When a publish fails,
// the messages not yet stored are nakked for a later retry.
func (w *Worker) deadLetterFailedUpdate(ctx context.Context, contactID string, messages []heldMessage, failure apiFailure) {
	for i, message := range messages {
		letter := deadletter.Letter{
			Reason:    failure.reason,
			Status:    failure.status,
			Detail:    failure.detail,
			Attempts:  failure.attempts,
			ContactID: contactID,
			Stream:    w.opts.Stream,
			Subject:   topology.ChangesSubject(contactID),
			Sequence:  message.sequence,
			At:        time.Now(),
		}

		err := w.loadOriginal(ctx, &letter)
		if err == nil {
			err = w.publishDeadLetter(ctx, letter)
		}
		if err != nil {
			w.metrics.deadLettered(failure.reason, i)
			w.deadLetterFailed(err, letter, messages[i:])
			return
		}

		w.ack([]heldMessage{message})
	}

	w.logger.Warn().Str("contact_id", contactID).Str("reason", failure.reason).Int("status", failure.status).
		Int("events", len(messages)).Int("attempts", failure.attempts).Msg("events dead-lettered")
	w.logger.Debug().Str("contact_id", contactID).Str("detail", failure.detail).Msg("API detail of the dead-lettered update")
	w.metrics.deadLettered(failure.reason, len(messages))
}

// deadLetterFailed logs a failed dead-letter publish and naks the messages
// it concerns, so that nothing is lost.
func (w *Worker) deadLetterFailed(err error, letter deadletter.Letter, messages []heldMessage) {
	w.metrics.deadLetterErrors.Inc()
	w.logger.Error().Err(err).Str("contact_id", letter.ContactID).Str("reason", letter.Reason).
		Uint64("stream_seq", letter.Sequence).Int("events", len(messages)).Dur("retry_in", w.opts.DeadLetterRetry).
		Msg("dead-letter publish failed; events nakked for redelivery")
	w.nak(messages, w.opts.DeadLetterRetry)
}

// publishDeadLetter publishes a letter and waits for JetStream's ack.
func (w *Worker) publishDeadLetter(ctx context.Context, letter deadletter.Letter) error {
	ctx, cancel := context.WithTimeout(ctx, w.opts.PublishTimeout)
	defer cancel()

	_, err := w.opts.JetStream.PublishMsg(ctx, deadletter.NewMsg(letter))
	if errors.Is(err, nats.ErrMaxPayload) {
		// The original with dead-letter headers does not fit in one
		// message. Store the letter without the body, which stays in the
		// change stream at its sequence, rather than retry forever.
		letter.OmittedBodySize = len(letter.Data)
		letter.Data = nil
		_, err = w.opts.JetStream.PublishMsg(ctx, deadletter.NewMsg(letter))
	}
	if err != nil {
		return fmt.Errorf("publish dead letter for stream sequence %d on %s: %w", letter.Sequence, topology.DeadLetterSubject(letter.Reason), err)
	}
	return nil
}

// loadOriginal reads the original message of a letter back from the stream.
func (w *Worker) loadOriginal(ctx context.Context, letter *deadletter.Letter) error {
	ctx, cancel := context.WithTimeout(ctx, w.opts.PublishTimeout)
	defer cancel()

	stream, err := w.streams.get(ctx)
	if err != nil {
		return err
	}
	original, err := stream.GetMsg(ctx, letter.Sequence)
	if err != nil {
		return fmt.Errorf("read original of stream sequence %d from stream %s: %w", letter.Sequence, w.opts.Stream, err)
	}

	letter.Subject = original.Subject
	letter.Data = original.Data
	letter.Header = nats.Header(original.Header)
	return nil
}

// streamHandle caches the handle of the consumed stream.
type streamHandle struct {
	js   jetstream.JetStream
	name string

	mu     sync.Mutex
	stream jetstream.Stream
}

func (h *streamHandle) get(ctx context.Context) (jetstream.Stream, error) {
	h.mu.Lock()
	defer h.mu.Unlock()

	if h.stream != nil {
		return h.stream, nil
	}
	stream, err := h.js.Stream(ctx, h.name)
	if err != nil {
		return nil, fmt.Errorf("find stream %s: %w", h.name, err)
	}
	h.stream = stream
	return stream, nil
}
