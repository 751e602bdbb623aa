package worker

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/contact-sync/contact-sync/internal/contact"
)

// heldMessage is the part of an unacked message that the worker keeps: the
// reply subject that acks it, and its stream sequence, which finds the
// original again for a dead letter. The body is not kept, because its
// changes are merged into the contact's pending update.
type heldMessage struct {
	reply    string
	sequence uint64
}

// pendingContact is one contact with held messages. Its fields are guarded
// by the scheduler's mutex.
type pendingContact struct {
	id string

	// changes is the merged update of messages, not yet claimed by a PUT.
	changes  contact.Changes
	messages []heldMessage

	// sending contains the messages whose changes the PUT in flight carries.
	sending []heldMessage

	// claimed is true from the moment a sender takes the contact until
	// finish, so that the contact has at most one PUT in flight.
	claimed bool

	// queued is true while the contact is in the ready queue.
	queued bool

	// readyAt is when the merge window of the pending update ends.
	readyAt time.Time

	// replayFirst and replayLast are set when changes ends with a replay.
	// They are the stream sequences of the redelivered event and of the
	// last later event read back after it, and both 0 otherwise.
	replayFirst, replayLast uint64
}

// catchUpPoll is how often a sender held by the catch-up gate looks again.
const catchUpPoll = 5 * time.Millisecond

// scheduler keeps the pending update of every contact and a FIFO queue of
// contacts ready for a PUT. Safe for concurrent use.
type scheduler struct {
	mergeWindow time.Duration
	catchUp     *catchUpGate

	mu       sync.Mutex
	contacts map[string]*pendingContact
	queue    []*pendingContact
	wake     chan struct{}
}

func newScheduler(mergeWindow time.Duration, catchUp *catchUpGate) *scheduler {
	return &scheduler{
		mergeWindow: mergeWindow,
		catchUp:     catchUp,
		contacts:    make(map[string]*pendingContact),
		wake:        make(chan struct{}, 1),
	}
}

// addResult is the outcome of add for the intake.
type addResult int

const (
	addStarted addResult = iota // the message started a new pending update
	addMerged                   // the message merged into a pending update
)

// add merges a message's changes into its contact's pending update and
// holds the message.
func (s *scheduler) add(contactID string, changes *contact.Changes, message heldMessage) addResult {
	s.mu.Lock()
	defer s.mu.Unlock()

	_, result := s.addLocked(contactID, changes, message)
	return result
}

func (s *scheduler) addLocked(contactID string, changes *contact.Changes, message heldMessage) (*pendingContact, addResult) {
	pending, exists := s.contacts[contactID]
	if !exists {
		pending = &pendingContact{id: contactID}
		s.contacts[contactID] = pending
	}

	result := addMerged
	if pending.changes.IsEmpty() {
		result = addStarted
		pending.readyAt = time.Now().Add(s.mergeWindow)
	}
	pending.changes.Merge(changes)
	pending.messages = append(pending.messages, message)

	if !pending.claimed && !pending.queued {
		s.enqueueLocked(pending)
	}
	return pending, result
}

// addReplayed is add for a redelivered event whose changes are followed by
// those of every later event of its contact, up to stream sequence last.
// The range is recorded under the same lock as the merge, so that a sender
// taking the update in between cannot leave it on an empty update.
func (s *scheduler) addReplayed(contactID string, changes *contact.Changes, message heldMessage, last uint64) addResult {
	s.mu.Lock()
	defer s.mu.Unlock()

	pending, result := s.addLocked(contactID, changes, message)
	pending.replayFirst, pending.replayLast = message.sequence, last
	return result
}

// holdIfReplayed holds a redelivered message without merging it when the
// pending update already ends with a replay that contains it and every
// later event: merging it again would change nothing, and skipping it
// saves reading the stream once per message.
func (s *scheduler) holdIfReplayed(contactID string, message heldMessage) bool {
	s.mu.Lock()
	defer s.mu.Unlock()

	pending, exists := s.contacts[contactID]
	if !exists || pending.replayFirst == 0 || pending.changes.IsEmpty() {
		return false
	}
	if message.sequence <= pending.replayFirst || message.sequence > pending.replayLast {
		return false
	}
	pending.messages = append(pending.messages, message)
	return true
}

// refreshIfHeld renews the reply subject of a held message that JetStream
// delivered again, and reports whether the message was held.
func (s *scheduler) refreshIfHeld(contactID string, message heldMessage) bool {
	s.mu.Lock()
	defer s.mu.Unlock()

	pending, exists := s.contacts[contactID]
	return exists && refreshReply(pending, message)
}

// refreshReply replaces the reply subject of a held message with the same
// stream sequence and reports whether there was one.
func refreshReply(pending *pendingContact, message heldMessage) bool {
	for _, list := range [][]heldMessage{pending.messages, pending.sending} {
		for i := range list {
			if list[i].sequence == message.sequence {
				list[i].reply = message.reply
				return true
			}
		}
	}
	return false
}

func (s *scheduler) enqueueLocked(pending *pendingContact) {
	pending.queued = true
	s.queue = append(s.queue, pending)
	s.signalLocked()
}

// signalLocked wakes one waiting sender, or the next one to wait.
func (s *scheduler) signalLocked() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// next waits until the contact at the head of the queue has passed its
// merge window, claims it and returns it. It returns ctx's error when ctx
// ends first.
func (s *scheduler) next(ctx context.Context) (*pendingContact, error) {
	for {
		// A shutdown starts no new PUT, even with contacts ready.
		if err := ctx.Err(); err != nil {
			return nil, err
		}

		s.mu.Lock()
		wait := time.Duration(-1)
		if len(s.queue) > 0 {
			head := s.queue[0]
			wait = time.Until(head.readyAt)
			if wait <= 0 && !s.catchUp.isOpen() {
				wait = catchUpPoll
			} else if wait <= 0 {
				s.queue[0] = nil
				s.queue = s.queue[1:]
				head.queued = false
				head.claimed = true

				// The wake-up that brought this sender here was for
				// one contact; pass one on to the next sender while
				// contacts remain.
				if len(s.queue) > 0 {
					s.signalLocked()
				}
				s.mu.Unlock()
				return head, nil
			}
		}
		s.mu.Unlock()

		if err := s.waitForWork(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// waitForWork waits for a wake-up, for wait when it is not negative, or
// for ctx to end.
func (s *scheduler) waitForWork(ctx context.Context, wait time.Duration) error {
	var timeout <-chan time.Time
	if wait >= 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		timeout = timer.C
	}

	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.wake:
		return nil
	case <-timeout:
		return nil
	}
}

// take moves a claimed contact's pending update and messages to sending,
// and returns the update. Changes that arrive later start the next update.
func (s *scheduler) take(pending *pendingContact) contact.Changes {
	s.mu.Lock()
	defer s.mu.Unlock()

	changes := pending.changes
	pending.changes = contact.Changes{}
	pending.replayFirst, pending.replayLast = 0, 0
	pending.sending = pending.messages
	pending.messages = nil
	return changes
}

// sendingMessages returns a copy of the messages the contact's PUT carries.
func (s *scheduler) sendingMessages(pending *pendingContact) []heldMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(pending.sending)
}

// finish releases a claimed contact after its PUT ended and its sending
// messages were acked, nakked or dead-lettered. A contact with changes that
// arrived meanwhile goes to the back of the queue; one with nothing held is
// forgotten.
func (s *scheduler) finish(pending *pendingContact) {
	s.mu.Lock()
	defer s.mu.Unlock()

	pending.claimed = false
	pending.sending = nil
	if len(pending.messages) > 0 {
		s.enqueueLocked(pending)
		return
	}
	delete(s.contacts, pending.id)
}

// heldReplies returns the reply subjects of every held message, for
// in-progress acks.
func (s *scheduler) heldReplies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()

	var replies []string
	for _, pending := range s.contacts {
		for _, message := range pending.messages {
			replies = append(replies, message.reply)
		}
		for _, message := range pending.sending {
			replies = append(replies, message.reply)
		}
	}
	return replies
}

// releaseAll removes every contact and returns the messages still held, for
// the shutdown to nak. Call it only after every sender has stopped.
func (s *scheduler) releaseAll() []heldMessage {
	s.mu.Lock()
	defer s.mu.Unlock()

	var released []heldMessage
	for _, pending := range s.contacts {
		released = append(released, pending.messages...)
		released = append(released, pending.sending...)
	}
	s.contacts = make(map[string]*pendingContact)
	s.queue = nil
	return released
}

// pendingCount returns the number of contacts with held messages.
func (s *scheduler) pendingCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.contacts)
}
