package importer

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/contact-sync/contact-sync/internal/contact"
)

// uuid5 computes a version 5 UUID as RFC 9562 section 5.5 defines it, without
// the uuid package, to check the documented formula independently.
func uuid5(t *testing.T, namespace, name string) string {
	t.Helper()

	namespaceBytes, err := hex.DecodeString(strings.ReplaceAll(namespace, "-", ""))
	if err != nil || len(namespaceBytes) != 16 {
		t.Fatalf("namespace %q is not a UUID", namespace)
	}
	sum := sha1.Sum(append(namespaceBytes, name...))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x50 // version 5
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func TestContactIDFormula(t *testing.T) {
	mapping := Mapping{IDColumn: "id"}

	// Computed with Python: uuid.uuid5(uuid.UUID(DefaultNamespace), "2").
	const pythonID2 = "ad419945-d25e-55a5-9a8d-e4fe3e3f8387"
	if got := uuid5(t, DefaultNamespace, "2"); got != pythonID2 {
		t.Fatalf("test's uuid5 of id 2 = %s, Python gives %s", got, pythonID2)
	}

	for _, crmID := range []string{"2", " 2 ", "002"} {
		got, err := mapping.ContactID(crmID)
		if err != nil {
			t.Fatalf("ContactID(%q): %v", crmID, err)
		}
		if got != pythonID2 {
			t.Errorf("ContactID(%q) = %s, want %s", crmID, got, pythonID2)
		}
	}

	zero, err := mapping.ContactID("000")
	if err != nil {
		t.Fatalf("ContactID(000): %v", err)
	}
	if want := uuid5(t, DefaultNamespace, "0"); zero != want {
		t.Errorf("ContactID(000) = %s, want uuid5 of \"0\" %s", zero, want)
	}
}

func TestContactIDCustomNamespace(t *testing.T) {
	const namespace = "6ba7b811-9dad-11d1-80b4-00c04fd430c8" // the RFC's URL namespace
	mapping := Mapping{IDColumn: "id", Namespace: namespace}

	got, err := mapping.ContactID("42")
	if err != nil {
		t.Fatalf("ContactID(42): %v", err)
	}
	if want := uuid5(t, namespace, "42"); got != want {
		t.Errorf("ContactID(42) in namespace %s = %s, want %s", namespace, got, want)
	}
}

func TestContactIDInvalid(t *testing.T) {
	mapping := Mapping{IDColumn: "id"}
	for _, crmID := range []string{"", "  ", "-1", "4.2", "42.0", "1e3", "abc", "0x10"} {
		if got, err := mapping.ContactID(crmID); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("ContactID(%q) = %q, %v; want an error wrapping ErrInvalidRecord", crmID, got, err)
		}
	}

	bad := Mapping{IDColumn: "id", Namespace: "not-a-uuid"}
	if _, err := bad.ContactID("1"); !errors.Is(err, ErrInvalidMapping) {
		t.Errorf("ContactID with namespace %q: error %v, want ErrInvalidMapping", bad.Namespace, err)
	}
}

func TestContactIDIsUUID(t *testing.T) {
	mapping := Mapping{IDColumn: "id", IDIsUUID: true}

	got, err := mapping.ContactID("8F1B8C6E-2D4A-4E8B-9C3F-1A2B3C4D5E6F")
	if err != nil {
		t.Fatalf("ContactID of an upper-case UUID: %v", err)
	}
	if want := "8f1b8c6e-2d4a-4e8b-9c3f-1a2b3c4d5e6f"; got != want {
		t.Errorf("ContactID = %s, want %s", got, want)
	}

	for _, crmID := range []string{"42", "00000000-0000-0000-0000-000000000000", "{8f1b8c6e-2d4a-4e8b-9c3f-1a2b3c4d5e6f}"} {
		if _, err := mapping.ContactID(crmID); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("ContactID(%q) with id_is_uuid: error %v, want ErrInvalidRecord", crmID, err)
		}
	}
}

func TestEventIDFormula(t *testing.T) {
	const batchID = "f39f473b68a8bdb0b751130a991b5e1c9d7f9ebb67cb48bd4bc990362e253835"

	// Computed with Python: uuid.uuid5(uuid.UUID(EventNamespace), batch_id + "/2").
	const python = "64ba6be9-ef97-5a7f-b713-33eca6f41951"
	if got := EventID(batchID, 2); got != python {
		t.Errorf("EventID(batch, 2) = %s, want %s", got, python)
	}
	if got, want := EventID(batchID, 3), uuid5(t, EventNamespace, batchID+"/3"); got != want {
		t.Errorf("EventID(batch, 3) = %s, want %s", got, want)
	}
	if EventID(batchID, 2) == EventID("other", 2) {
		t.Error("EventID is the same for two batch ids")
	}
}

func TestLoadMappingExport(t *testing.T) {
	mapping, err := LoadMapping(exportMappingPath)
	if err != nil {
		t.Fatalf("LoadMapping: %v", err)
	}

	if mapping.IDColumn != "id" {
		t.Errorf("id_column = %q, want id", mapping.IDColumn)
	}
	if got := strings.Join(mapping.Fields["email"], ","); got != "email_work,email_home,email_other" {
		t.Errorf("fields.email = %s", got)
	}
	if got := strings.Join(mapping.Fields["name"], ","); got != "first_name" {
		t.Errorf("fields.name = %s, want first_name from a plain string", got)
	}
	if got := mapping.Dynamic["crm_id"]; got != (DynamicColumn{Column: "id", Type: TypeInteger}) {
		t.Errorf("dynamic.crm_id = %+v", got)
	}
	if got := mapping.Dynamic["company"]; got != (DynamicColumn{Column: "company_name"}) {
		t.Errorf("dynamic.company = %+v", got)
	}
	if mapping.PhoneFormat != PhoneE164 {
		t.Errorf("phone_format = %q, want e164", mapping.PhoneFormat)
	}
}

func TestParseMappingErrors(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		message string // a part of the error message
	}{
		{"unknown key", "id_column: id\nphone_fromat: e164\n", `"phone_fromat"`},
		{"unknown nested key", "id_column: id\ndynamic:\n  crm_id: {column: id, kind: integer}\n", `"kind"`},
		{"unknown API field", "id_column: id\nfields:\n  mobile: [phone_home]\n", `unknown API field "mobile"`},
		{"unknown dynamic type", "id_column: id\ndynamic:\n  crm_id: {column: id, type: int}\n", `unknown type "int"`},
		{"missing id column", "fields:\n  name: first_name\n", "id_column is missing"},
		{"field without columns", "id_column: id\nfields:\n  name: []\n", "fields.name has no columns"},
		{"column not a string", "id_column: id\nfields:\n  name: yes\n", "expected a column name"},
		{"bad blank", "id_column: id\nblank: erase\n", `blank "erase"`},
		{"bad phone format", "id_column: id\nphone_format: e123\n", `phone_format "e123"`},
		{"bad namespace", "id_column: id\nnamespace: 42\n", `namespace "42" is not a UUID`},
		{"duplicate key", "id_column: id\nid_column: crm\n", "id_column"},
		{"not yaml", "id_column: [\n", "invalid mapping"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			_, err := ParseMapping([]byte(test.yaml))
			if !errors.Is(err, ErrInvalidMapping) {
				t.Fatalf("ParseMapping: error %v, want ErrInvalidMapping", err)
			}
			if !strings.Contains(err.Error(), test.message) {
				t.Errorf("error %q does not contain %q", err, test.message)
			}
		})
	}
}

func TestLoadMappingNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("id_column: id\nextra: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	_, err := LoadMapping(path)
	if !errors.Is(err, ErrInvalidMapping) {
		t.Fatalf("LoadMapping: error %v, want ErrInvalidMapping", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"extra"`) {
		t.Errorf("error %q does not name the file and the key", err)
	}

	if _, err := LoadMapping(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadMapping of a missing file: error %v, want os.ErrNotExist", err)
	}
}

func TestMappingMissingColumn(t *testing.T) {
	mapping := Mapping{IDColumn: "id", Fields: map[string]Columns{"phone": {"phone_work", "phone_mobile"}}}
	header := []string{"id", "phone_work", "phone_home"}

	_, _, _, err := mapping.EventFromRecord(header, []string{"1", "", ""}, 2, "batch")
	if !errors.Is(err, ErrMissingColumn) {
		t.Fatalf("EventFromRecord: error %v, want ErrMissingColumn", err)
	}
	for _, part := range []string{`"phone_mobile"`, "fields.phone", "id, phone_work, phone_home"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not contain %q", err, part)
		}
	}
}

func TestMappingDuplicateHeaderColumn(t *testing.T) {
	mapping := Mapping{IDColumn: "id", Fields: map[string]Columns{"name": {"name"}}}

	_, _, _, err := mapping.EventFromRecord([]string{"id", "name", "name"}, []string{"1", "a", "b"}, 2, "batch")
	if !errors.Is(err, ErrInvalidMapping) || !strings.Contains(err.Error(), "more than once") {
		t.Errorf("EventFromRecord with a duplicate mapped column: error %v, want ErrInvalidMapping naming it", err)
	}

	// An unused duplicate column is no error.
	if _, _, _, err := mapping.EventFromRecord([]string{"id", "name", "x", "x"}, []string{"1", "a", "b", "c"}, 2, "batch"); err != nil {
		t.Errorf("EventFromRecord with an unused duplicate column: %v", err)
	}
}

func TestMappingSetFlags(t *testing.T) {
	mapping, err := LoadMapping(exportMappingPath)
	if err != nil {
		t.Fatalf("LoadMapping: %v", err)
	}
	original := strings.Join(mapping.Fields["email"], ",")

	changed := mapping
	if err := changed.SetField("email = email_home , email_work"); err != nil {
		t.Fatalf("SetField: %v", err)
	}
	if err := changed.SetDynamic("since=first_seen"); err != nil {
		t.Fatalf("SetDynamic: %v", err)
	}
	if err := changed.SetDynamic("crm_id=id:string"); err != nil {
		t.Fatalf("SetDynamic with a type: %v", err)
	}
	if err := changed.SetDynamic("ratio=a:b"); err != nil {
		t.Fatalf("SetDynamic with a colon in the column: %v", err)
	}

	if got := strings.Join(changed.Fields["email"], ","); got != "email_home,email_work" {
		t.Errorf("fields.email after SetField = %s", got)
	}
	if got := changed.Dynamic["since"]; got != (DynamicColumn{Column: "first_seen"}) {
		t.Errorf("dynamic.since = %+v", got)
	}
	if got := changed.Dynamic["crm_id"]; got != (DynamicColumn{Column: "id", Type: TypeString}) {
		t.Errorf("dynamic.crm_id = %+v", got)
	}
	if got := changed.Dynamic["ratio"]; got != (DynamicColumn{Column: "a:b"}) {
		t.Errorf("dynamic.ratio = %+v", got)
	}
	if got := strings.Join(mapping.Fields["email"], ","); got != original {
		t.Errorf("SetField on a copy changed the original's fields.email to %s", got)
	}
	if _, found := mapping.Dynamic["since"]; found {
		t.Error("SetDynamic on a copy changed the original's dynamic fields")
	}

	for _, spec := range []string{"email", "=a", "mobile=a", "email=", "email=a,,b"} {
		if err := changed.SetField(spec); !errors.Is(err, ErrInvalidMapping) {
			t.Errorf("SetField(%q): error %v, want ErrInvalidMapping", spec, err)
		}
	}
	for _, spec := range []string{"key", "=a", "key=", "key=:integer"} {
		if err := changed.SetDynamic(spec); !errors.Is(err, ErrInvalidMapping) {
			t.Errorf("SetDynamic(%q): error %v, want ErrInvalidMapping", spec, err)
		}
	}
}

func TestEventFromRecordTypes(t *testing.T) {
	mapping := Mapping{
		IDColumn:         "id",
		OccurredAtColumn: "at",
		Fields: map[string]Columns{
			"has_customer_portal":   {"portal"},
			"entity_id":             {"entity"},
			"service_point_id_list": {"points"},
		},
		Dynamic: map[string]DynamicColumn{
			"count":  {Column: "count", Type: TypeInteger},
			"active": {Column: "active", Type: TypeBoolean},
			"tags":   {Column: "tags", Type: TypeList},
			"note":   {Column: "note"},
		},
	}
	header := []string{"id", "at", "portal", "entity", "points", "count", "active", "tags", "note"}
	record := []string{"7", "2024-08-14 11:39:02.3+00:00", " Yes ", "8F1B8C6E-2D4A-4E8B-9C3F-1A2B3C4D5E6F",
		"8f1b8c6e-2d4a-4e8b-9c3f-1a2b3c4d5e6f, 9f1b8c6e-2d4a-4e8b-9c3f-1a2b3c4d5e6f", "007", "NO", " a, ,b ,", `Smith & "Sons"`}

	eventID, contactID, body, err := mapping.EventFromRecord(header, record, 5, "batch")
	if err != nil {
		t.Fatalf("EventFromRecord: %v", err)
	}

	event, err := contact.DecodeEvent(body)
	if err != nil {
		t.Fatalf("DecodeEvent(%s): %v", body, err)
	}
	if event.EventID != eventID || eventID != EventID("batch", 5) {
		t.Errorf("event_id = %s, returned %s, want EventID(batch, 5) = %s", event.EventID, eventID, EventID("batch", 5))
	}
	if event.ContactID != contactID {
		t.Errorf("contact_id = %s, returned %s", event.ContactID, contactID)
	}
	want := `{"event_id":"` + eventID + `","contact_id":"` + contactID + `","occurred_at":"2024-08-14T11:39:02.3Z","changes":` +
		`{"entity_id":"8f1b8c6e-2d4a-4e8b-9c3f-1a2b3c4d5e6f","has_customer_portal":true,` +
		`"service_point_id_list":["8f1b8c6e-2d4a-4e8b-9c3f-1a2b3c4d5e6f","9f1b8c6e-2d4a-4e8b-9c3f-1a2b3c4d5e6f"],` +
		`"dynamic_field_list":[{"key":"active","value":false},{"key":"count","value":7},{"key":"note","value":"Smith & \"Sons\""},{"key":"tags","value":["a","b"]}]}}`
	if string(body) != want {
		t.Errorf("body\n got %s\nwant %s", body, want)
	}
}

func TestEventFromRecordBlank(t *testing.T) {
	header := []string{"id", "name", "email", "count", "tags"}
	record := []string{"7", " ", "", "", ""}
	mapping := Mapping{
		IDColumn: "id",
		Fields:   map[string]Columns{"name": {"name"}, "email": {"email", "name"}},
		Dynamic:  map[string]DynamicColumn{"count": {Column: "count", Type: TypeInteger}, "tags": {Column: "tags", Type: TypeList}},
	}

	_, _, omitted, err := mapping.EventFromRecord(header, record, 2, "batch")
	if err != nil {
		t.Fatalf("EventFromRecord with blank: omit: %v", err)
	}
	if !strings.Contains(string(omitted), `"changes":{"dynamic_field_list":[{"key":"tags","value":[]}]}`) {
		t.Errorf("blank: omit body %s, want only tags: []", omitted)
	}

	mapping.Blank = BlankClear
	_, _, cleared, err := mapping.EventFromRecord(header, record, 2, "batch")
	if err != nil {
		t.Fatalf("EventFromRecord with blank: clear: %v", err)
	}
	want := `"changes":{"name":null,"email":null,"dynamic_field_list":[{"key":"count","value":null},{"key":"tags","value":[]}]}`
	if !strings.Contains(string(cleared), want) {
		t.Errorf("blank: clear body %s, want it to contain %s", cleared, want)
	}
}

func TestEventFromRecordErrors(t *testing.T) {
	header := []string{"id", "at", "phone", "portal", "count", "entity", "email"}
	valid := []string{"7", "2024-08-14T11:39:02.318+00:00", "415.293.3313", "true", "3", "8f1b8c6e-2d4a-4e8b-9c3f-1a2b3c4d5e6f", "x@example.com"}
	mapping := Mapping{
		IDColumn:         "id",
		OccurredAtColumn: "at",
		PhoneFormat:      PhoneE164,
		Fields: map[string]Columns{
			"phone":               {"phone"},
			"has_customer_portal": {"portal"},
			"entity_id":           {"entity"},
			"email":               {"email"},
		},
		Dynamic: map[string]DynamicColumn{"count": {Column: "count", Type: TypeInteger}},
	}
	if _, _, _, err := mapping.EventFromRecord(header, valid, 9, "batch"); err != nil {
		t.Fatalf("EventFromRecord of the valid record: %v", err)
	}

	tests := []struct {
		column string
		value  string
	}{
		{"id", "abc"},
		{"id", ""},
		{"at", "2024-08-15T11:39:02"}, // no offset
		{"at", "yesterday"},
		{"phone", "555-0100"},
		{"portal", "maybe"},
		{"count", "3.5"},
		{"count", "99999999999999999999"},
		{"entity", "not-a-uuid"},
	}
	for _, test := range tests {
		record := append([]string(nil), valid...)
		for i, name := range header {
			if name == test.column {
				record[i] = test.value
			}
		}

		_, _, _, err := mapping.EventFromRecord(header, record, 9, "batch")
		var recordErr *RecordError
		if !errors.As(err, &recordErr) {
			t.Errorf("%s = %q: error %v, want a *RecordError", test.column, test.value, err)
			continue
		}
		if recordErr.Number != 9 || recordErr.Column != test.column || !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%s = %q: error %+v, want row 9, column %s, ErrInvalidRecord", test.column, test.value, recordErr, test.column)
		}
		if !strings.HasPrefix(err.Error(), "csv row 9, column "+test.column+": ") {
			t.Errorf("%s = %q: message %q does not start with the row and column", test.column, test.value, err)
		}
		if len(test.value) > 3 && strings.Contains(err.Error(), test.value) {
			t.Errorf("%s = %q: message %q contains the value", test.column, test.value, err)
		}
	}

	_, _, _, err := mapping.EventFromRecord(header, valid[:3], 9, "batch")
	if !errors.Is(err, ErrInvalidRecord) || !strings.Contains(err.Error(), "has 3 fields, the header has 7") {
		t.Errorf("short record: error %v, want the field counts", err)
	}
}
