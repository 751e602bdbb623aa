package importer

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/contact-sync/contact-sync/internal/contact"
)

const (
	exportCSVPath     = "../../testdata/atomic-crm/contacts.csv"
	exportMappingPath = "../../testdata/atomic-crm/mapping.yaml"
	exportSHA256      = "f39f473b68a8bdb0b751130a991b5e1c9d7f9ebb67cb48bd4bc990362e253835"
	exportRows        = 500
)

// readExport returns the header and rows of the Atomic CRM export.
func readExport(t *testing.T) (header []string, rows [][]string) {
	t.Helper()

	file, err := os.Open(exportCSVPath)
	if err != nil {
		t.Fatalf("open export: %v", err)
	}
	defer file.Close()

	records, err := csv.NewReader(file).ReadAll()
	if err != nil {
		t.Fatalf("read export: %v", err)
	}
	if len(records) != exportRows+1 {
		t.Fatalf("export has %d records, want a header and %d rows", len(records), exportRows)
	}
	return records[0], records[1:]
}

// exportEvent is one event of the export with the row it came from.
type exportEvent struct {
	row     map[string]string
	event   contact.Event
	dynamic map[string]json.RawMessage
}

// mapExport maps every row of the export with the testdata mapping and
// decodes each event as the worker would.
func mapExport(t *testing.T) []exportEvent {
	t.Helper()

	mapping, err := LoadMapping(exportMappingPath)
	if err != nil {
		t.Fatalf("LoadMapping: %v", err)
	}
	header, rows := readExport(t)

	events := make([]exportEvent, 0, len(rows))
	for i, record := range rows {
		rowNumber := i + 2
		eventID, contactID, body, err := mapping.EventFromRecord(header, record, rowNumber, exportSHA256)
		if err != nil {
			t.Fatalf("row %d: %v", rowNumber, err)
		}

		event, err := contact.DecodeEvent(body)
		if err != nil {
			t.Fatalf("row %d: DecodeEvent: %v", rowNumber, err)
		}
		if event.EventID != eventID || event.ContactID != contactID {
			t.Fatalf("row %d: body has event_id %s and contact_id %s, EventFromRecord returned %s and %s",
				rowNumber, event.EventID, event.ContactID, eventID, contactID)
		}

		row := make(map[string]string, len(header))
		for j, name := range header {
			row[name] = record[j]
		}
		dynamic := make(map[string]json.RawMessage)
		for _, field := range event.Changes.DynamicFields {
			dynamic[field.Key] = field.Value
		}
		events = append(events, exportEvent{row: row, event: event, dynamic: dynamic})
	}
	return events
}

func TestExportEventsDecode(t *testing.T) {
	events := mapExport(t)
	if len(events) != exportRows {
		t.Fatalf("got %d events, want %d", len(events), exportRows)
	}

	eventIDs := make(map[string]bool)
	contactIDs := make(map[string]bool)
	for _, e := range events {
		eventIDs[e.event.EventID] = true
		contactIDs[e.event.ContactID] = true
	}
	if len(eventIDs) != exportRows {
		t.Errorf("got %d distinct event_ids, want %d", len(eventIDs), exportRows)
	}
	if len(contactIDs) != exportRows {
		t.Errorf("got %d distinct contact_ids, want %d (ids are unique)", len(contactIDs), exportRows)
	}
}

func TestExportEmailFromEmailOther(t *testing.T) {
	for _, e := range mapExport(t) {
		id := e.row["id"]
		email := e.event.Changes.Email
		if !email.Set || email.Null || email.Value == "" {
			t.Errorf("id %s: email is %+v, want set and non-empty", id, email)
			continue
		}
		if email.Value != e.row["email_other"] {
			t.Errorf("id %s: email is not the row's email_other", id)
		}
	}
}

func TestExportPhonesE164(t *testing.T) {
	pattern := regexp.MustCompile(`^\+1\d{10}(;ext=\d{3,5})?$`)
	withExtension := 0
	for _, e := range mapExport(t) {
		id := e.row["id"]
		phone := e.event.Changes.Phone
		if !phone.Set || phone.Null {
			t.Errorf("id %s: phone is %+v, want set (every row has a phone)", id, phone)
			continue
		}
		if !pattern.MatchString(phone.Value) {
			t.Errorf("id %s: phone %q does not match %s", id, phone.Value, pattern)
		}
		if strings.Contains(phone.Value, ";ext=") {
			withExtension++
		}

		// The first non-blank of phone_work, phone_home, phone_other wins.
		source := e.row["phone_work"]
		if source == "" {
			source = e.row["phone_home"]
		}
		if source == "" {
			source = e.row["phone_other"]
		}
		if want := exportPhoneE164(source); phone.Value != want {
			t.Errorf("id %s: phone %q, want %q from the first non-blank phone column", id, phone.Value, want)
		}
	}
	if withExtension == 0 {
		t.Error("no phone has an extension, but the export has hundreds")
	}
}

func TestExportSameNameDifferentContacts(t *testing.T) {
	var marlons []exportEvent
	for _, e := range mapExport(t) {
		if e.row["first_name"] == "Marlon" && e.row["last_name"] == "Schmidt" {
			marlons = append(marlons, e)
		}
	}

	var ids, contactIDs []string
	for _, e := range marlons {
		ids = append(ids, e.row["id"])
		contactIDs = append(contactIDs, e.event.ContactID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"150", "156", "180"}) {
		t.Fatalf("Marlon Schmidt rows have ids %v, want 150, 156, 180", ids)
	}
	slices.Sort(contactIDs)
	if len(slices.Compact(contactIDs)) != 3 {
		t.Errorf("the three Marlon Schmidt rows have contact_ids %v, want three different ones", contactIDs)
	}
}

func TestExportContactIDOfID2(t *testing.T) {
	want := uuid5(t, DefaultNamespace, "2")
	for _, e := range mapExport(t) {
		if e.row["id"] == "2" {
			if e.event.ContactID != want {
				t.Errorf("id 2 has contact_id %s, want uuid5(DefaultNamespace, \"2\") = %s", e.event.ContactID, want)
			}
			return
		}
	}
	t.Fatal("no row with id 2")
}

func TestExportOtherFields(t *testing.T) {
	for _, e := range mapExport(t) {
		id := e.row["id"]

		wantTime, err := time.Parse(time.RFC3339Nano, e.row["last_seen"])
		if err != nil {
			t.Fatalf("id %s: last_seen: %v", id, err)
		}
		if !e.event.OccurredAt.Equal(wantTime) {
			t.Errorf("id %s: occurred_at %v, want last_seen %v", id, e.event.OccurredAt, wantTime)
		}
		if e.event.Changes.Name.Value != e.row["first_name"] || e.event.Changes.Surname.Value != e.row["last_name"] {
			t.Errorf("id %s: name and surname are not first_name and last_name", id)
		}

		if got := string(e.dynamic["crm_id"]); got != id {
			t.Errorf("id %s: dynamic crm_id = %s, want the integer %s", id, got, id)
		}
		wantStatus, _ := json.Marshal(e.row["status"])
		if got := string(e.dynamic["status"]); got != string(wantStatus) {
			t.Errorf("id %s: dynamic status = %s, want %s", id, got, wantStatus)
		}
		wantCompany, _ := json.Marshal(e.row["company_name"])
		if got := string(e.dynamic["company"]); got != string(wantCompany) {
			t.Errorf("id %s: dynamic company = %s, want %s", id, got, wantCompany)
		}

		var tags []string
		if err := json.Unmarshal(e.dynamic["tags"], &tags); err != nil || tags == nil {
			t.Errorf("id %s: dynamic tags = %s, want a JSON array", id, e.dynamic["tags"])
			continue
		}
		if want := strings.Join(tags, ", "); want != e.row["tags"] {
			t.Errorf("id %s: tags %q do not rejoin to the cell", id, tags)
		}
	}
}

// exportPhoneE164 normalizes a phone of the export by its known layouts: a
// 10-digit number or 1 and 10 digits, then an optional " x" extension.
func exportPhoneE164(phone string) string {
	number, extension, _ := strings.Cut(phone, " x")
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, number)
	if len(digits) == 10 {
		digits = "1" + digits
	}
	if extension != "" {
		return "+" + digits + ";ext=" + extension
	}
	return "+" + digits
}
