package contact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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

// DecodeEvent and DecodeChanges validate a body with scanner, which returns
// the spans of members and elements, and decode values from those spans.
// They call encoding/json only to decode strings with escape sequences and
// to word the error for a body that is not valid JSON or has a member of
// the wrong type. Those errors therefore read as they did when every event
// went through json.Unmarshal.

// rawEvent is the event's JSON object as encoding/json decodes it.
// DecodeEvent uses it only to word syntax and type errors (see decodeError).
type rawEvent struct {
	EventID    *string         `json:"event_id"`
	ContactID  *string         `json:"contact_id"`
	OccurredAt *string         `json:"occurred_at"`
	Changes    json.RawMessage `json:"changes"`
}

// eventMembers holds the members of an event that DecodeEvent reads, as
// spans of the body. A string member is nil when it is absent or null, and
// changes is nil only when it is absent.
type eventMembers struct {
	eventID    []byte
	contactID  []byte
	occurredAt []byte
	changes    []byte
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

	body := bytes.TrimSpace(data)
	if err := checkObject(body, "event"); err != nil {
		return Event{}, err
	}
	members, ok := scanEvent(body)
	if !ok {
		return Event{}, decodeError(body, &rawEvent{}, "event")
	}

	var eventID string
	if members.eventID != nil {
		eventID = unquote(members.eventID)
	}
	if eventID == "" {
		return Event{}, fmt.Errorf("event_id is missing: %w", ErrInvalidEvent)
	}
	if members.contactID == nil {
		return Event{}, fmt.Errorf("contact_id is missing: %w", ErrInvalidEvent)
	}
	contactID, err := ParseID(unquote(members.contactID))
	if err != nil {
		return Event{}, err
	}

	if members.occurredAt == nil {
		return Event{}, fmt.Errorf("occurred_at is missing: %w", ErrInvalidEvent)
	}
	occurredAtText := unquote(members.occurredAt)
	occurredAt, err := time.Parse(time.RFC3339Nano, occurredAtText)
	if err != nil {
		return Event{}, fmt.Errorf("occurred_at %q is not an RFC 3339 time: %w", truncate(occurredAtText), ErrInvalidEvent)
	}

	if members.changes == nil {
		return Event{}, fmt.Errorf("changes is missing: %w", ErrInvalidEvent)
	}
	changes, err := DecodeChanges(members.changes)
	if err != nil {
		return Event{}, err
	}

	event := Event{
		EventID:    eventID,
		ContactID:  contactID,
		OccurredAt: occurredAt,
		Changes:    changes,
	}
	return event, nil
}

// scanEvent validates the event body, which starts with '{', and returns
// the members DecodeEvent reads. It returns false when the body is not
// valid JSON or when event_id, contact_id or occurred_at is neither a string
// nor null, which are the cases in which json.Unmarshal into a rawEvent
// fails.
func scanEvent(body []byte) (eventMembers, bool) {
	var members eventMembers
	typesValid := true
	s := scanner{data: body}
	for m := range s.members(1) {
		name := m.name()
		if isEventMember(name, "changes") {
			members.changes = m.value
			continue
		}

		var target *[]byte
		switch {
		case isEventMember(name, "event_id"):
			target = &members.eventID
		case isEventMember(name, "contact_id"):
			target = &members.contactID
		case isEventMember(name, "occurred_at"):
			target = &members.occurredAt
		default:
			continue
		}

		// As with encoding/json and a *string, a later duplicate replaces
		// an earlier one, and null resets the member to absent.
		switch m.value[0] {
		case '"':
			*target = m.value
		case 'n':
			*target = nil
		default:
			typesValid = false
		}
	}
	return members, s.finish() && typesValid
}

// isEventMember reports whether a top-level member name selects the member
// want. encoding/json matches struct fields without regard to case, as
// bytes.EqualFold does, so DecodeEvent accepts "Event_ID" as before.
func isEventMember(name []byte, want string) bool {
	return string(name) == want || bytes.EqualFold(name, []byte(want))
}

// changesFieldNames lists the known members of a changes object in name
// order. DecodeChanges checks them in this order, so that an update with
// several invalid members always gets the error of the same member.
var changesFieldNames = [...]string{
	fieldDynamicFields,
	fieldEmail,
	fieldEntityID,
	fieldHasCustomerPortal,
	fieldName,
	fieldPhone,
	fieldServicePointIDs,
	fieldSurname,
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
// When a member appears twice, the later one is used.
func DecodeChanges(data []byte) (Changes, error) {
	body := bytes.TrimSpace(data)
	if err := checkObject(body, "changes"); err != nil {
		return Changes{}, err
	}
	values, unknown, ok := scanChanges(body)
	if !ok {
		return Changes{}, decodeError(body, &map[string]json.RawMessage{}, "changes")
	}

	var changes Changes
	for i, name := range changesFieldNames {
		if values[i] == nil {
			continue
		}
		if err := decodeMember(name, values[i], &changes); err != nil {
			return Changes{}, err
		}
	}

	if len(unknown) > 0 {
		slices.Sort(unknown)
		unknown = slices.Compact(unknown)
		return Changes{}, fmt.Errorf("changes has unknown fields %s (known: name, surname, entity_id, email, phone, has_customer_portal, service_point_id_list, dynamic_field_list): %w",
			quoteList(unknown), ErrInvalidEvent)
	}
	return changes, nil
}

// scanChanges validates a changes object, which starts with '{', and
// returns the value of each known member, indexed as changesFieldNames, and
// the names of the unknown members. It returns false when body is not
// valid JSON.
func scanChanges(body []byte) (values [len(changesFieldNames)][]byte, unknown []string, ok bool) {
	s := scanner{data: body}
	for m := range s.members(1) {
		name := m.name()
		index := changesFieldIndex(name)
		if index < 0 {
			unknown = append(unknown, string(name))
			continue
		}
		values[index] = m.value
	}
	return values, unknown, s.finish()
}

func changesFieldIndex(name []byte) int {
	for i, known := range changesFieldNames {
		if string(name) == known {
			return i
		}
	}
	return -1
}

// decodeMember decodes the value of the known member name into changes.
func decodeMember(name string, value []byte, changes *Changes) error {
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
		err = decodeDynamicFields(value, changes)
	}
	return err
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

// checkObject rejects a trimmed body that does not start an object, naming
// what was expected and what the body is instead.
func checkObject(body []byte, what string) error {
	if len(body) > 0 && body[0] == '{' {
		return nil
	}
	if json.Valid(body) {
		return fmt.Errorf("%s is %s, not a JSON object: %w", what, jsonKind(body), ErrInvalidEvent)
	}
	return fmt.Errorf("%s is not valid JSON: %w", what, ErrInvalidEvent)
}

// decodeError returns the error for an object that the scanner rejected.
// It decodes body into target with encoding/json, as DecodeEvent and
// DecodeChanges once did for every body, so that the error quotes
// encoding/json's description of the syntax or type error.
func decodeError(body []byte, target any, what string) error {
	err := json.Unmarshal(body, target)

	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Errorf("%s member %s must be a %s, got a JSON %s: %w", what, typeErr.Field, typeErr.Type.Kind(), typeErr.Value, ErrInvalidEvent)
	case err != nil:
		return fmt.Errorf("%s is not valid JSON (%v): %w", what, err, ErrInvalidEvent)
	default:
		// The scanner accepts the same texts as encoding/json
		// (FuzzDecodeChangesValidity checks this), so this is not reached.
		// It keeps a disagreement from accepting the body.
		return fmt.Errorf("%s is not valid JSON: %w", what, ErrInvalidEvent)
	}
}

func decodeString(name string, value []byte) (Field[string], error) {
	if isNull(value) {
		return Cleared[string](), nil
	}
	if value[0] != '"' {
		return Field[string]{}, typeError(name, "a string", value)
	}
	return SetTo(unquote(value)), nil
}

func decodeUUID(name string, value []byte) (Field[string], error) {
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

func decodeBool(name string, value []byte) (Field[bool], error) {
	switch string(value) {
	case "null":
		return Cleared[bool](), nil
	case "true":
		return SetTo(true), nil
	case "false":
		return SetTo(false), nil
	}
	return Field[bool]{}, typeError(name, "a boolean", value)
}

func decodeUUIDList(name string, value []byte) (Field[[]string], error) {
	if isNull(value) {
		return Cleared[[]string](), nil
	}
	if value[0] != '[' {
		return Field[[]string]{}, typeError(name, "an array of UUID strings", value)
	}

	// Every element must be a string before any is parsed as a UUID, so
	// that a number after an invalid UUID is reported as a type error.
	// A null element is an empty string, as encoding/json decodes it into
	// a []string, and so fails as an invalid UUID.
	ids := []string{}
	list := scanner{data: value}
	for element := range list.elements(1) {
		switch element[0] {
		case '"':
			ids = append(ids, unquote(element))
		case 'n':
			ids = append(ids, "")
		default:
			return Field[[]string]{}, typeError(name, "an array of UUID strings", value)
		}
	}

	for i, text := range ids {
		id, err := ParseID(text)
		if err != nil {
			return Field[[]string]{}, fmt.Errorf("%s[%d] %q is not a UUID: %w", name, i, truncate(text), ErrInvalidEvent)
		}
		ids[i] = id
	}
	return SetTo(ids), nil
}

func decodeDynamicFields(value []byte, changes *Changes) error {
	if isNull(value) {
		changes.ClearDynamicFields = true
		return nil
	}
	if value[0] != '[' {
		return typeError(fieldDynamicFields, `an array of {"key", "value"} objects`, value)
	}

	// scanChanges has validated the value, so the scanner finds no syntax
	// error here, and the loop ends after the last entry unless an entry
	// is rejected.
	list := scanner{data: value}
	index := 0
	for entry := range list.elements(1) {
		field, err := decodeDynamicField(index, entry)
		if err != nil {
			return err
		}
		changes.setDynamicField(field)
		index++
	}
	return nil
}

// rawDynamicField is one dynamic_field_list entry as encoding/json decodes
// it. decodeDynamicField uses it only to word a type error.
type rawDynamicField struct {
	Key   *string         `json:"key"`
	Value json.RawMessage `json:"value"`
}

// decodeDynamicField decodes entry number index of dynamic_field_list. An
// absent value is null. When a member appears twice, the later one is used.
func decodeDynamicField(index int, entry []byte) (DynamicField, error) {
	// encoding/json decodes null into a nil map, which has no key.
	if isNull(entry) {
		return DynamicField{}, fmt.Errorf("%s[%d] has no key: %w", fieldDynamicFields, index, ErrInvalidEvent)
	}
	if entry[0] != '{' {
		return DynamicField{}, fmt.Errorf("%s[%d] is %s, not an object: %w", fieldDynamicFields, index, jsonKind(entry), ErrInvalidEvent)
	}

	var key, value []byte
	replacedKeyInvalid := false
	object := scanner{data: entry}
	for m := range object.members(1) {
		switch name := m.name(); string(name) {
		case "key":
			if key != nil && !isJSONString(key) && !isNull(key) {
				replacedKeyInvalid = true
			}
			key = m.value
		case "value":
			value = m.value
		default:
			return DynamicField{}, fmt.Errorf("%s[%d] has unknown member %q (known: key, value): %w", fieldDynamicFields, index, truncate(string(name)), ErrInvalidEvent)
		}
	}

	if key == nil {
		return DynamicField{}, fmt.Errorf("%s[%d] has no key: %w", fieldDynamicFields, index, ErrInvalidEvent)
	}
	if !isJSONString(key) {
		return DynamicField{}, fmt.Errorf("%s[%d].key must be a string, got %s: %w", fieldDynamicFields, index, jsonKind(key), ErrInvalidEvent)
	}

	// encoding/json fails on a key that is neither a string nor null even
	// when a later duplicate key replaces it.
	if replacedKeyInvalid {
		err := json.Unmarshal(entry, &rawDynamicField{})
		return DynamicField{}, fmt.Errorf("%s[%d] is not valid (%v): %w", fieldDynamicFields, index, err, ErrInvalidEvent)
	}

	keyText := unquote(key)
	if keyText == "" {
		return DynamicField{}, fmt.Errorf("%s[%d] has an empty key: %w", fieldDynamicFields, index, ErrInvalidEvent)
	}
	return DynamicField{Key: keyText, Value: compact(value)}, nil
}

// compact returns a copy of the JSON value without insignificant spaces, and
// null for an absent value, so that equal values compare equal byte for
// byte. The copy keeps the decoded event from pinning the caller's buffer.
func compact(value []byte) json.RawMessage {
	if len(value) == 0 {
		return json.RawMessage("null")
	}

	// A value without a space, tab or line break anywhere is already
	// compact, which is the common case.
	if !bytes.ContainsAny(value, " \t\r\n") {
		return bytes.Clone(value)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, value); err != nil {
		return bytes.Clone(value)
	}
	return buf.Bytes()
}

// isNull reports whether a value span from the scanner, which has no
// surrounding spaces, is null.
func isNull(value []byte) bool {
	return string(value) == "null"
}

func isJSONString(value []byte) bool {
	return len(value) > 0 && value[0] == '"'
}

// unquote decodes a valid JSON string literal, quotes included.
func unquote(quoted []byte) string {
	if content, ok := plainContent(quoted); ok {
		return string(content)
	}

	// encoding/json decodes escape sequences and replaces invalid UTF-8
	// and lone surrogates with U+FFFD.
	var s string
	_ = json.Unmarshal(quoted, &s) // cannot fail: the scanner accepts what json.Valid accepts (FuzzDecodeChangesValidity)
	return s
}

// plainContent returns the text between the quotes of a valid JSON string
// literal, and whether that text is the decoded string: true when it has
// no escape sequence and is valid UTF-8.
func plainContent(quoted []byte) ([]byte, bool) {
	content := quoted[1 : len(quoted)-1]
	return content, bytes.IndexByte(content, '\\') < 0 && utf8.Valid(content)
}

func typeError(name, expected string, value []byte) error {
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
