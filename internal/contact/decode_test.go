package contact_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/contact-sync/contact-sync/internal/contact"
)

const (
	testContactID = "0f8fad5b-d9cb-469f-a165-70867728950e"
	servicePoint1 = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	servicePoint2 = "16fd2706-8baf-433b-82eb-8c7fada847da"
	entityID      = "9b2f3c1e-5d4a-4e6f-8a7b-1c2d3e4f5a6b"

	// Distinctive personal data: no error message may contain them.
	probeEmail       = "leak-probe-3141@example.org"
	probePhone       = "+49 170 5550 3141"
	probePhoneNumber = "4917055503141"
)

// probeChanges is a valid changes object carrying the probe email and phone.
const probeChanges = `{"email":"` + probeEmail + `","phone":"` + probePhone + `"}`

// eventWith returns an event body with the given changes object.
func eventWith(changes string) string {
	return `{"event_id":"evt-1","contact_id":"` + testContactID + `","occurred_at":"2025-03-04T05:06:07Z","changes":` + changes + `}`
}

// eventWithMember returns an event body whose changes carry the probe email
// and phone and one more member.
func eventWithMember(member string) string {
	return eventWith(`{"email":"` + probeEmail + `","phone":"` + probePhone + `",` + member + `}`)
}

type invalidEventCase struct {
	name string
	body string
	want string
}

// invalidEventCases lists bodies DecodeEvent must reject, each with a
// substring its error must contain. FuzzDecodeEvent seeds from them too.
func invalidEventCases() []invalidEventCase {
	return []invalidEventCase{
		// The body as a whole.
		{"invalid JSON", `{"event_id": "evt-1", `, "event is not valid JSON"},
		{"truncated changes", eventWith(`{"email":"` + probeEmail + `"`), "event is not valid JSON"},
		{"trailing data", eventWith(probeChanges) + ` x`, "event is not valid JSON"},
		{"JSON array", `[` + eventWith(probeChanges) + `]`, "event is an array, not a JSON object"},
		{"JSON string", `"` + probeEmail + `"`, "event is a string, not a JSON object"},
		{"JSON number", `42`, "event is a number, not a JSON object"},
		{"JSON null", `null`, "event is null, not a JSON object"},
		{"JSON boolean", `true`, "event is a boolean, not a JSON object"},
		{"empty body", ``, "body is empty"},
		{"whitespace body", " \t\r\n ", "body is empty"},
		{"invalid UTF-8 in a value", eventWith("{\"name\":\"Ad\xffa\",\"email\":\"" + probeEmail + "\"}"), "not valid UTF-8"},
		{"invalid UTF-8 in a key", eventWith("{\"na\xc3me\":\"Ada\"}"), "not valid UTF-8"},

		// event_id.
		{"missing event_id", `{"contact_id":"` + testContactID + `","occurred_at":"2025-03-04T05:06:07Z","changes":` + probeChanges + `}`, "event_id is missing"},
		{"empty event_id", strings.Replace(eventWith(probeChanges), `"evt-1"`, `""`, 1), "event_id is missing"},
		{"null event_id", strings.Replace(eventWith(probeChanges), `"evt-1"`, `null`, 1), "event_id is missing"},
		{"numeric event_id", strings.Replace(eventWith(probeChanges), `"evt-1"`, `17`, 1), "event_id"},

		// contact_id.
		{"missing contact_id", `{"event_id":"evt-1","occurred_at":"2025-03-04T05:06:07Z","changes":` + probeChanges + `}`, "contact_id is missing"},
		{"numeric contact_id", strings.Replace(eventWith(probeChanges), `"`+testContactID+`"`, `12345`, 1), "contact_id"},
		{"object contact_id", strings.Replace(eventWith(probeChanges), `"`+testContactID+`"`, `{"id":1}`, 1), "contact_id"},
		{"empty contact_id", strings.Replace(eventWith(probeChanges), testContactID, ``, 1), "contact_id is empty"},
		{"path in contact_id", strings.Replace(eventWith(probeChanges), testContactID, `../x`, 1), `contact_id "../x" is not a UUID`},
		{"nil contact_id", strings.Replace(eventWith(probeChanges), testContactID, `00000000-0000-0000-0000-000000000000`, 1), "nil UUID"},

		// occurred_at.
		{"missing occurred_at", `{"event_id":"evt-1","contact_id":"` + testContactID + `","changes":` + probeChanges + `}`, "occurred_at is missing"},
		{"occurred_at without zone", strings.Replace(eventWith(probeChanges), `2025-03-04T05:06:07Z`, `2025-03-04T05:06:07`, 1), "is not an RFC 3339 time"},
		{"occurred_at with a space", strings.Replace(eventWith(probeChanges), `2025-03-04T05:06:07Z`, `2025-03-04 05:06:07Z`, 1), "is not an RFC 3339 time"},
		{"occurred_at as a date", strings.Replace(eventWith(probeChanges), `2025-03-04T05:06:07Z`, `2025-03-04`, 1), "is not an RFC 3339 time"},
		{"occurred_at in words", strings.Replace(eventWith(probeChanges), `2025-03-04T05:06:07Z`, `yesterday`, 1), "is not an RFC 3339 time"},
		{"occurred_at as a number", strings.Replace(eventWith(probeChanges), `"2025-03-04T05:06:07Z"`, `1741064767`, 1), "occurred_at"},

		// changes as a whole.
		{"missing changes", `{"event_id":"evt-1","contact_id":"` + testContactID + `","occurred_at":"2025-03-04T05:06:07Z"}`, "changes is missing"},
		{"null changes", eventWith(`null`), "changes is null, not a JSON object"},
		{"array changes", eventWith(`[` + probeChanges + `]`), "changes is an array, not a JSON object"},
		{"string changes", eventWith(`"` + probeEmail + `"`), "changes is a string, not a JSON object"},
		{"number changes", eventWith(`0`), "changes is a number, not a JSON object"},

		// One member of changes with the wrong type or value.
		{"email as number", eventWith(`{"email":` + probePhoneNumber + `}`), "email must be a string or null, got a number"},
		{"phone as number", eventWith(`{"email":"` + probeEmail + `","phone":` + probePhoneNumber + `}`), "phone must be a string or null, got a number"},
		{"surname as object", eventWithMember(`"name":"Ada","surname":{"last":"Lovelace"}`), "surname must be a string or null, got an object"},
		{"name as array", eventWithMember(`"name":["Ada"]`), "name must be a string or null, got an array"},
		{"name as boolean", eventWithMember(`"name":false`), "name must be a string or null, got a boolean"},
		{"has_customer_portal as string", eventWithMember(`"has_customer_portal":"yes"`), "has_customer_portal must be a boolean or null, got a string"},
		{"has_customer_portal as number", eventWithMember(`"has_customer_portal":1`), "has_customer_portal must be a boolean or null, got a number"},
		{"service_point_id_list with a non-UUID", eventWithMember(`"service_point_id_list":["` + servicePoint1 + `","SP-17"]`), `service_point_id_list[1] "SP-17" is not a UUID`},
		{"service_point_id_list with the nil UUID", eventWithMember(`"service_point_id_list":["00000000-0000-0000-0000-000000000000"]`), "service_point_id_list[0]"},
		{"service_point_id_list with a number", eventWithMember(`"service_point_id_list":[1]`), "service_point_id_list must be an array of UUID strings or null, got an array"},
		{"service_point_id_list as string", eventWithMember(`"service_point_id_list":"` + servicePoint1 + `"`), "service_point_id_list must be an array of UUID strings or null, got a string"},
		{"entity_id not a UUID", eventWithMember(`"entity_id":"ENT-1"`), `entity_id "ENT-1" is not a UUID`},
		{"entity_id as number", eventWithMember(`"entity_id":7`), "entity_id must be a string or null, got a number"},
		{"dynamic field without key", eventWithMember(`"dynamic_field_list":[{"value":1}]`), "dynamic_field_list[0] has no key"},
		{"dynamic field with empty key", eventWithMember(`"dynamic_field_list":[{"key":"","value":1}]`), "dynamic_field_list[0] has an empty key"},
		{"dynamic field with numeric key", eventWithMember(`"dynamic_field_list":[{"key":7,"value":1}]`), "dynamic_field_list[0].key must be a string"},
		{"dynamic field with extra member", eventWithMember(`"dynamic_field_list":[{"key":"k","value":1,"label":"x"}]`), `dynamic_field_list[0] has unknown member "label"`},
		{"dynamic field not an object", eventWithMember(`"dynamic_field_list":["k"]`), "dynamic_field_list[0] is a string, not an object"},
		{"second dynamic field bad", eventWithMember(`"dynamic_field_list":[{"key":"a","value":1},42]`), "dynamic_field_list[1] is a number, not an object"},
		{"dynamic_field_list as object", eventWithMember(`"dynamic_field_list":{"key":"k","value":1}`), "dynamic_field_list must be an array"},
		{"unknown field", eventWithMember(`"mobile":"` + probePhone + `"`), `changes has unknown fields "mobile"`},
		{"two unknown fields", eventWithMember(`"mobile":"x","Email":"` + probeEmail + `"`), `unknown fields "Email", "mobile"`},
		{"field name in another case", eventWithMember(`"Name":"Ada"`), `unknown fields "Name"`},
	}
}

func TestDecodeEventRejects(t *testing.T) {
	for _, tc := range invalidEventCases() {
		t.Run(tc.name, func(t *testing.T) {
			event, err := contact.DecodeEvent([]byte(tc.body))
			if err == nil {
				t.Fatalf("DecodeEvent accepted %s as %+v", tc.body, event)
			}
			checkInvalidEventError(t, err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("DecodeEvent error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// checkInvalidEventError checks what every decoding error must satisfy.
func checkInvalidEventError(t *testing.T, err error) {
	t.Helper()

	message := err.Error()
	if !errors.Is(err, contact.ErrInvalidEvent) {
		t.Errorf("error %q does not wrap ErrInvalidEvent", shorten(message))
	}
	if len(message) > maxErrorLength {
		t.Errorf("error is %d bytes, want at most %d: %q", len(message), maxErrorLength, shorten(message))
	}
	for _, value := range []string{probeEmail, probePhone, probePhoneNumber} {
		if strings.Contains(message, value) {
			t.Errorf("error %q contains the personal data value %q", shorten(message), value)
		}
	}
}

func TestDecodeEventRejectsOversizedBody(t *testing.T) {
	body := eventWith(`{"name":"` + strings.Repeat("a", 1<<20) + `"}`)

	_, err := contact.DecodeEvent([]byte(body))
	if err == nil {
		t.Fatalf("DecodeEvent accepted a %d-byte body", len(body))
	}
	checkInvalidEventError(t, err)
	if !strings.Contains(err.Error(), "larger than the limit") {
		t.Errorf("error %q does not say the body is too large", err)
	}
	if len(err.Error()) > 200 {
		t.Errorf("error is %d bytes, want at most 200", len(err.Error()))
	}
}

func TestDecodeEventAcceptsMaxEventSize(t *testing.T) {
	prefix := eventWith(`{"name":"`)
	suffix := `"}}`
	padding := contact.MaxEventSize - len(prefix) - len(suffix)
	body := prefix + strings.Repeat("a", padding) + suffix
	if len(body) != contact.MaxEventSize {
		t.Fatalf("test body is %d bytes, want %d", len(body), contact.MaxEventSize)
	}

	if _, err := contact.DecodeEvent([]byte(body)); err != nil {
		t.Fatalf("DecodeEvent rejected a body of exactly MaxEventSize: %v", shorten(err.Error()))
	}

	_, err := contact.DecodeEvent([]byte(prefix + strings.Repeat("a", padding+1) + suffix))
	if !errors.Is(err, contact.ErrInvalidEvent) {
		t.Fatalf("DecodeEvent of MaxEventSize+1 bytes: error %v, want ErrInvalidEvent", err)
	}
}

// TestDecodeEventErrorStaysShort feeds values and member names of 100 KB,
// which fit in an event, to every path that names them in an error.
func TestDecodeEventErrorStaysShort(t *testing.T) {
	long := strings.Repeat("x", 100<<10)
	var manyUnknown strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&manyUnknown, `"field%d":1,`, i)
	}

	cases := []struct {
		name string
		body string
	}{
		{"long contact_id", strings.Replace(eventWith(probeChanges), testContactID, long, 1)},
		{"long occurred_at", strings.Replace(eventWith(probeChanges), `2025-03-04T05:06:07Z`, long, 1)},
		{"long entity_id", eventWithMember(`"entity_id":"` + long + `"`)},
		{"long service point", eventWithMember(`"service_point_id_list":["` + long + `"]`)},
		{"long unknown field name", eventWithMember(`"` + long + `":1`)},
		{"many unknown fields", eventWith(`{` + manyUnknown.String() + `"name":"Ada"}`)},
		{"long dynamic member name", eventWithMember(`"dynamic_field_list":[{"key":"k","` + long + `":1}]`)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := contact.DecodeEvent([]byte(tc.body))
			if err == nil {
				t.Fatalf("DecodeEvent accepted the body")
			}
			checkInvalidEventError(t, err)
		})
	}
}

// TestDecodeEventDynamicKeyTypeError checks that the error for a key that
// is not a string does not offer null, which a key may not be.
func TestDecodeEventDynamicKeyTypeError(t *testing.T) {
	for _, key := range []string{`null`, `7`, `["k"]`} {
		body := eventWithMember(`"dynamic_field_list":[{"key":` + key + `,"value":1}]`)

		_, err := contact.DecodeEvent([]byte(body))
		if err == nil {
			t.Fatalf("DecodeEvent accepted the key %s", key)
		}
		checkInvalidEventError(t, err)
		if !strings.Contains(err.Error(), "dynamic_field_list[0].key must be a string") {
			t.Errorf("key %s: error %q does not say the key must be a string", key, err)
		}
		if strings.Contains(err.Error(), "or null") {
			t.Errorf("key %s: error %q offers null, but a null key is rejected", key, err)
		}
	}
}

func TestDecodeEventValid(t *testing.T) {
	body := `{
		"event_id": "crm-42:7",
		"contact_id": "0F8FAD5B-D9CB-469F-A165-70867728950E",
		"occurred_at": "2025-03-04T05:06:07.123456789+02:00",
		"source": "crm",
		"changes": {
			"name": "Ada <&> Lovelace",
			"surname": "",
			"entity_id": "9B2F3C1E-5D4A-4E6F-8A7B-1C2D3E4F5A6B",
			"email": "ada@example.org",
			"phone": "+44 20 7946 0000",
			"has_customer_portal": false,
			"service_point_id_list": ["7C9E6679-7425-40DE-944B-E07FC1F90AE7", "` + servicePoint2 + `"],
			"dynamic_field_list": [
				{"key": "tier", "value": { "level" : [1, 2] }},
				{"key": "note"},
				{"key": "flag", "value": null},
				{"key": "tier", "value": "gold"}
			]
		}
	}`

	event, err := contact.DecodeEvent([]byte(body))
	if err != nil {
		t.Fatalf("DecodeEvent: %v", err)
	}

	if event.EventID != "crm-42:7" {
		t.Errorf("EventID = %q, want crm-42:7", event.EventID)
	}
	if event.ContactID != testContactID {
		t.Errorf("ContactID = %q, want the lower-cased %q", event.ContactID, testContactID)
	}
	wantTime := time.Date(2025, 3, 4, 3, 6, 7, 123456789, time.UTC)
	if !event.OccurredAt.Equal(wantTime) {
		t.Errorf("OccurredAt = %v, want %v", event.OccurredAt, wantTime)
	}

	changes := event.Changes
	checkField(t, "Name", changes.Name, contact.SetTo("Ada <&> Lovelace"))
	checkField(t, "Surname", changes.Surname, contact.SetTo(""))
	checkField(t, "EntityID", changes.EntityID, contact.SetTo(entityID))
	checkField(t, "Email", changes.Email, contact.SetTo("ada@example.org"))
	checkField(t, "Phone", changes.Phone, contact.SetTo("+44 20 7946 0000"))
	checkField(t, "HasCustomerPortal", changes.HasCustomerPortal, contact.SetTo(false))
	checkListField(t, changes.ServicePointIDs, contact.SetTo([]string{servicePoint1, servicePoint2}))
	if changes.ClearDynamicFields {
		t.Errorf("ClearDynamicFields = true, want false")
	}
	wantDynamic := []contact.DynamicField{
		{Key: "tier", Value: json.RawMessage(`"gold"`)},
		{Key: "note", Value: json.RawMessage(`null`)},
		{Key: "flag", Value: json.RawMessage(`null`)},
	}
	checkDynamicFields(t, changes.DynamicFields, wantDynamic)
}

func TestDecodeEventCompactsDynamicValues(t *testing.T) {
	body := eventWith(`{"dynamic_field_list":[{"key":"k","value": { "a" : [ 1 , "x y" ] } }]}`)

	event, err := contact.DecodeEvent([]byte(body))
	if err != nil {
		t.Fatalf("DecodeEvent: %v", err)
	}
	checkDynamicFields(t, event.Changes.DynamicFields, []contact.DynamicField{{Key: "k", Value: json.RawMessage(`{"a":[1,"x y"]}`)}})
}

func TestDecodeEventEmptyChanges(t *testing.T) {
	for _, changes := range []string{`{}`, `{"dynamic_field_list":[]}`, `{"service_point_id_list":[]}`} {
		event, err := contact.DecodeEvent([]byte(eventWith(changes)))
		if err != nil {
			t.Fatalf("DecodeEvent with changes %s: %v", changes, err)
		}

		wantEmpty := changes != `{"service_point_id_list":[]}`
		if got := event.Changes.IsEmpty(); got != wantEmpty {
			t.Errorf("changes %s: IsEmpty = %v, want %v", changes, got, wantEmpty)
		}
	}
}

func TestDecodeChangesNullClearsEveryField(t *testing.T) {
	body := `{"name":null,"surname":null,"entity_id":null,"email":null,"phone":null,` +
		`"has_customer_portal":null,"service_point_id_list":null,"dynamic_field_list":null}`

	changes, err := contact.DecodeChanges([]byte(body))
	if err != nil {
		t.Fatalf("DecodeChanges: %v", err)
	}

	checkField(t, "Name", changes.Name, contact.Cleared[string]())
	checkField(t, "Surname", changes.Surname, contact.Cleared[string]())
	checkField(t, "EntityID", changes.EntityID, contact.Cleared[string]())
	checkField(t, "Email", changes.Email, contact.Cleared[string]())
	checkField(t, "Phone", changes.Phone, contact.Cleared[string]())
	checkField(t, "HasCustomerPortal", changes.HasCustomerPortal, contact.Cleared[bool]())
	checkListField(t, changes.ServicePointIDs, contact.Cleared[[]string]())
	if !changes.ClearDynamicFields {
		t.Errorf("ClearDynamicFields = false, want true")
	}
	if len(changes.DynamicFields) != 0 {
		t.Errorf("DynamicFields = %v, want none", changes.DynamicFields)
	}

	state := populatedState(t)
	state.Apply(&changes)
	if want := (contact.State{
		Name:              contact.Cleared[string](),
		Surname:           contact.Cleared[string](),
		EntityID:          contact.Cleared[string](),
		Email:             contact.Cleared[string](),
		Phone:             contact.Cleared[string](),
		HasCustomerPortal: contact.Cleared[bool](),
		ServicePointIDs:   contact.Cleared[[]string](),
	}); !state.Equal(&want) {
		t.Errorf("state after clearing every field = %+v, want every field cleared", state)
	}
}

func TestDecodeChangesRejectsNonObject(t *testing.T) {
	cases := []struct {
		body string
		want string
	}{
		{``, "changes is not valid JSON"},
		{`[]`, "changes is an array, not a JSON object"},
		{`null`, "changes is null, not a JSON object"},
		{`{"name":`, "changes is not valid JSON"},
	}
	for _, tc := range cases {
		_, err := contact.DecodeChanges([]byte(tc.body))
		if err == nil {
			t.Errorf("DecodeChanges accepted %q", tc.body)
			continue
		}
		checkInvalidEventError(t, err)
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeChanges(%q) error %q does not contain %q", tc.body, err, tc.want)
		}
	}
}

// FuzzDecodeEvent checks that DecodeEvent never panics, that every error
// wraps ErrInvalidEvent and stays short, and that an accepted update
// survives the trip through Parts, MarshalJSON and DecodeChanges with the
// same effect on a contact.
func FuzzDecodeEvent(f *testing.F) {
	for _, tc := range invalidEventCases() {
		f.Add([]byte(tc.body))
	}
	f.Add([]byte(eventWith(`{"name":"` + strings.Repeat("a", 1<<20) + `"}`)))
	for _, changes := range []string{
		`{}`,
		probeChanges,
		`{"name":"Ada <&> \u2028","surname":null,"entity_id":"` + entityID + `","has_customer_portal":true}`,
		`{"service_point_id_list":["` + strings.ToUpper(servicePoint1) + `","` + servicePoint2 + `"]}`,
		`{"service_point_id_list":[],"dynamic_field_list":[]}`,
		`{"dynamic_field_list":null,"phone":"\ud800"}`,
		`{"dynamic_field_list":[{"key":"a","value":{ "x" : [1, 2e3] }},{"key":"b"},{"key":"a","value":"\u003c"}]}`,
		`{"name":null,"surname":null,"entity_id":null,"email":null,"phone":null,"has_customer_portal":null,"service_point_id_list":null,"dynamic_field_list":null}`,
	} {
		f.Add([]byte(eventWith(changes)))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		event, err := contact.DecodeEvent(data)
		if err != nil {
			checkInvalidEventError(t, err)
			return
		}

		if event.EventID == "" {
			t.Errorf("accepted an event with an empty event_id")
		}
		if id, err := contact.ParseID(event.ContactID); err != nil || id != event.ContactID {
			t.Errorf("ContactID %q is not canonical", event.ContactID)
		}
		checkRoundTrip(t, &event.Changes)
	})
}

// checkRoundTrip checks that sending the Parts of changes as PUT bodies, as
// the API decodes them, has the effect of applying changes.
func checkRoundTrip(t *testing.T, changes *contact.Changes) {
	t.Helper()

	bases := map[string]contact.State{"empty contact": {}, "populated contact": populatedState(t)}
	for baseName, base := range bases {
		want := base.Clone()
		want.Apply(changes)

		got := base.Clone()
		for i, part := range changes.Parts() {
			body, err := part.MarshalJSON()
			if err != nil {
				t.Fatalf("part %d: MarshalJSON: %v", i, err)
			}
			decoded, err := contact.DecodeChanges(body)
			if err != nil {
				t.Fatalf("part %d: DecodeChanges(%s): %v", i, body, err)
			}
			again, err := decoded.MarshalJSON()
			if err != nil {
				t.Fatalf("part %d: MarshalJSON of the decoded body %s: %v", i, body, err)
			}
			if !bytes.Equal(again, body) {
				t.Errorf("part %d: body %s encodes again as %s", i, body, again)
			}
			got.Apply(&decoded)
		}

		if !got.Equal(&want) {
			t.Fatalf("%s: applying the PUT bodies gives %+v, applying the update gives %+v", baseName, got, want)
		}
	}
}

// populatedState returns a contact with every field set, including dynamic
// fields whose keys the tests also set and clear.
func populatedState(t *testing.T) contact.State {
	t.Helper()

	state, err := populatedOnce()
	if err != nil {
		t.Fatalf("DecodeChanges of the populated contact: %v", err)
	}
	return state.Clone()
}

// populatedOnce decodes the populated contact once, because the fuzz
// targets need it for every input.
var populatedOnce = sync.OnceValues(func() (contact.State, error) {
	changes, err := contact.DecodeChanges([]byte(`{
		"name": "Grace", "surname": "Hopper", "entity_id": "` + entityID + `",
		"email": "grace@example.org", "phone": "+1 202 555 0100", "has_customer_portal": true,
		"service_point_id_list": ["` + servicePoint1 + `"],
		"dynamic_field_list": [{"key": "a", "value": 0}, {"key": "k0", "value": "old"}, {"key": "tier", "value": "silver"}]
	}`))
	if err != nil {
		return contact.State{}, err
	}

	var state contact.State
	state.Apply(&changes)
	return state, nil
})

func checkField[T comparable](t *testing.T, name string, got, want contact.Field[T]) {
	t.Helper()

	if got != want {
		t.Errorf("%s = %+v, want %+v", name, got, want)
	}
}

func checkListField(t *testing.T, got, want contact.Field[[]string]) {
	t.Helper()

	if got.Set != want.Set || got.Null != want.Null || strings.Join(got.Value, ",") != strings.Join(want.Value, ",") {
		t.Errorf("ServicePointIDs = %+v, want %+v", got, want)
	}
}

func checkDynamicFields(t *testing.T, got, want []contact.DynamicField) {
	t.Helper()

	if len(got) != len(want) {
		t.Fatalf("DynamicFields = %s, want %s", formatDynamicFields(got), formatDynamicFields(want))
	}
	for i := range want {
		if got[i].Key != want[i].Key || !bytes.Equal(got[i].Value, want[i].Value) {
			t.Errorf("DynamicFields = %s, want %s", formatDynamicFields(got), formatDynamicFields(want))
			return
		}
	}
}

func formatDynamicFields(fields []contact.DynamicField) string {
	parts := make([]string, len(fields))
	for i, field := range fields {
		parts[i] = field.Key + "=" + string(field.Value)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
