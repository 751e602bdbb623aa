// Package eventgen generates random contact-change events and folds them
// into the state the contact API must end with, for tests and benchmarks.
package eventgen

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/contact-sync/contact-sync/internal/contact"
)

// namespace derives contact and entity ids, so that the same seed gives
// the same ids in every run.
var namespace = uuid.MustParse("6f1d3a52-8a4e-4f0c-9a43-3c1f5b2e7d10")

// Event is one generated event: its contact and the JSON body to publish.
type Event struct {
	ContactID string
	Body      []byte
}

// ContactIDs returns n deterministic contact ids.
func ContactIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewSHA1(namespace, fmt.Appendf(nil, "contact-%d", i)).String()
	}
	return ids
}

// Generator makes random events. Not safe for concurrent use.
type Generator struct {
	rng     *rand.Rand
	counter int
}

// New returns a generator whose output depends only on seed.
func New(seed uint64) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Event returns an event for contactID with a random subset of fields:
// values, nulls, dynamic fields set or cleared.
func (g *Generator) Event(contactID string) Event {
	g.counter++
	changes := map[string]any{}
	g.maybeString(changes, "name", "Name")
	g.maybeString(changes, "surname", "Surname")
	g.maybeString(changes, "email", "user")
	g.maybeString(changes, "phone", "+1555")
	if g.rng.IntN(5) == 0 {
		changes["entity_id"] = g.nullOr(uuid.NewSHA1(namespace, fmt.Appendf(nil, "entity-%d", g.rng.IntN(50))).String())
	}
	if g.rng.IntN(5) == 0 {
		changes["has_customer_portal"] = g.nullOr(g.rng.IntN(2) == 0)
	}
	if g.rng.IntN(6) == 0 {
		changes["service_point_id_list"] = g.nullOr(g.servicePoints())
	}
	if g.rng.IntN(3) == 0 {
		changes["dynamic_field_list"] = g.nullOr(g.dynamicFields())
	}

	body, err := json.Marshal(map[string]any{
		"event_id":    fmt.Sprintf("gen-%d-%d", g.counter, g.rng.Uint32()),
		"contact_id":  contactID,
		"occurred_at": time.Date(2026, 1, 1, 0, 0, g.counter, 0, time.UTC).Format(time.RFC3339),
		"changes":     changes,
	})
	if err != nil {
		panic(fmt.Sprintf("eventgen: encode event: %v", err))
	}
	return Event{ContactID: contactID, Body: body}
}

// Events returns n events spread uniformly over contactIDs.
func (g *Generator) Events(contactIDs []string, n int) []Event {
	events := make([]Event, n)
	for i := range events {
		events[i] = g.Event(contactIDs[g.rng.IntN(len(contactIDs))])
	}
	return events
}

func (g *Generator) maybeString(changes map[string]any, name, prefix string) {
	if g.rng.IntN(3) == 0 {
		changes[name] = g.nullOr(fmt.Sprintf("%s-%d", prefix, g.rng.IntN(1000)))
	}
}

// nullOr returns nil (a JSON null) one time in six, else value.
func (g *Generator) nullOr(value any) any {
	if g.rng.IntN(6) == 0 {
		return nil
	}
	return value
}

func (g *Generator) servicePoints() []string {
	points := make([]string, g.rng.IntN(3))
	for i := range points {
		points[i] = uuid.NewSHA1(namespace, fmt.Appendf(nil, "point-%d", g.rng.IntN(20))).String()
	}
	return points
}

func (g *Generator) dynamicFields() []map[string]any {
	fields := make([]map[string]any, 1+g.rng.IntN(3))
	for i := range fields {
		var value any
		switch g.rng.IntN(4) {
		case 0:
			value = g.rng.IntN(100)
		case 1:
			value = fmt.Sprintf("v%d", g.rng.IntN(100))
		case 2:
			value = []any{"a", g.rng.IntN(3)}
		default:
			value = nil
		}
		fields[i] = map[string]any{"key": fmt.Sprintf("k%d", g.rng.IntN(5)), "value": value}
	}
	return fields
}

// Fold applies events in order and returns each contact's final state, as
// the contact API must store it after applying every event in stream order.
func Fold(events []Event) (map[string]contact.State, error) {
	states := make(map[string]contact.State)
	for i, event := range events {
		decoded, err := contact.DecodeEvent(event.Body)
		if err != nil {
			return nil, fmt.Errorf("fold event %d: %w", i, err)
		}
		state := states[decoded.ContactID]
		state.Apply(&decoded.Changes)
		states[decoded.ContactID] = state
	}
	return states, nil
}
