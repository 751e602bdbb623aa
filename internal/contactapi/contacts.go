package contactapi

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/contact-sync/contact-sync/internal/contact"
)

// errEmailTaken is returned by update when Options.UniqueEmail is on and the
// update sets an email that another contact holds.
var errEmailTaken = errors.New("email is held by another contact")

// record is the server's data for one contact_id that was added or
// appeared in a request.
type record struct {
	id string

	// known reports that AddContacts added the contact; only known
	// contacts can be updated. It never goes back to false.
	known atomic.Bool

	// attempts counts the requests seen for this contact_id.
	attempts atomic.Int64

	// inFlight counts the requests for this contact_id being handled now.
	inFlight atomic.Int64

	mu    sync.Mutex
	state contact.State
}

// record returns the record of a canonical contact_id, creating it.
func (s *Server) record(id string) *record {
	if rec, ok := s.contacts.Load(id); ok {
		return rec.(*record)
	}
	rec, _ := s.contacts.LoadOrStore(id, &record{id: id})
	return rec.(*record)
}

// AddContacts makes contacts known, each with no fields set; only known
// contacts can be updated. Each id must be a UUID as contact.ParseID
// accepts it, and is stored in canonical form. Adding a known contact
// keeps its state. When an id is invalid, AddContacts adds none of them and
// returns the error of contact.ParseID, which wraps contact.ErrInvalidEvent.
func (s *Server) AddContacts(ids ...string) error {
	canonical := make([]string, len(ids))
	for i, id := range ids {
		parsed, err := contact.ParseID(id)
		if err != nil {
			return fmt.Errorf("add contact: %w", err)
		}
		canonical[i] = parsed
	}

	for _, id := range canonical {
		s.record(id).known.Store(true)
	}
	return nil
}

// Contact returns a deep copy of a known contact's state, and false when
// the contact is not known. id may be in any form contact.ParseID accepts.
func (s *Server) Contact(id string) (contact.State, bool) {
	canonical, err := contact.ParseID(id)
	if err != nil {
		return contact.State{}, false
	}
	value, ok := s.contacts.Load(canonical)
	if !ok || !value.(*record).known.Load() {
		return contact.State{}, false
	}

	rec := value.(*record)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.state.Clone(), true
}

// Contacts returns a deep copy of every known contact's state, keyed by
// canonical contact_id. Each state is read at a different moment, so while
// requests are being served the map is not one snapshot.
func (s *Server) Contacts() map[string]contact.State {
	states := make(map[string]contact.State)
	s.contacts.Range(func(key, value any) bool {
		rec := value.(*record)
		if !rec.known.Load() {
			return true
		}
		rec.mu.Lock()
		states[rec.id] = rec.state.Clone()
		rec.mu.Unlock()
		return true
	})
	return states
}

// update applies a validated partial update to a known contact, or returns
// errEmailTaken and changes nothing.
func (s *Server) update(rec *record, changes *contact.Changes) error {
	checkEmail := s.uniqueEmail && changes.Email.Set
	if checkEmail {
		s.emailMu.Lock()
		defer s.emailMu.Unlock()
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()

	if checkEmail {
		if err := s.claimEmail(rec.id, rec.state.Email, changes.Email); err != nil {
			return err
		}
	}
	rec.state.Apply(changes)
	return nil
}

// claimEmail moves the contact's entry in emailOwners from its current
// email to the new one, or returns errEmailTaken and changes nothing. The
// caller holds emailMu. Emails compare byte for byte.
func (s *Server) claimEmail(id string, current, next contact.Field[string]) error {
	if !next.Null {
		if owner, taken := s.emailOwners[next.Value]; taken && owner != id {
			return errEmailTaken
		}
	}

	if current.Set && !current.Null && s.emailOwners[current.Value] == id {
		delete(s.emailOwners, current.Value)
	}
	if !next.Null {
		s.emailOwners[next.Value] = id
	}
	return nil
}
