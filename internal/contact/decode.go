package contact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// MaxEventSize is the largest event body, in bytes, that DecodeEvent accepts.
// A contact update is a few hundred bytes; anything near this size is a
// producer bug, and rejecting it keeps one event from holding megabytes in
// the worker.
const MaxEventSize = 256 << 10

// Event is one decoded contact-change event.
type Event struct {
	// EventID identifies the event; publishers use it as the Nats-Msg-Id.
	EventID string

	// ContactID is the contact's UUID in canonical lower-case form.
	ContactID string

	// OccurredAt is when the change happened in the CRM.
	OccurredAt time.Time

	// Changes is the partial update.
	Changes Changes
}

// rawEvent mirrors the event's JSON object before validation.
type rawEvent struct {
	EventID    *string         `json:"event_id"`
	ContactID  *string         `json:"contact_id"`
	OccurredAt *string         `json:"occurred_at"`
	Changes    json.RawMessage `json:"changes"`
}

// DecodeEvent decodes and validates one event body. Every error wraps
// ErrInvalidEvent and names the problem: a body that is empty, larger than
// MaxEventSize, not valid UTF-8 or not a JSON object; a missing event_id,
// contact_id, occurred_at or changes; a contact_id that ParseID rejects; an
// occurred_at that is not RFC 3339; or changes that DecodeChanges rejects.
// Unknown top-level members are ignored, so producers may add metadata.
func DecodeEvent(data []byte) (Event, error) {
	if err := checkBody(data); err != nil {
		return Event{}, err
	}

	var raw rawEvent
	if err := unmarshalObject(data, &raw, "event"); err != nil {
		return Event{}, err
	}

	if raw.EventID == nil || *raw.EventID == "" {
		return Event{}, fmt.Errorf("event_id is missing: %w", ErrInvalidEvent)
	}
	if raw.ContactID == nil {
		return Event{}, fmt.Errorf("contact_id is missing: %w", ErrInvalidEvent)
	}
	contactID, err := ParseID(*raw.ContactID)
	if err != nil {
		return Event{}, err
	}

	if raw.OccurredAt == nil {
		return Event{}, fmt.Errorf("occurred_at is missing: %w", ErrInvalidEvent)
	}
	occurredAt, err := time.Parse(time.RFC3339Nano, *raw.OccurredAt)
	if err != nil {
		return Event{}, fmt.Errorf("occurred_at %q is not an RFC 3339 time: %w", truncate(*raw.OccurredAt), ErrInvalidEvent)
	}

	if raw.Changes == nil {
		return Event{}, fmt.Errorf("changes is missing: %w", ErrInvalidEvent)
	}
	changes, err := DecodeChanges(raw.Changes)
	if err != nil {
		return Event{}, err
	}

	event := Event{
		EventID:    *raw.EventID,
		ContactID:  contactID,
		OccurredAt: occurredAt,
		Changes:    changes,
	}
	return event, nil
}

// DecodeChanges decodes and validates a partial update: the changes object
// of an event, or the body of a PUT. Every error wraps ErrInvalidEvent.
//
// Accepted members and their types, each also accepting null:
//   - name, surname, email, phone: string
//   - entity_id: UUID string
//   - has_customer_portal: boolean
//   - service_point_id_list: array of UUID strings
//   - dynamic_field_list: array of {"key": non-empty string, "value": any JSON}
//
// Any other member is rejected rather than passed through, so that a typo
// in a producer is seen at once instead of being silently dropped or sent.
func DecodeChanges(data []byte) (Changes, error) {
	var members map[string]json.RawMessage
	if err := unmarshalObject(data, &members, "changes"); err != nil {
		return Changes{}, err
	}

	var changes Changes
	var unknown []string
	for _, name := range sortedKeys(members) {
		value := members[name]
		var err error
		switch name {
		case fieldName:
			changes.Name, err = decodeString(name, value)
		case fieldSurname:
			changes.Surname, err = decodeString(name, value)
		case fieldEmail:
			changes.Email, err = decodeString(name, value)
		case fieldPhone:
			changes.Phone, err = decodeString(name, value)
		case fieldEntityID:
			changes.EntityID, err = decodeUUID(name, value)
		case fieldHasCustomerPortal:
			changes.HasCustomerPortal, err = decodeBool(name, value)
		case fieldServicePointIDs:
			changes.ServicePointIDs, err = decodeUUIDList(name, value)
		case fieldDynamicFields:
			err = decodeDynamicFields(value, &changes)
		default:
			unknown = append(unknown, name)
		}
		if err != nil {
			return Changes{}, err
		}
	}

	if len(unknown) > 0 {
		return Changes{}, fmt.Errorf("changes has unknown fields %s (known: name, surname, entity_id, email, phone, has_customer_portal, service_point_id_list, dynamic_field_list): %w",
			quoteList(unknown), ErrInvalidEvent)
	}
	return changes, nil
}

// checkBody rejects bodies that cannot be a JSON object of sane size.
func checkBody(data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("body is empty: %w", ErrInvalidEvent)
	}
	if len(data) > MaxEventSize {
		return fmt.Errorf("body is %d bytes, larger than the limit of %d: %w", len(data), MaxEventSize, ErrInvalidEvent)
	}

	// encoding/json replaces invalid UTF-8 with U+FFFD without an error,
	// which would change the contact's data silently.
	if !utf8.Valid(data) {
		return fmt.Errorf("body is not valid UTF-8: %w", ErrInvalidEvent)
	}
	return nil
}

// unmarshalObject decodes a JSON object, naming what was expected when the
// value is not an object.
func unmarshalObject(data []byte, target any, what string) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if json.Valid(trimmed) {
			return fmt.Errorf("%s is %s, not a JSON object: %w", what, jsonKind(trimmed), ErrInvalidEvent)
		}
		return fmt.Errorf("%s is not valid JSON: %w", what, ErrInvalidEvent)
	}

	if err := json.Unmarshal(trimmed, target); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return fmt.Errorf("%s member %s must be a %s, got a JSON %s: %w", what, typeErr.Field, typeErr.Type.Kind(), typeErr.Value, ErrInvalidEvent)
		}
		return fmt.Errorf("%s is not valid JSON (%v): %w", what, err, ErrInvalidEvent)
	}
	return nil
}

func decodeString(name string, value json.RawMessage) (Field[string], error) {
	if isNull(value) {
		return Cleared[string](), nil
	}
	var s string
	if err := json.Unmarshal(value, &s); err != nil {
		return Field[string]{}, typeError(name, "a string", value)
	}
	return SetTo(s), nil
}

func decodeUUID(name string, value json.RawMessage) (Field[string], error) {
	field, err := decodeString(name, value)
	if err != nil || field.Null {
		return field, err
	}
	id, err := ParseID(field.Value)
	if err != nil {
		return Field[string]{}, fmt.Errorf("%s %q is not a UUID: %w", name, truncate(field.Value), ErrInvalidEvent)
	}
	return SetTo(id), nil
}

func decodeBool(name string, value json.RawMessage) (Field[bool], error) {
	if isNull(value) {
		return Cleared[bool](), nil
	}
	var b bool
	if err := json.Unmarshal(value, &b); err != nil {
		return Field[bool]{}, typeError(name, "a boolean", value)
	}
	return SetTo(b), nil
}

func decodeUUIDList(name string, value json.RawMessage) (Field[[]string], error) {
	if isNull(value) {
		return Cleared[[]string](), nil
	}
	var list []string
	if err := json.Unmarshal(value, &list); err != nil {
		return Field[[]string]{}, typeError(name, "an array of UUID strings", value)
	}
	ids := make([]string, len(list))
	for i, s := range list {
		id, err := ParseID(s)
		if err != nil {
			return Field[[]string]{}, fmt.Errorf("%s[%d] %q is not a UUID: %w", name, i, truncate(s), ErrInvalidEvent)
		}
		ids[i] = id
	}
	return SetTo(ids), nil
}

// rawDynamicField mirrors one dynamic_field_list entry before validation.
type rawDynamicField struct {
	Key   *string         `json:"key"`
	Value json.RawMessage `json:"value"`
}

func decodeDynamicFields(value json.RawMessage, changes *Changes) error {
	if isNull(value) {
		changes.ClearDynamicFields = true
		return nil
	}

	var entries []json.RawMessage
	if err := json.Unmarshal(value, &entries); err != nil {
		return typeError(fieldDynamicFields, `an array of {"key", "value"} objects`, value)
	}
	for i, entry := range entries {
		var members map[string]json.RawMessage
		if err := json.Unmarshal(entry, &members); err != nil {
			return fmt.Errorf("%s[%d] is %s, not an object: %w", fieldDynamicFields, i, jsonKind(entry), ErrInvalidEvent)
		}
		for name := range members {
			if name != "key" && name != "value" {
				return fmt.Errorf("%s[%d] has unknown member %q (known: key, value): %w", fieldDynamicFields, i, truncate(name), ErrInvalidEvent)
			}
		}

		keyValue, hasKey := members["key"]
		if !hasKey {
			return fmt.Errorf("%s[%d] has no key: %w", fieldDynamicFields, i, ErrInvalidEvent)
		}
		if !isJSONString(keyValue) {
			return fmt.Errorf("%s[%d].key must be a string, got %s: %w", fieldDynamicFields, i, jsonKind(keyValue), ErrInvalidEvent)
		}

		var raw rawDynamicField
		if err := json.Unmarshal(entry, &raw); err != nil {
			return fmt.Errorf("%s[%d] is not valid (%v): %w", fieldDynamicFields, i, err, ErrInvalidEvent)
		}
		if *raw.Key == "" {
			return fmt.Errorf("%s[%d] has an empty key: %w", fieldDynamicFields, i, ErrInvalidEvent)
		}

		changes.setDynamicField(DynamicField{Key: *raw.Key, Value: compact(raw.Value)})
	}
	return nil
}

// compact returns the JSON value without insignificant spaces, and null for
// an absent value, so that equal values compare equal byte for byte.
func compact(value json.RawMessage) json.RawMessage {
	if len(value) == 0 {
		return json.RawMessage("null")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, value); err != nil {
		return value
	}
	return buf.Bytes()
}

func isNull(value json.RawMessage) bool {
	return string(bytes.TrimSpace(value)) == "null"
}

func isJSONString(value json.RawMessage) bool {
	trimmed := bytes.TrimSpace(value)
	return len(trimmed) > 0 && trimmed[0] == '"'
}

func typeError(name, expected string, value json.RawMessage) error {
	return fmt.Errorf("%s must be %s or null, got %s: %w", name, expected, jsonKind(value), ErrInvalidEvent)
}

// jsonKind names the kind of a JSON value for an error message, without
// quoting the value, which may be an email or a phone number.
func jsonKind(value []byte) string {
	trimmed := bytes.TrimSpace(value)
	if len(trimmed) == 0 {
		return "nothing"
	}
	switch trimmed[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}
