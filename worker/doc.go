// Package worker consumes contact-change events from a JetStream pull
// consumer, merges the pending events of each contact into one partial
// update, sends it through a Sink, and acks or dead-letters the messages.
//
// The contract on each message:
//   - Acked only after the PUT that carries its changes succeeded, or after
//     its dead letter was stored (JetStream confirmed the publish). An event
//     whose changes object is empty carries nothing and is acked at once.
//   - Held, never acked, while its contact waits for a rate token, a retry
//     or a PUT in flight. Every held message gets an in-progress ack each
//     third of the ack wait, so JetStream does not redeliver it meanwhile.
//   - Dead-lettered as invalid at once when it cannot be decoded; as
//     not_found or rejected, one dead letter per original event, when the
//     API refuses the update for good.
//   - Nakked for prompt redelivery when the worker shuts down before its
//     PUT finished, and when its dead letter could not be stored.
//
// For one contact there is never more than one PUT in flight, and updates
// are sent in stream order, so the API ends with the fold of all events.
package worker
