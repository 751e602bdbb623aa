package worker

import (
	"fmt"
	"time"
)

// Acknowledgement bodies of the JetStream protocol (ADR-1 in the
// nats-architecture-and-design repository).
var (
	ackBody        = []byte("+ACK")
	inProgressBody = []byte("+WPI")
	nakBody        = []byte("-NAK")
)

// ack acks held messages. Acks are published without waiting for the
// server: a lost ack only causes a redelivery, which the worker handles.
func (w *Worker) ack(messages []heldMessage) {
	w.publishAcks(messages, ackBody, "ack")
	w.metrics.heldDelta(-len(messages))
}

// nak returns held messages for redelivery after delay; 0 redelivers at once.
func (w *Worker) nak(messages []heldMessage, delay time.Duration) {
	body := nakBody
	if delay > 0 {
		body = []byte(fmt.Sprintf(`-NAK {"delay": %d}`, delay.Nanoseconds()))
	}
	w.publishAcks(messages, body, "nak")
	w.metrics.heldDelta(-len(messages))
}

// keepAlive sends an in-progress ack for every held message, which resets
// JetStream's redelivery timer.
func (w *Worker) keepAlive() {
	replies := w.scheduler.heldReplies()
	for _, reply := range replies {
		if err := w.opts.Conn.Publish(reply, inProgressBody); err != nil {
			w.logger.Error().Err(err).Int("messages", len(replies)).Msg("in-progress ack failed; JetStream may redeliver held messages")
			return
		}
	}
}

func (w *Worker) publishAcks(messages []heldMessage, body []byte, kind string) {
	for _, message := range messages {
		if err := w.opts.Conn.Publish(message.reply, body); err != nil {
			w.logger.Error().Err(err).Str("kind", kind).Uint64("stream_seq", message.sequence).
				Msg("acknowledgement failed; JetStream will redeliver the message")
		}
	}
}
