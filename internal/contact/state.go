package contact

import (
	"encoding/json"
	"reflect"
	"slices"
)

// State is a contact as the contact API stores it: the result of applying
// partial updates in order. The zero value is a contact with no fields set.
// It is not safe for concurrent use.
type State struct {
	Name              Field[string]
	Surname           Field[string]
	EntityID          Field[string]
	Email             Field[string]
	Phone             Field[string]
	HasCustomerPortal Field[bool]
	ServicePointIDs   Field[[]string]

	// DynamicFields maps each dynamic field's key to its compacted JSON value.
	DynamicFields map[string]json.RawMessage
}

// Apply applies one partial update: each field the update carries replaces
// the stored one, service_point_id_list is replaced whole, and dynamic
// fields are cleared first when the update clears them, then set by key.
func (s *State) Apply(c *Changes) {
	mergeField(&s.Name, c.Name)
	mergeField(&s.Surname, c.Surname)
	mergeField(&s.EntityID, c.EntityID)
	mergeField(&s.Email, c.Email)
	mergeField(&s.Phone, c.Phone)
	mergeField(&s.HasCustomerPortal, c.HasCustomerPortal)
	if c.ServicePointIDs.Set {
		s.ServicePointIDs = c.ServicePointIDs
		s.ServicePointIDs.Value = slices.Clone(c.ServicePointIDs.Value)
	}

	if c.ClearDynamicFields {
		s.DynamicFields = nil
	}
	for _, field := range c.DynamicFields {
		if s.DynamicFields == nil {
			s.DynamicFields = make(map[string]json.RawMessage)
		}
		s.DynamicFields[field.Key] = field.Value
	}
}

// Clone returns a deep copy of the state.
func (s *State) Clone() State {
	clone := *s
	clone.ServicePointIDs.Value = slices.Clone(s.ServicePointIDs.Value)
	if s.DynamicFields != nil {
		clone.DynamicFields = make(map[string]json.RawMessage, len(s.DynamicFields))
		for key, value := range s.DynamicFields {
			clone.DynamicFields[key] = value
		}
	}
	return clone
}

// Equal reports whether two states hold the same fields. A contact with no
// dynamic fields equals one with an empty map of them.
func (s *State) Equal(other *State) bool {
	if len(s.DynamicFields) == 0 && len(other.DynamicFields) == 0 {
		left, right := *s, *other
		left.DynamicFields, right.DynamicFields = nil, nil
		return reflect.DeepEqual(left, right)
	}
	return reflect.DeepEqual(*s, *other)
}
