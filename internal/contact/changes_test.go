package contact_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/contact-sync/contact-sync/internal/contact"
)

func dynamic(key, value string) contact.DynamicField {
	return contact.DynamicField{Key: key, Value: json.RawMessage(value)}
}

// mergeAll merges updates in order into a new update.
func mergeAll(updates ...contact.Changes) contact.Changes {
	var merged contact.Changes
	for i := range updates {
		merged.Merge(&updates[i])
	}
	return merged
}

func TestMergeLaterWins(t *testing.T) {
	first := contact.Changes{
		Name:              contact.SetTo("Ada"),
		Surname:           contact.SetTo("Byron"),
		Email:             contact.SetTo("ada@example.org"),
		HasCustomerPortal: contact.SetTo(true),
		ServicePointIDs:   contact.SetTo([]string{servicePoint1}),
	}
	second := contact.Changes{
		Name:              contact.SetTo("Augusta"),
		Surname:           contact.Cleared[string](),
		Phone:             contact.SetTo("+44 20 7946 0000"),
		HasCustomerPortal: contact.SetTo(false),
		ServicePointIDs:   contact.SetTo([]string{servicePoint2, servicePoint1}),
	}

	merged := mergeAll(first, second)

	checkField(t, "Name", merged.Name, contact.SetTo("Augusta"))
	checkField(t, "Surname", merged.Surname, contact.Cleared[string]())
	checkField(t, "EntityID", merged.EntityID, contact.Field[string]{})
	checkField(t, "Email", merged.Email, contact.SetTo("ada@example.org"))
	checkField(t, "Phone", merged.Phone, contact.SetTo("+44 20 7946 0000"))
	checkField(t, "HasCustomerPortal", merged.HasCustomerPortal, contact.SetTo(false))
	checkListField(t, merged.ServicePointIDs, contact.SetTo([]string{servicePoint2, servicePoint1}))
}

func TestMergeSetAfterClear(t *testing.T) {
	merged := mergeAll(
		contact.Changes{Name: contact.SetTo("Ada"), ServicePointIDs: contact.SetTo([]string{servicePoint1})},
		contact.Changes{Name: contact.Cleared[string](), ServicePointIDs: contact.Cleared[[]string]()},
		contact.Changes{Name: contact.SetTo("Grace")},
	)

	checkField(t, "Name", merged.Name, contact.SetTo("Grace"))
	checkListField(t, merged.ServicePointIDs, contact.Cleared[[]string]())
}

func TestMergeDynamicFieldsByKey(t *testing.T) {
	merged := mergeAll(
		contact.Changes{DynamicFields: []contact.DynamicField{dynamic("a", `1`), dynamic("b", `2`)}},
		contact.Changes{DynamicFields: []contact.DynamicField{dynamic("c", `3`), dynamic("a", `10`)}},
		contact.Changes{DynamicFields: []contact.DynamicField{dynamic("b", `null`)}},
	)

	if merged.ClearDynamicFields {
		t.Errorf("ClearDynamicFields = true, want false")
	}
	checkDynamicFields(t, merged.DynamicFields, []contact.DynamicField{dynamic("a", `10`), dynamic("b", `null`), dynamic("c", `3`)})
}

func TestMergeClearThenSetDynamicFields(t *testing.T) {
	merged := mergeAll(
		contact.Changes{Name: contact.SetTo("Ada"), DynamicFields: []contact.DynamicField{dynamic("a", `1`), dynamic("b", `2`)}},
		contact.Changes{ClearDynamicFields: true},
		contact.Changes{DynamicFields: []contact.DynamicField{dynamic("c", `3`)}},
	)

	if !merged.ClearDynamicFields {
		t.Errorf("ClearDynamicFields = false, want true")
	}
	checkDynamicFields(t, merged.DynamicFields, []contact.DynamicField{dynamic("c", `3`)})

	parts := merged.Parts()
	if len(parts) != 2 {
		t.Fatalf("Parts returned %d parts, want 2 (clear, then set)", len(parts))
	}
	checkBody(t, parts[0], `{"name":"Ada","dynamic_field_list":null}`)
	checkBody(t, parts[1], `{"dynamic_field_list":[{"key":"c","value":3}]}`)
}

func TestMergeSetThenClearDynamicFields(t *testing.T) {
	merged := mergeAll(
		contact.Changes{DynamicFields: []contact.DynamicField{dynamic("a", `1`)}},
		contact.Changes{ClearDynamicFields: true},
	)

	parts := merged.Parts()
	if len(parts) != 1 {
		t.Fatalf("Parts returned %d parts, want 1", len(parts))
	}
	checkBody(t, parts[0], `{"dynamic_field_list":null}`)
}

func TestMergeLeavesLaterUnchanged(t *testing.T) {
	later := contact.Changes{
		ServicePointIDs:    contact.SetTo([]string{servicePoint1}),
		ClearDynamicFields: true,
		DynamicFields:      []contact.DynamicField{dynamic("a", `1`), dynamic("b", `2`)},
	}
	snapshot := later.Clone()

	merged := contact.Changes{DynamicFields: []contact.DynamicField{dynamic("z", `0`)}}
	merged.Merge(&later)
	merged.Merge(&contact.Changes{DynamicFields: []contact.DynamicField{dynamic("a", `100`)}})
	merged.Merge(&contact.Changes{ClearDynamicFields: true, DynamicFields: []contact.DynamicField{dynamic("c", `3`)}})

	if !reflect.DeepEqual(later, snapshot) {
		t.Errorf("Merge changed its argument: %+v, was %+v", later, snapshot)
	}
}

func TestCloneIsDeep(t *testing.T) {
	original := contact.Changes{
		ServicePointIDs: contact.SetTo([]string{servicePoint1}),
		DynamicFields:   []contact.DynamicField{dynamic("a", `1`)},
	}

	clone := original.Clone()
	clone.ServicePointIDs.Value[0] = servicePoint2
	clone.Merge(&contact.Changes{ClearDynamicFields: true, DynamicFields: []contact.DynamicField{dynamic("b", `2`)}})

	checkListField(t, original.ServicePointIDs, contact.SetTo([]string{servicePoint1}))
	checkDynamicFields(t, original.DynamicFields, []contact.DynamicField{dynamic("a", `1`)})
}

func TestPartsEmptyUpdate(t *testing.T) {
	for name, changes := range map[string]contact.Changes{
		"zero value":          {},
		"merge of empties":    mergeAll(contact.Changes{}, contact.Changes{}),
		"empty dynamic slice": {DynamicFields: []contact.DynamicField{}},
	} {
		if parts := changes.Parts(); parts != nil {
			t.Errorf("%s: Parts = %+v, want nil", name, parts)
		}
		if !changes.IsEmpty() {
			t.Errorf("%s: IsEmpty = false, want true", name)
		}
		if names := changes.FieldNames(); len(names) != 0 {
			t.Errorf("%s: FieldNames = %v, want none", name, names)
		}
	}
}

func TestPartsClearOnly(t *testing.T) {
	changes := contact.Changes{ClearDynamicFields: true}

	parts := changes.Parts()
	if len(parts) != 1 {
		t.Fatalf("Parts returned %d parts, want 1", len(parts))
	}
	checkBody(t, parts[0], `{"dynamic_field_list":null}`)
}

func TestPartsOneBody(t *testing.T) {
	changes := contact.Changes{Email: contact.SetTo("ada@example.org"), DynamicFields: []contact.DynamicField{dynamic("a", `1`)}}

	parts := changes.Parts()
	if len(parts) != 1 {
		t.Fatalf("Parts returned %d parts, want 1", len(parts))
	}
	checkBody(t, parts[0], `{"email":"ada@example.org","dynamic_field_list":[{"key":"a","value":1}]}`)
}

func TestMarshalJSONFieldOrder(t *testing.T) {
	changes := contact.Changes{
		DynamicFields:     []contact.DynamicField{dynamic("tier", `{"level":2}`), dynamic("note", `"x"`)},
		ServicePointIDs:   contact.SetTo([]string{servicePoint1, servicePoint2}),
		HasCustomerPortal: contact.SetTo(true),
		Phone:             contact.SetTo("+44 20 7946 0000"),
		Email:             contact.SetTo("ada@example.org"),
		EntityID:          contact.SetTo(entityID),
		Surname:           contact.SetTo("Lovelace"),
		Name:              contact.SetTo("Ada"),
	}

	checkBody(t, changes, `{"name":"Ada","surname":"Lovelace","entity_id":"`+entityID+`",`+
		`"email":"ada@example.org","phone":"+44 20 7946 0000","has_customer_portal":true,`+
		`"service_point_id_list":["`+servicePoint1+`","`+servicePoint2+`"],`+
		`"dynamic_field_list":[{"key":"tier","value":{"level":2}},{"key":"note","value":"x"}]}`)

	wantNames := []string{"name", "surname", "entity_id", "email", "phone", "has_customer_portal", "service_point_id_list", "dynamic_field_list"}
	if names := changes.FieldNames(); !reflect.DeepEqual(names, wantNames) {
		t.Errorf("FieldNames = %v, want %v", names, wantNames)
	}
}

func TestMarshalJSONNulls(t *testing.T) {
	changes := contact.Changes{
		Name:               contact.Cleared[string](),
		Surname:            contact.Cleared[string](),
		EntityID:           contact.Cleared[string](),
		Email:              contact.Cleared[string](),
		Phone:              contact.Cleared[string](),
		HasCustomerPortal:  contact.Cleared[bool](),
		ServicePointIDs:    contact.Cleared[[]string](),
		ClearDynamicFields: true,
	}

	checkBody(t, changes, `{"name":null,"surname":null,"entity_id":null,"email":null,"phone":null,`+
		`"has_customer_portal":null,"service_point_id_list":null,"dynamic_field_list":null}`)
}

func TestMarshalJSONValues(t *testing.T) {
	cases := []struct {
		name    string
		changes contact.Changes
		want    string
	}{
		{"empty update", contact.Changes{}, `{}`},
		{"empty string", contact.Changes{Surname: contact.SetTo("")}, `{"surname":""}`},
		{"false", contact.Changes{HasCustomerPortal: contact.SetTo(false)}, `{"has_customer_portal":false}`},
		{"empty list", contact.Changes{ServicePointIDs: contact.SetTo([]string{})}, `{"service_point_id_list":[]}`},
		{"nil list", contact.Changes{ServicePointIDs: contact.SetTo[[]string](nil)}, `{"service_point_id_list":[]}`},
		{"dynamic value missing", contact.Changes{DynamicFields: []contact.DynamicField{{Key: "a"}}}, `{"dynamic_field_list":[{"key":"a","value":null}]}`},
		{"no HTML escaping", contact.Changes{Name: contact.SetTo("<b>Ada & Co</b>")}, `{"name":"<b>Ada & Co</b>"}`},
		{"no HTML escaping in keys", contact.Changes{DynamicFields: []contact.DynamicField{dynamic("a<&>b", `"<&>"`)}}, `{"dynamic_field_list":[{"key":"a<&>b","value":"<&>"}]}`},
		{"quotes and control characters", contact.Changes{Name: contact.SetTo("a\"b\\c\n\t")}, `{"name":"a\"b\\c\n\t"}`},
		{"non-ASCII", contact.Changes{Name: contact.SetTo("Émilie 中")}, `{"name":"Émilie 中"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkBody(t, tc.changes, tc.want)
		})
	}
}

func TestMarshalJSONClearAndSet(t *testing.T) {
	changes := contact.Changes{ClearDynamicFields: true, DynamicFields: []contact.DynamicField{dynamic("a", `1`)}}

	body, err := changes.MarshalJSON()
	if err == nil {
		t.Fatalf("MarshalJSON returned %s for an update that clears and sets dynamic fields, want an error", body)
	}
	if !strings.Contains(err.Error(), "Parts") {
		t.Errorf("MarshalJSON error %q does not point to Parts", err)
	}

	if body, err := json.Marshal(changes); err == nil {
		t.Errorf("json.Marshal returned %s, want the MarshalJSON error", body)
	}
}

// checkBody checks the PUT body of an update and that the body decodes
// back to an update that encodes the same.
func checkBody(t *testing.T, changes contact.Changes, want string) {
	t.Helper()

	body, err := changes.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	if string(body) != want {
		t.Errorf("MarshalJSON = %s, want %s", body, want)
	}

	decoded, err := contact.DecodeChanges(body)
	if err != nil {
		t.Fatalf("DecodeChanges(%s): %v", body, err)
	}
	again, err := decoded.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON of the decoded body: %v", err)
	}
	if string(again) != string(body) {
		t.Errorf("body %s decodes and encodes again as %s", body, again)
	}
}
