package importer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/contact-sync/contact-sync/internal/contact"
)

// recordMapper is a Mapping bound to the columns of one CSV header, so that
// each row is mapped without looking up column names again.
type recordMapper struct {
	namespace        uuid.UUID
	idIsUUID         bool
	idColumn         columnRef
	occurredAtColumn columnRef // index -1 when the mapping has none
	fields           []fieldSource
	dynamic          []dynamicSource
	clearBlank       bool
	phoneE164        bool
	phoneCountryCode int
	headerLength     int
	importTime       time.Time
}

type columnRef struct {
	name  string
	index int
}

type fieldSource struct {
	field   string
	columns []columnRef
}

type dynamicSource struct {
	key       string
	column    columnRef
	valueType string
}

// EventFromRecord maps one CSV record to an event: its event_id (see
// EventID), its contact_id and its JSON body. rowNumber is the record's
// 1-based row number with the header as row 1. When the mapping has no
// occurred_at column, or the cell is blank, occurred_at is the current time.
//
// EventFromRecord matches the header on every call; Import does that once
// per file. The error is ErrInvalidMapping or ErrMissingColumn for a mapping
// that does not fit the header, and otherwise a *RecordError that names the
// row and the column and wraps ErrInvalidRecord.
func (m Mapping) EventFromRecord(header, record []string, rowNumber int, batchID string) (eventID, contactID string, body []byte, err error) {
	mapper, err := m.newRecordMapper(header, time.Now())
	if err != nil {
		return "", "", nil, err
	}
	return mapper.event(record, rowNumber, batchID)
}

// newRecordMapper validates the mapping and finds its columns in the header.
func (m Mapping) newRecordMapper(header []string, importTime time.Time) (*recordMapper, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	namespace, err := m.namespace()
	if err != nil {
		return nil, err
	}

	finder := newColumnFinder(header)
	mapper := &recordMapper{
		namespace:        namespace,
		idIsUUID:         m.IDIsUUID,
		idColumn:         finder.find(m.IDColumn, "id_column"),
		occurredAtColumn: columnRef{index: -1},
		clearBlank:       m.Blank == BlankClear,
		phoneE164:        m.PhoneFormat == PhoneE164,
		phoneCountryCode: m.PhoneCountryCode,
		headerLength:     len(header),
		importTime:       importTime.UTC(),
	}
	if mapper.phoneCountryCode == 0 {
		mapper.phoneCountryCode = 1
	}
	if m.OccurredAtColumn != "" {
		mapper.occurredAtColumn = finder.find(m.OccurredAtColumn, "occurred_at_column")
	}

	for _, field := range slices.Sorted(maps.Keys(m.Fields)) {
		source := fieldSource{field: field}
		for _, column := range m.Fields[field] {
			source.columns = append(source.columns, finder.find(column, "fields."+field))
		}
		mapper.fields = append(mapper.fields, source)
	}
	for _, key := range slices.Sorted(maps.Keys(m.Dynamic)) {
		source := m.Dynamic[key]
		valueType := source.Type
		if valueType == "" {
			valueType = TypeString
		}
		mapper.dynamic = append(mapper.dynamic, dynamicSource{key: key, column: finder.find(source.Column, "dynamic."+key), valueType: valueType})
	}

	if finder.err != nil {
		return nil, finder.err
	}
	return mapper, nil
}

// columnFinder finds columns in a header and keeps the first error.
type columnFinder struct {
	header []string
	index  map[string]int
	err    error
}

func newColumnFinder(header []string) *columnFinder {
	finder := &columnFinder{header: header, index: make(map[string]int, len(header))}
	for i, name := range header {
		if _, duplicate := finder.index[name]; duplicate {
			finder.index[name] = -1 // ambiguous, an error only when used
			continue
		}
		finder.index[name] = i
	}
	return finder
}

func (f *columnFinder) find(name, key string) columnRef {
	name = strings.TrimSpace(name)
	index, found := f.index[name]
	if f.err != nil {
		return columnRef{name: name, index: index}
	}

	switch {
	case !found:
		f.err = fmt.Errorf("%w: %s names column %q, but the header's columns are %s", ErrMissingColumn, key, name, strings.Join(f.header, ", "))
	case index < 0:
		f.err = fmt.Errorf("%w: %s names column %q, which the header has more than once", ErrInvalidMapping, key, name)
	}
	return columnRef{name: name, index: index}
}

// event maps one record. Errors are *RecordError.
func (r *recordMapper) event(record []string, rowNumber int, batchID string) (eventID, contactID string, body []byte, err error) {
	if len(record) != r.headerLength {
		return "", "", nil, r.rowError(rowNumber, "", fmt.Errorf("%w: has %d fields, the header has %d", ErrInvalidRecord, len(record), r.headerLength))
	}

	contactID, err = deriveContactID(r.namespace, r.idIsUUID, record[r.idColumn.index])
	if err != nil {
		return "", "", nil, r.rowError(rowNumber, r.idColumn.name, err)
	}

	occurredAt := r.importTime
	if r.occurredAtColumn.index >= 0 {
		if cell := strings.TrimSpace(record[r.occurredAtColumn.index]); cell != "" {
			occurredAt, err = parseTime(cell)
			if err != nil {
				return "", "", nil, r.rowError(rowNumber, r.occurredAtColumn.name, err)
			}
		}
	}

	changes, err := r.changes(record, rowNumber)
	if err != nil {
		return "", "", nil, err
	}

	eventID = EventID(batchID, rowNumber)
	body, err = encodeEvent(eventID, contactID, occurredAt, changes)
	if err != nil {
		return "", "", nil, r.rowError(rowNumber, "", err)
	}
	return eventID, contactID, body, nil
}

func (r *recordMapper) rowError(rowNumber int, column string, err error) *RecordError {
	return &RecordError{Format: FormatCSV, Number: rowNumber, Column: column, Err: err}
}

// changes builds the partial update of one record.
func (r *recordMapper) changes(record []string, rowNumber int) (contact.Changes, error) {
	var changes contact.Changes
	for _, source := range r.fields {
		value, column := firstNonBlank(record, source.columns)
		if value == "" {
			if r.clearBlank {
				clearField(&changes, source.field)
			}
			continue
		}
		if err := r.setField(&changes, source.field, value); err != nil {
			return contact.Changes{}, r.rowError(rowNumber, column, err)
		}
	}

	for _, source := range r.dynamic {
		value, err := r.dynamicValue(source, strings.TrimSpace(record[source.column.index]))
		if err != nil {
			return contact.Changes{}, r.rowError(rowNumber, source.column.name, err)
		}
		if value != nil {
			changes.DynamicFields = append(changes.DynamicFields, contact.DynamicField{Key: source.key, Value: value})
		}
	}
	return changes, nil
}

// firstNonBlank returns the first non-blank cell of the columns, trimmed,
// and its column name, or "" and "" when all are blank.
func firstNonBlank(record []string, columns []columnRef) (value, column string) {
	for _, ref := range columns {
		if cell := strings.TrimSpace(record[ref.index]); cell != "" {
			return cell, ref.name
		}
	}
	return "", ""
}

func clearField(changes *contact.Changes, field string) {
	switch field {
	case fieldName:
		changes.Name = contact.Cleared[string]()
	case fieldSurname:
		changes.Surname = contact.Cleared[string]()
	case fieldEmail:
		changes.Email = contact.Cleared[string]()
	case fieldPhone:
		changes.Phone = contact.Cleared[string]()
	case fieldEntityID:
		changes.EntityID = contact.Cleared[string]()
	case fieldHasCustomerPortal:
		changes.HasCustomerPortal = contact.Cleared[bool]()
	case fieldServicePointIDs:
		changes.ServicePointIDs = contact.Cleared[[]string]()
	}
}

// setField parses a non-blank cell into an API field.
func (r *recordMapper) setField(changes *contact.Changes, field, value string) error {
	switch field {
	case fieldName:
		changes.Name = contact.SetTo(value)
	case fieldSurname:
		changes.Surname = contact.SetTo(value)
	case fieldEmail:
		changes.Email = contact.SetTo(value)
	case fieldPhone:
		if r.phoneE164 {
			phone, err := NormalizePhone(value, r.phoneCountryCode)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
			}
			value = phone
		}
		changes.Phone = contact.SetTo(value)
	case fieldEntityID:
		id, err := contact.ParseID(value)
		if err != nil {
			return fmt.Errorf("%w: entity_id is not a UUID", ErrInvalidRecord)
		}
		changes.EntityID = contact.SetTo(id)
	case fieldHasCustomerPortal:
		portal, err := ParseBool(value)
		if err != nil {
			return err
		}
		changes.HasCustomerPortal = contact.SetTo(portal)
	case fieldServicePointIDs:
		ids, err := parseUUIDList(value)
		if err != nil {
			return err
		}
		changes.ServicePointIDs = contact.SetTo(ids)
	}
	return nil
}

// dynamicValue returns the JSON value of a dynamic field, or nil to leave
// the field out.
func (r *recordMapper) dynamicValue(source dynamicSource, cell string) (json.RawMessage, error) {
	if source.valueType == TypeList {
		return json.Marshal(splitList(cell))
	}
	if cell == "" {
		if r.clearBlank {
			return json.RawMessage("null"), nil
		}
		return nil, nil
	}

	switch source.valueType {
	case TypeInteger:
		value, err := strconv.ParseInt(cell, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %s is not a decimal 64-bit integer", ErrInvalidRecord, source.key)
		}
		return json.RawMessage(strconv.FormatInt(value, 10)), nil
	case TypeBoolean:
		value, err := ParseBool(cell)
		if err != nil {
			return nil, err
		}
		return json.Marshal(value)
	default:
		return marshalString(cell), nil
	}
}

// ParseBool parses true, false, 1, 0, yes or no, case-insensitively and
// ignoring surrounding spaces. The error wraps ErrInvalidRecord.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	}
	return false, fmt.Errorf("%w: not a boolean (expected true, false, 1, 0, yes or no)", ErrInvalidRecord)
}

// splitList splits a cell on commas into trimmed, non-empty items. A blank
// cell gives an empty, non-nil list.
func splitList(cell string) []string {
	items := []string{}
	for item := range strings.SplitSeq(cell, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

func parseUUIDList(cell string) ([]string, error) {
	items := splitList(cell)
	for i, item := range items {
		id, err := contact.ParseID(item)
		if err != nil {
			return nil, fmt.Errorf("%w: service_point_id_list item %d is not a UUID", ErrInvalidRecord, i+1)
		}
		items[i] = id
	}
	return items, nil
}

// parseTime parses an ISO 8601 time with an offset, such as
// "2024-08-14T11:39:02.318+00:00", with any number of fractional digits and
// "T" or a space between date and time.
func parseTime(cell string) (time.Time, error) {
	if len(cell) > 10 && cell[10] == ' ' {
		cell = cell[:10] + "T" + cell[11:]
	}
	t, err := time.Parse(time.RFC3339Nano, cell)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: not an ISO 8601 time with an offset, like 2024-08-14T11:39:02.318+00:00", ErrInvalidRecord)
	}
	return t, nil
}

// encodeEvent writes the event body, with occurred_at in UTC.
func encodeEvent(eventID, contactID string, occurredAt time.Time, changes contact.Changes) ([]byte, error) {
	changesJSON, err := changes.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}

	var buf bytes.Buffer
	buf.WriteString(`{"event_id":`)
	buf.Write(marshalString(eventID))
	buf.WriteString(`,"contact_id":`)
	buf.Write(marshalString(contactID))
	buf.WriteString(`,"occurred_at":`)
	buf.Write(marshalString(occurredAt.UTC().Format(time.RFC3339Nano)))
	buf.WriteString(`,"changes":`)
	buf.Write(changesJSON)
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// marshalString encodes s as a JSON string without HTML escaping, so that
// "Smith & Sons" stays readable in the stream.
func marshalString(s string) json.RawMessage {
	var buf bytes.Buffer
	encoder := json.NewEncoder(&buf)
	encoder.SetEscapeHTML(false)
	_ = encoder.Encode(s) // a string always encodes

	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
