package contact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Field is one field of a partial update. The zero value is an absent field,
// which leaves the contact's value unchanged.
type Field[T any] struct {
	// Set reports that the update carries the field.
	Set bool

	// Null reports that the update clears the field; Set is true too.
	Null bool

	// Value is the new value when Set is true and Null is false.
	Value T
}

// SetTo returns a field that sets the value v.
func SetTo[T any](v T) Field[T] { return Field[T]{Set: true, Value: v} }

// Cleared returns a field that clears the value.
func Cleared[T any]() Field[T] { return Field[T]{Set: true, Null: true} }

// DynamicField is one entry of dynamic_field_list: a key and any JSON value,
// stored compacted so that equal values compare equal byte for byte.
type DynamicField struct {
	Key   string
	Value json.RawMessage
}

// Changes is a partial update of one contact, as carried by an event's
// changes object and sent as the body of one or more PUTs. The zero value is
// an empty update.
//
// Dynamic fields are two operations applied in order: ClearDynamicFields
// first removes every dynamic field, then DynamicFields sets each listed key
// and keeps the others. One PUT body cannot carry both, so Parts splits such
// an update in two.
type Changes struct {
	Name              Field[string]
	Surname           Field[string]
	EntityID          Field[string]
	Email             Field[string]
	Phone             Field[string]
	HasCustomerPortal Field[bool]
	ServicePointIDs   Field[[]string]

	// ClearDynamicFields reports that dynamic_field_list is null: every
	// dynamic field is removed before DynamicFields is applied.
	ClearDynamicFields bool

	// DynamicFields lists the keys to set, each key once, in the order the
	// keys first appeared.
	DynamicFields []DynamicField
}

// JSON names of the fields of an update, as the contact API spells them.
const (
	fieldName              = "name"
	fieldSurname           = "surname"
	fieldEntityID          = "entity_id"
	fieldEmail             = "email"
	fieldPhone             = "phone"
	fieldHasCustomerPortal = "has_customer_portal"
	fieldServicePointIDs   = "service_point_id_list"
	fieldDynamicFields     = "dynamic_field_list"
)

// IsEmpty reports whether the update changes nothing.
func (c *Changes) IsEmpty() bool {
	return !c.Name.Set && !c.Surname.Set && !c.EntityID.Set && !c.Email.Set &&
		!c.Phone.Set && !c.HasCustomerPortal.Set && !c.ServicePointIDs.Set &&
		!c.ClearDynamicFields && len(c.DynamicFields) == 0
}

// Merge folds a later update into c, so that applying c afterwards has the
// effect of applying the old c and then later. A field that later carries
// replaces the old value; dynamic fields merge by key, and a clear in later
// drops every dynamic field that c set before it.
func (c *Changes) Merge(later *Changes) {
	mergeField(&c.Name, later.Name)
	mergeField(&c.Surname, later.Surname)
	mergeField(&c.EntityID, later.EntityID)
	mergeField(&c.Email, later.Email)
	mergeField(&c.Phone, later.Phone)
	mergeField(&c.HasCustomerPortal, later.HasCustomerPortal)
	mergeField(&c.ServicePointIDs, later.ServicePointIDs)

	if later.ClearDynamicFields {
		c.ClearDynamicFields = true
		c.DynamicFields = c.DynamicFields[:0]
	}
	for _, field := range later.DynamicFields {
		c.setDynamicField(field)
	}
}

func mergeField[T any](dst *Field[T], later Field[T]) {
	if later.Set {
		*dst = later
	}
}

// setDynamicField sets one key, keeping the key's first position.
func (c *Changes) setDynamicField(field DynamicField) {
	for i := range c.DynamicFields {
		if c.DynamicFields[i].Key == field.Key {
			c.DynamicFields[i].Value = field.Value
			return
		}
	}
	c.DynamicFields = append(c.DynamicFields, field)
}

// Parts splits the update into the PUT bodies that express exactly its effect,
// in the order they must be sent: none for an empty update, two when the
// dynamic fields are cleared and then set again, one otherwise.
func (c *Changes) Parts() []Changes {
	if c.IsEmpty() {
		return nil
	}

	if !c.ClearDynamicFields || len(c.DynamicFields) == 0 {
		return []Changes{*c}
	}

	clearing := *c
	clearing.DynamicFields = nil
	setting := Changes{DynamicFields: c.DynamicFields}
	return []Changes{clearing, setting}
}

// Clone returns a deep copy, so that later merges into c do not change it.
func (c *Changes) Clone() Changes {
	clone := *c
	clone.ServicePointIDs.Value = slices.Clone(c.ServicePointIDs.Value)
	clone.DynamicFields = slices.Clone(c.DynamicFields)
	return clone
}

// FieldNames returns the JSON names of the fields the update carries, in
// body order. Logs use it to name what changed without logging values.
func (c *Changes) FieldNames() []string {
	var names []string
	add := func(set bool, name string) {
		if set {
			names = append(names, name)
		}
	}
	add(c.Name.Set, fieldName)
	add(c.Surname.Set, fieldSurname)
	add(c.EntityID.Set, fieldEntityID)
	add(c.Email.Set, fieldEmail)
	add(c.Phone.Set, fieldPhone)
	add(c.HasCustomerPortal.Set, fieldHasCustomerPortal)
	add(c.ServicePointIDs.Set, fieldServicePointIDs)
	add(c.ClearDynamicFields || len(c.DynamicFields) > 0, fieldDynamicFields)
	return names
}

// MarshalJSON encodes the update as one PUT body. Fields appear in a fixed
// order and a cleared field is written as null. An update that both clears
// and sets dynamic fields cannot be one body: MarshalJSON returns an error
// for it, and callers send Parts instead.
func (c Changes) MarshalJSON() ([]byte, error) {
	if c.ClearDynamicFields && len(c.DynamicFields) > 0 {
		return nil, fmt.Errorf("contact: an update that clears and sets dynamic fields needs two bodies (use Parts)")
	}

	var buf bytes.Buffer
	buf.WriteByte('{')
	writer := bodyWriter{buf: &buf}
	writeStringField(&writer, fieldName, c.Name)
	writeStringField(&writer, fieldSurname, c.Surname)
	writeStringField(&writer, fieldEntityID, c.EntityID)
	writeStringField(&writer, fieldEmail, c.Email)
	writeStringField(&writer, fieldPhone, c.Phone)
	if c.HasCustomerPortal.Set {
		writer.key(fieldHasCustomerPortal)
		switch {
		case c.HasCustomerPortal.Null:
			buf.WriteString("null")
		case c.HasCustomerPortal.Value:
			buf.WriteString("true")
		default:
			buf.WriteString("false")
		}
	}
	if c.ServicePointIDs.Set {
		writer.key(fieldServicePointIDs)
		writeStringList(&buf, c.ServicePointIDs)
	}
	if c.ClearDynamicFields {
		writer.key(fieldDynamicFields)
		buf.WriteString("null")
	}
	if len(c.DynamicFields) > 0 {
		writer.key(fieldDynamicFields)
		writeDynamicFields(&buf, c.DynamicFields)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// bodyWriter writes the commas between object members.
type bodyWriter struct {
	buf     *bytes.Buffer
	written bool
}

func (w *bodyWriter) key(name string) {
	if w.written {
		w.buf.WriteByte(',')
	}
	w.written = true
	writeJSONString(w.buf, name)
	w.buf.WriteByte(':')
}

func writeStringField(w *bodyWriter, name string, field Field[string]) {
	if !field.Set {
		return
	}
	w.key(name)
	if field.Null {
		w.buf.WriteString("null")
		return
	}
	writeJSONString(w.buf, field.Value)
}

func writeStringList(buf *bytes.Buffer, field Field[[]string]) {
	if field.Null {
		buf.WriteString("null")
		return
	}
	buf.WriteByte('[')
	for i, s := range field.Value {
		if i > 0 {
			buf.WriteByte(',')
		}
		writeJSONString(buf, s)
	}
	buf.WriteByte(']')
}

func writeDynamicFields(buf *bytes.Buffer, fields []DynamicField) {
	buf.WriteByte('[')
	for i, field := range fields {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`{"key":`)
		writeJSONString(buf, field.Key)
		buf.WriteString(`,"value":`)
		if len(field.Value) == 0 {
			buf.WriteString("null")
		} else {
			buf.Write(field.Value)
		}
		buf.WriteByte('}')
	}
	buf.WriteByte(']')
}

// writeJSONString writes s as a JSON string without HTML escaping.
func writeJSONString(buf *bytes.Buffer, s string) {
	encoder := json.NewEncoder(buf)
	encoder.SetEscapeHTML(false)
	_ = encoder.Encode(s) // a string always encodes

	// Encode appends a newline, which a body does not want.
	buf.Truncate(buf.Len() - 1)
}

// sortedKeys returns the keys of a map in order, for deterministic errors.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}

// quoteList quotes and joins names for an error message: at most five,
// each shortened, so that a hostile event cannot make a huge error.
func quoteList(names []string) string {
	const maxListed = 5
	quoted := make([]string, 0, maxListed)
	for _, name := range names[:min(len(names), maxListed)] {
		quoted = append(quoted, fmt.Sprintf("%q", truncate(name)))
	}
	if len(names) > maxListed {
		quoted = append(quoted, fmt.Sprintf("and %d more", len(names)-maxListed))
	}
	return strings.Join(quoted, ", ")
}
