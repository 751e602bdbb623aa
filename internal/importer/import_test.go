package importer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/contact-sync/contact-sync/internal/contact"
	"github.com/contact-sync/contact-sync/internal/natstest"
	"github.com/contact-sync/contact-sync/internal/topology"
)

// startJetStream starts a nats-server with the contact streams provisioned.
func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()

	_, js := natstest.Connect(t, natstest.Start(t))
	if err := topology.ProvisionStreams(testContext(t), js, topology.Options{}); err != nil {
		t.Fatalf("ProvisionStreams: %v", err)
	}
	return js
}

func testContext(t *testing.T) context.Context {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func loadExportMapping(t *testing.T) *Mapping {
	t.Helper()

	mapping, err := LoadMapping(exportMappingPath)
	if err != nil {
		t.Fatalf("LoadMapping: %v", err)
	}
	return &mapping
}

// storedMessage is one message of the CONTACTS stream.
type storedMessage struct {
	subject string
	msgID   string
	data    []byte
}

// streamMessages returns every message of the CONTACTS stream in order.
func streamMessages(t *testing.T, js jetstream.JetStream) []storedMessage {
	t.Helper()

	ctx := testContext(t)
	stream, err := js.Stream(ctx, topology.DefaultStream)
	if err != nil {
		t.Fatalf("find stream: %v", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}

	messages := make([]storedMessage, 0, info.State.Msgs)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get message %d: %v", seq, err)
		}
		messages = append(messages, storedMessage{subject: raw.Subject, msgID: raw.Header.Get(jetstream.MsgIDHeader), data: raw.Data})
	}
	return messages
}

// checkStoredEvents checks that each message decodes as an event, lies on
// its contact's subject and carries its event_id as Nats-Msg-Id.
func checkStoredEvents(t *testing.T, messages []storedMessage) {
	t.Helper()

	for i, message := range messages {
		event, err := contact.DecodeEvent(message.data)
		if err != nil {
			t.Errorf("message %d: DecodeEvent: %v", i+1, err)
			continue
		}
		if want := topology.ChangesSubject(event.ContactID); message.subject != want {
			t.Errorf("message %d: subject %s, want %s", i+1, message.subject, want)
		}
		if message.msgID == "" || message.msgID != event.EventID {
			t.Errorf("message %d: Nats-Msg-Id %q, want event_id %q", i+1, message.msgID, event.EventID)
		}
	}
}

func checkCounts(t *testing.T, got Result, records, published, duplicates, failed int) {
	t.Helper()

	if got.Records != records || got.Published != published || got.Duplicates != duplicates || got.Failed != failed {
		t.Errorf("result: %d records, published %d, duplicates %d, failed %d; want %d, %d, %d, %d (errors: %v)",
			got.Records, got.Published, got.Duplicates, got.Failed, records, published, duplicates, failed, got.Errors)
	}
}

func TestImportExportThenDuplicates(t *testing.T) {
	js := startJetStream(t)
	ctx := testContext(t)
	opts := Options{Mapping: loadExportMapping(t)}

	first, err := ImportFile(ctx, js, exportCSVPath, opts)
	if err != nil {
		t.Fatalf("first ImportFile: %v", err)
	}
	checkCounts(t, first, exportRows, exportRows, 0, 0)
	if first.BatchID != exportSHA256 {
		t.Errorf("batch id %s, want the file's SHA-256 %s", first.BatchID, exportSHA256)
	}

	messages := streamMessages(t, js)
	if len(messages) != exportRows {
		t.Fatalf("stream has %d messages after the first import, want %d", len(messages), exportRows)
	}
	checkStoredEvents(t, messages)
	if want := EventID(exportSHA256, 2); messages[0].msgID != want {
		t.Errorf("first message has Nats-Msg-Id %s, want EventID(sha256, 2) = %s", messages[0].msgID, want)
	}

	second, err := ImportFile(ctx, js, exportCSVPath, opts)
	if err != nil {
		t.Fatalf("second ImportFile: %v", err)
	}
	checkCounts(t, second, exportRows, 0, exportRows, 0)
	if got := len(streamMessages(t, js)); got != exportRows {
		t.Errorf("stream has %d messages after the second import, want still %d", got, exportRows)
	}
}

func TestImportChangedCopyPublishesAgain(t *testing.T) {
	js := startJetStream(t)
	ctx := testContext(t)
	opts := Options{Mapping: loadExportMapping(t)}

	if _, err := ImportFile(ctx, js, exportCSVPath, opts); err != nil {
		t.Fatalf("ImportFile of the export: %v", err)
	}

	original, err := os.ReadFile(exportCSVPath)
	if err != nil {
		t.Fatal(err)
	}
	changed := bytes.Replace(original, []byte(",Kerluke,"), []byte(",Kerluke-Smith,"), 1)
	if bytes.Equal(changed, original) {
		t.Fatal("the export has no Kerluke to change")
	}
	path := filepath.Join(t.TempDir(), "contacts.csv")
	if err := os.WriteFile(path, changed, 0o600); err != nil {
		t.Fatal(err)
	}

	result, err := ImportFile(ctx, js, path, opts)
	if err != nil {
		t.Fatalf("ImportFile of the changed copy: %v", err)
	}
	checkCounts(t, result, exportRows, exportRows, 0, 0)
	if result.BatchID == exportSHA256 {
		t.Error("the changed copy has the original's batch id")
	}
	if got := len(streamMessages(t, js)); got != 2*exportRows {
		t.Errorf("stream has %d messages, want %d", got, 2*exportRows)
	}

	// An explicit batch id replaces the hash, so the original file with the
	// changed copy's batch id is all duplicates.
	opts.BatchID = result.BatchID
	again, err := ImportFile(ctx, js, exportCSVPath, opts)
	if err != nil {
		t.Fatalf("ImportFile with a batch id: %v", err)
	}
	checkCounts(t, again, exportRows, 0, exportRows, 0)
}

func TestImportSmallMaxPending(t *testing.T) {
	js := startJetStream(t)

	for _, maxPending := range []int{1, 3} {
		opts := Options{Mapping: loadExportMapping(t), MaxPending: maxPending, BatchID: "max-pending-" + strconv.Itoa(maxPending)}
		result, err := ImportFile(testContext(t), js, exportCSVPath, opts)
		if err != nil {
			t.Fatalf("ImportFile with MaxPending %d: %v", maxPending, err)
		}
		checkCounts(t, result, exportRows, exportRows, 0, 0)
	}
}

func TestImportCSVRowErrors(t *testing.T) {
	js := startJetStream(t)
	input := "id,name,phone,portal\n" +
		"1,Ann,415.293.3313,yes\n" +
		"2,Bob,555-0100,no\n" + // phone has 7 digits
		"3,Cy,415.293.3313,maybe\n" +
		"4,Di,415.293.3313\n" + // one field short
		"x,Ed,415.293.3313,no\n" +
		"\"6\",\"Fay, Jr.\",(415) 293-3313 x12,0\n"
	mapping := Mapping{
		IDColumn:    "id",
		PhoneFormat: PhoneE164,
		Fields:      map[string]Columns{"name": {"name"}, "phone": {"phone"}, "has_customer_portal": {"portal"}},
	}

	result, err := Import(testContext(t), js, strings.NewReader(input), "row-errors", Options{Format: FormatCSV, Mapping: &mapping})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	checkCounts(t, result, 6, 2, 0, 4)

	want := []struct {
		row    int
		column string
	}{{3, "phone"}, {4, "portal"}, {5, ""}, {6, "id"}}
	if len(result.Errors) != len(want) {
		t.Fatalf("got %d errors (%v), want %d", len(result.Errors), result.Errors, len(want))
	}
	for i, w := range want {
		got := result.Errors[i]
		if got.Number != w.row || got.Column != w.column || !errors.Is(got, ErrInvalidRecord) {
			t.Errorf("error %d: %v, want row %d, column %q, ErrInvalidRecord", i, got, w.row, w.column)
		}
	}
	if message := result.Errors[0].Error(); strings.Contains(message, "555-0100") {
		t.Errorf("phone error %q contains the phone number", message)
	}

	messages := streamMessages(t, js)
	checkStoredEvents(t, messages)
	if len(messages) != 2 || !bytes.Contains(messages[1].data, []byte(`"name":"Fay, Jr."`)) {
		t.Errorf("stream has %d messages, want rows 2 and 7, the last with the quoted name", len(messages))
	}
}

func TestImportCSVStopOnError(t *testing.T) {
	js := startJetStream(t)
	input := "id,portal\n1,yes\n2,maybe\n3,no\n"
	mapping := Mapping{IDColumn: "id", Fields: map[string]Columns{"has_customer_portal": {"portal"}}}

	result, err := Import(testContext(t), js, strings.NewReader(input), "stop", Options{Format: FormatCSV, Mapping: &mapping, StopOnError: true})
	var recordErr *RecordError
	if !errors.As(err, &recordErr) || recordErr.Number != 3 {
		t.Fatalf("Import: error %v, want the *RecordError of row 3", err)
	}
	checkCounts(t, result, 2, 1, 0, 1)
}

func TestImportCSVMissingColumn(t *testing.T) {
	js := startJetStream(t)
	input := "id,first_name\n1,Ann\n"

	_, err := Import(testContext(t), js, strings.NewReader(input), "missing", Options{Format: FormatCSV, Mapping: loadExportMapping(t)})
	if !errors.Is(err, ErrMissingColumn) || !strings.Contains(err.Error(), "id, first_name") {
		t.Errorf("Import: error %v, want ErrMissingColumn listing the header", err)
	}
	if got := len(streamMessages(t, js)); got != 0 {
		t.Errorf("stream has %d messages, want 0", got)
	}
}

func TestImportCSVMalformedQuoting(t *testing.T) {
	js := startJetStream(t)
	input := "id,name\n1,Ann\n2,\"Bob\n"
	mapping := Mapping{IDColumn: "id", Fields: map[string]Columns{"name": {"name"}}}

	result, err := Import(testContext(t), js, strings.NewReader(input), "quoting", Options{Format: FormatCSV, Mapping: &mapping})
	if err == nil || !strings.Contains(err.Error(), "row 3") {
		t.Fatalf("Import: error %v, want a read error naming row 3", err)
	}
	checkCounts(t, result, 1, 1, 0, 0)
}

func TestImportCSVByteOrderMark(t *testing.T) {
	js := startJetStream(t)
	input := "\uFEFFid,name\n1,Ann\n"
	mapping := Mapping{IDColumn: "id", Fields: map[string]Columns{"name": {"name"}}}

	result, err := Import(testContext(t), js, strings.NewReader(input), "bom", Options{Format: FormatCSV, Mapping: &mapping})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	checkCounts(t, result, 1, 1, 0, 0)
}

func TestImportCSVNeedsBatchID(t *testing.T) {
	js := startJetStream(t)
	mapping := loadExportMapping(t)

	_, err := Import(testContext(t), js, strings.NewReader("id\n1\n"), "", Options{Format: FormatCSV, Mapping: mapping})
	if !errors.Is(err, ErrBatchIDRequired) {
		t.Errorf("Import without a batch id: error %v, want ErrBatchIDRequired", err)
	}

	_, err = ImportFile(testContext(t), js, "-", Options{Mapping: mapping})
	if !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("ImportFile of standard input without a format: error %v, want ErrUnknownFormat", err)
	}
	_, err = ImportFile(testContext(t), js, "contacts.xlsx", Options{Mapping: mapping})
	if !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("ImportFile of an .xlsx: error %v, want ErrUnknownFormat", err)
	}
	_, err = ImportFile(testContext(t), js, exportCSVPath, Options{})
	if !errors.Is(err, ErrInvalidMapping) {
		t.Errorf("ImportFile of a CSV without a mapping: error %v, want ErrInvalidMapping", err)
	}
}

func TestImportWithoutStreamFails(t *testing.T) {
	_, js := natstest.Connect(t, natstest.Start(t))

	result, err := ImportFile(testContext(t), js, exportCSVPath, Options{Mapping: loadExportMapping(t)})
	if err != nil {
		t.Fatalf("ImportFile: %v", err)
	}
	checkCounts(t, result, exportRows, 0, 0, exportRows)
	if len(result.Errors) != MaxErrors {
		t.Errorf("kept %d errors, want the first %d", len(result.Errors), MaxErrors)
	}
	if !errors.Is(result.Errors[0], ErrPublishFailed) {
		t.Errorf("error %v, want ErrPublishFailed", result.Errors[0])
	}
}

func TestImportCanceled(t *testing.T) {
	js := startJetStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	result, err := ImportFile(ctx, js, exportCSVPath, Options{Mapping: loadExportMapping(t)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ImportFile with a canceled context: error %v, want context.Canceled", err)
	}
	if result.Published != 0 {
		t.Errorf("published %d records after cancellation", result.Published)
	}
}

const (
	jsonlContactA = "8f1b8c6e-2d4a-4e8b-9c3f-1a2b3c4d5e6f"
	jsonlContactB = "9f1b8c6e-2d4a-4e8b-9c3f-1a2b3c4d5e6f"
)

func jsonlEvent(eventID, contactID, changes string) string {
	return `{"event_id":"` + eventID + `","contact_id":"` + contactID + `","occurred_at":"2024-08-14T11:39:02Z","changes":` + changes + `}`
}

func TestImportJSONL(t *testing.T) {
	js := startJetStream(t)
	valid1 := jsonlEvent("e-1", jsonlContactA, `{"name":"Ann"}`)
	valid2 := jsonlEvent("e-2", strings.ToUpper(jsonlContactB), `{"phone":null}`)
	valid3 := jsonlEvent("e-3", jsonlContactA, `{"surname":"Lee"}`)
	input := valid1 + "\n" +
		`{"event_id":"e-x", "contact_id": ` + "\n" + // line 2: not JSON
		jsonlEvent("e-y", "42", `{}`) + "\n" + // line 3: contact_id not a UUID
		"\n" + // line 4: blank
		valid2 + "\r\n" +
		jsonlEvent("e-z", jsonlContactA, `{"nickname":"A"}`) + "\n" + // line 6: unknown field
		valid3 // line 7, no newline

	result, err := Import(testContext(t), js, strings.NewReader(input), "", Options{Format: FormatJSONL})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	checkCounts(t, result, 6, 3, 0, 3)

	wantLines := []int{2, 3, 6}
	if len(result.Errors) != len(wantLines) {
		t.Fatalf("got errors %v, want lines %v", result.Errors, wantLines)
	}
	for i, line := range wantLines {
		got := result.Errors[i]
		if got.Number != line || !errors.Is(got, contact.ErrInvalidEvent) || !strings.HasPrefix(got.Error(), "jsonl line ") {
			t.Errorf("error %d: %v, want jsonl line %d wrapping contact.ErrInvalidEvent", i, got, line)
		}
	}

	messages := streamMessages(t, js)
	checkStoredEvents(t, messages)
	if len(messages) != 3 {
		t.Fatalf("stream has %d messages, want 3", len(messages))
	}
	for i, want := range []string{valid1, valid2, valid3} {
		if string(messages[i].data) != want {
			t.Errorf("message %d is %s, want the original line %s", i+1, messages[i].data, want)
		}
	}
	if messages[1].subject != topology.ChangesSubject(jsonlContactB) {
		t.Errorf("upper-case contact_id published on %s, want the canonical subject", messages[1].subject)
	}

	again, err := Import(testContext(t), js, strings.NewReader(input), "", Options{Format: FormatJSONL})
	if err != nil {
		t.Fatalf("second Import: %v", err)
	}
	checkCounts(t, again, 6, 0, 3, 3)
}

func TestImportJSONLStopOnError(t *testing.T) {
	js := startJetStream(t)
	input := jsonlEvent("e-1", jsonlContactA, `{}`) + "\nnot json\n" + jsonlEvent("e-3", jsonlContactA, `{}`) + "\n"

	result, err := Import(testContext(t), js, strings.NewReader(input), "", Options{Format: FormatJSONL, StopOnError: true})
	var recordErr *RecordError
	if !errors.As(err, &recordErr) || recordErr.Number != 2 {
		t.Fatalf("Import: error %v, want the *RecordError of line 2", err)
	}
	checkCounts(t, result, 2, 1, 0, 1)
}

func TestImportJSONLLongLine(t *testing.T) {
	js := startJetStream(t)
	long := jsonlEvent("e-1", jsonlContactA, `{"name":"`+strings.Repeat("a", contact.MaxEventSize)+`"}`)
	input := long + "\n" + jsonlEvent("e-2", jsonlContactA, `{}`) + "\n"

	result, err := Import(testContext(t), js, strings.NewReader(input), "", Options{Format: FormatJSONL})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	checkCounts(t, result, 2, 1, 0, 1)
	if len(result.Errors) != 1 || result.Errors[0].Number != 1 || !strings.Contains(result.Errors[0].Error(), "longer than") {
		t.Errorf("errors %v, want line 1 too long", result.Errors)
	}
}

func TestImportJSONLFile(t *testing.T) {
	js := startJetStream(t)
	path := filepath.Join(t.TempDir(), "events.NDJSON")
	if err := os.WriteFile(path, []byte(jsonlEvent("e-1", jsonlContactA, `{}`)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	result, err := ImportFile(testContext(t), js, path, Options{})
	if err != nil {
		t.Fatalf("ImportFile: %v", err)
	}
	checkCounts(t, result, 1, 1, 0, 0)
	if result.BatchID != "" {
		t.Errorf("JSONL import has batch id %q, want none", result.BatchID)
	}
}
