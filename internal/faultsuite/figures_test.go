package faultsuite

import (
	"maps"
	"slices"
	"strings"

	"github.com/contact-sync/contact-sync/internal/contact"
	"github.com/contact-sync/contact-sync/internal/eventgen"
)

// figures is what a test found once the stream drained.
type figures struct {
	// published counts the messages the test published.
	published int

	// applied counts valid events whose changes the stand-in stores. For a
	// known contact whose state equals the fold of its events, that is all
	// of them. For a contact whose state differs, it is the events of the
	// longest prefix whose fold equals that state. Events with empty changes
	// count as applied unless they were dead-lettered.
	applied int

	// deadLettered counts the events with a dead letter, by reason.
	deadLettered map[string]int

	// lost is published - applied - dead-lettered: events neither
	// visible at the stand-in nor dead-lettered.
	lost int

	// stale counts known contacts whose state differs from the fold of
	// their events that were not dead-lettered, in stream order.
	stale int

	// mismatches describes the first few stale contacts.
	mismatches []string
}

// account reads the dead letters and the stand-in's contacts and counts
// where every published message ended. known lists the contacts that the
// stand-in has.
func (f *fixture) account(known []string) figures {
	f.t.Helper()
	// Dead letters name a sequence of the stream as it is now, so messages
	// published before the test deleted the stream match none.
	bySequence := map[uint64]int{}
	for i, entry := range f.ledger {
		if entry.generation == f.generation {
			bySequence[entry.sequence] = i
		}
	}

	result := figures{published: len(f.ledger), deadLettered: map[string]int{}}
	deadLettered := map[int]bool{}
	for _, letter := range f.deadLetters() {
		index, ok := bySequence[letter.sequence]
		switch {
		case !ok:
			f.t.Errorf("a dead letter names stream sequence %d, which the test never published", letter.sequence)
			continue
		case deadLettered[index]:
			f.t.Errorf("the event at stream sequence %d has more than one dead letter", letter.sequence)
			continue
		}
		deadLettered[index] = true
		result.deadLettered[letter.reason]++
	}

	// An event with empty changes is applied by its ack alone, whether the
	// stand-in has its contact or not.
	byContact := map[string][]eventgen.Event{}
	for i, entry := range f.ledger {
		switch {
		case entry.contactID == "" || deadLettered[i]:
		case entry.empty:
			result.applied++
		default:
			byContact[entry.contactID] = append(byContact[entry.contactID], eventgen.Event{ContactID: entry.contactID, Body: entry.body})
		}
	}

	for _, id := range slices.Sorted(slices.Values(known)) {
		applied, matches := f.appliedEvents(id, byContact[id])
		result.applied += applied
		if !matches {
			result.stale++
			if len(result.mismatches) < 3 {
				got, _ := f.api.Contact(id)
				want := foldState(f, byContact[id])
				result.mismatches = append(result.mismatches, "contact "+id+": stand-in has "+describeState(&got)+", the fold is "+describeState(&want))
			}
		}
	}

	total := 0
	for _, n := range result.deadLettered {
		total += n
	}
	result.lost = result.published - result.applied - total
	return result
}

// appliedEvents returns how many of a contact's events the stand-in's state
// reflects, and whether the state equals the fold of all of them.
func (f *fixture) appliedEvents(id string, events []eventgen.Event) (int, bool) {
	got, _ := f.api.Contact(id)
	for n := len(events); n >= 0; n-- {
		want := foldState(f, events[:n])
		if got.Equal(&want) {
			return n, n == len(events)
		}
	}
	return 0, false
}

// foldState returns the state the stand-in must hold after events, which
// all belong to one contact.
func foldState(f *fixture, events []eventgen.Event) contact.State {
	f.t.Helper()
	if len(events) == 0 {
		return contact.State{}
	}
	states, err := eventgen.Fold(events)
	if err != nil {
		f.t.Fatalf("fold published events: %v", err)
	}
	return states[events[0].ContactID]
}

// describeState names the fields a state sets, without their values, which
// may be emails or phone numbers.
func describeState(state *contact.State) string {
	var set []string
	add := func(name string, isSet bool) {
		if isSet {
			set = append(set, name)
		}
	}
	add("name", state.Name.Set)
	add("surname", state.Surname.Set)
	add("entity_id", state.EntityID.Set)
	add("email", state.Email.Set)
	add("phone", state.Phone.Set)
	add("has_customer_portal", state.HasCustomerPortal.Set)
	add("service_point_id_list", state.ServicePointIDs.Set)
	for _, key := range slices.Sorted(maps.Keys(state.DynamicFields)) {
		set = append(set, "dynamic:"+key)
	}
	if len(set) == 0 {
		return "no fields"
	}
	return "fields {" + strings.Join(set, ", ") + "}"
}

// check fails the test when an event was lost, a contact differs from the
// fold, or the dead letters differ from want (reason to count).
func (result figures) check(f *fixture, want map[string]int) {
	f.t.Helper()
	if result.lost != 0 {
		f.t.Errorf("%d of %d published events were lost: neither applied nor dead-lettered", result.lost, result.published)
	}
	if result.stale != 0 {
		f.t.Errorf("%d contacts differ from the stream-order fold of their events; first ones:\n%s", result.stale, strings.Join(result.mismatches, "\n"))
	}
	for _, reason := range slices.Sorted(maps.Keys(mergeKeys(want, result.deadLettered))) {
		if got := result.deadLettered[reason]; got != want[reason] {
			f.t.Errorf("events dead-lettered as %s = %d, want %d", reason, got, want[reason])
		}
	}
}

func mergeKeys(a, b map[string]int) map[string]int {
	keys := map[string]int{}
	for key := range a {
		keys[key] = 0
	}
	for key := range b {
		keys[key] = 0
	}
	return keys
}
