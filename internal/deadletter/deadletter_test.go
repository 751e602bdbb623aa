package deadletter_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/contact-sync/contact-sync/internal/deadletter"
	"github.com/contact-sync/contact-sync/internal/natstest"
	"github.com/contact-sync/contact-sync/internal/topology"
)

const testContactID = "0f8fad5b-d9cb-469f-a165-70867728950e"

// testLetter returns a letter for a rejected update of a message whose
// headers include secrets, JetStream headers and an application header.
func testLetter() deadletter.Letter {
	return deadletter.Letter{
		Reason:    "rejected",
		Status:    400,
		Detail:    "Contact with this email already exists.",
		Attempts:  3,
		ContactID: testContactID,
		Stream:    topology.DefaultStream,
		Subject:   topology.ChangesSubject(testContactID),
		Sequence:  42,
		Data:      []byte(`{"event_id":"evt-1"}`),
		Header: nats.Header{
			nats.MsgIdHdr:          []string{"evt-1"},
			"Nats-Expected-Stream": []string{"CONTACTS"},
			"nats-rollup":          []string{"sub"},
			"Authorization":        []string{"Bearer top-secret-1"},
			"X-Api-Token":          []string{"top-secret-2"},
			"Cookie":               []string{"session=top-secret-3"},
			"X-Secret":             []string{"top-secret-4"},
			"X-Client-Password":    []string{"top-secret-5"},
			"Source-System":        []string{"crm", "import"},
			"Traceparent":          []string{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		},
		At: time.Date(2025, 3, 4, 6, 6, 7, 500, time.FixedZone("CET", 3600)),
	}
}

func TestNewMsgSubjectAndBody(t *testing.T) {
	letter := testLetter()

	msg := deadletter.NewMsg(letter)

	if want := "contacts.deadletter.rejected"; msg.Subject != want {
		t.Errorf("Subject = %q, want %q", msg.Subject, want)
	}
	if string(msg.Data) != string(letter.Data) {
		t.Errorf("Data = %s, want the original body %s", msg.Data, letter.Data)
	}
}

func TestNewMsgHeaders(t *testing.T) {
	msg := deadletter.NewMsg(testLetter())

	want := map[string]string{
		deadletter.HeaderReason:           "rejected",
		deadletter.HeaderStatus:           "400",
		deadletter.HeaderDetail:           "Contact with this email already exists.",
		deadletter.HeaderAttempts:         "3",
		deadletter.HeaderContactID:        testContactID,
		deadletter.HeaderOriginalSubject:  "contacts.changes." + testContactID,
		deadletter.HeaderOriginalStream:   "CONTACTS",
		deadletter.HeaderOriginalSequence: "42",
		deadletter.HeaderOriginalMsgID:    "evt-1",
		deadletter.HeaderDeadLetteredAt:   "2025-03-04T05:06:07.0000005Z",
		nats.MsgIdHdr:                     "CONTACTS:42:rejected",
		"Traceparent":                     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}
	for name, value := range want {
		if got := msg.Header.Values(name); len(got) != 1 || got[0] != value {
			t.Errorf("header %s = %q, want [%q]", name, got, value)
		}
	}

	if got := msg.Header.Values("Source-System"); strings.Join(got, ",") != "crm,import" {
		t.Errorf("header Source-System = %q, want both original values [crm import]", got)
	}
	if got := msg.Header.Values(deadletter.HeaderError); got != nil {
		t.Errorf("header %s = %q, want none for a rejected update", deadletter.HeaderError, got)
	}
}

func TestNewMsgDropsSecretAndNatsHeaders(t *testing.T) {
	msg := deadletter.NewMsg(testLetter())

	for _, name := range []string{"Authorization", "X-Api-Token", "Cookie", "X-Secret", "X-Client-Password", "Nats-Expected-Stream", "nats-rollup"} {
		if got := msg.Header.Values(name); got != nil {
			t.Errorf("header %s = %q, want it dropped", name, got)
		}
	}
	for name, values := range msg.Header {
		for _, value := range values {
			if strings.Contains(value, "top-secret") {
				t.Errorf("header %s carries a secret value", name)
			}
		}
		if strings.HasPrefix(strings.ToLower(name), "nats-") && name != nats.MsgIdHdr {
			t.Errorf("header %s steers JetStream and must be dropped", name)
		}
	}
}

func TestNewMsgInvalidEvent(t *testing.T) {
	letter := deadletter.Letter{
		Reason:   "invalid",
		Err:      "contact_id is missing: invalid event",
		Stream:   "CONTACTS",
		Subject:  "contacts.changes.x",
		Sequence: 7,
		Data:     []byte("not json"),
		At:       time.Unix(0, 0),
	}

	msg := deadletter.NewMsg(letter)

	if want := "contacts.deadletter.invalid"; msg.Subject != want {
		t.Errorf("Subject = %q, want %q", msg.Subject, want)
	}
	want := map[string]string{
		deadletter.HeaderReason:   "invalid",
		deadletter.HeaderError:    "contact_id is missing: invalid event",
		deadletter.HeaderAttempts: "0",
		nats.MsgIdHdr:             "CONTACTS:7:invalid",
	}
	for name, value := range want {
		if got := msg.Header.Get(name); got != value {
			t.Errorf("header %s = %q, want %q", name, got, value)
		}
	}
	for _, name := range []string{deadletter.HeaderStatus, deadletter.HeaderDetail, deadletter.HeaderContactID, deadletter.HeaderOriginalMsgID} {
		if got := msg.Header.Values(name); got != nil {
			t.Errorf("header %s = %q, want none", name, got)
		}
	}
}

// TestNewMsgReplacesEarlierDeadLetterHeaders dead-letters a message that
// carries the Contact-Sync-* headers of an earlier dead letter, as a
// redriven message does: none of the earlier values may remain.
func TestNewMsgReplacesEarlierDeadLetterHeaders(t *testing.T) {
	letter := deadletter.Letter{
		Reason:   "invalid",
		Err:      "changes is missing: invalid event",
		Stream:   "CONTACTS",
		Subject:  "contacts.changes.x",
		Sequence: 8,
		Header: nats.Header{
			deadletter.HeaderReason:    []string{"rejected"},
			deadletter.HeaderStatus:    []string{"400"},
			deadletter.HeaderDetail:    []string{"Contact with this email already exists."},
			deadletter.HeaderContactID: []string{testContactID},
			deadletter.HeaderAttempts:  []string{"5"},
		},
	}

	msg := deadletter.NewMsg(letter)

	if got := msg.Header.Values(deadletter.HeaderReason); len(got) != 1 || got[0] != "invalid" {
		t.Errorf("header %s = %q, want [invalid]", deadletter.HeaderReason, got)
	}
	if got := msg.Header.Values(deadletter.HeaderAttempts); len(got) != 1 || got[0] != "0" {
		t.Errorf("header %s = %q, want [0]", deadletter.HeaderAttempts, got)
	}
	for _, name := range []string{deadletter.HeaderStatus, deadletter.HeaderDetail, deadletter.HeaderContactID} {
		if got := msg.Header.Values(name); got != nil {
			t.Errorf("header %s = %q from the earlier dead letter, want none", name, got)
		}
	}
}

func TestNewMsgHeaderValueIsOneShortLine(t *testing.T) {
	cases := []struct {
		name   string
		detail string
	}{
		{"CR LF and 5 KB", "line one\r\nline two\nline three\r" + strings.Repeat("x", 5<<10)},
		{"invalid UTF-8", "bad \xff\xfe byte"},
		{"multi-byte rune across the limit", strings.Repeat("a", 1023) + "é" + strings.Repeat("b", 10)},
		{"only newlines", strings.Repeat("\n", 2000)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			letter := testLetter()
			letter.Detail = tc.detail
			letter.Err = tc.detail
			letter.Subject = tc.detail

			msg := deadletter.NewMsg(letter)

			for _, name := range []string{deadletter.HeaderDetail, deadletter.HeaderError, deadletter.HeaderOriginalSubject} {
				checkHeaderLine(t, msg, name)
			}
		})
	}
}

func checkHeaderLine(t *testing.T, msg *nats.Msg, name string) {
	t.Helper()

	values := msg.Header.Values(name)
	if len(values) != 1 {
		t.Fatalf("header %s has %d values, want 1", name, len(values))
	}
	value := values[0]
	if strings.ContainsAny(value, "\r\n") {
		t.Errorf("header %s contains CR or LF: %q", name, value)
	}
	if len(value) > 1024 {
		t.Errorf("header %s is %d bytes, want at most 1024", name, len(value))
	}
	if !utf8.ValidString(value) {
		t.Errorf("header %s is not valid UTF-8: %q", name, value)
	}
}

// TestNewMsgKeepsDetailStart checks the documented cleaning of a detail:
// CR and LF become spaces and each run of invalid UTF-8 becomes "?".
func TestNewMsgKeepsDetailStart(t *testing.T) {
	letter := testLetter()
	letter.Detail = "first\r\nsecond\xff\xfethird" + strings.Repeat("z", 5<<10)

	detail := deadletter.NewMsg(letter).Header.Get(deadletter.HeaderDetail)

	if want := "first  second?thirdzzz"; !strings.HasPrefix(detail, want) {
		t.Errorf("header %s = %q..., want it to start with %q", deadletter.HeaderDetail, detail[:min(len(detail), 40)], want)
	}
}

func TestNewMsgWithoutOriginalHeaders(t *testing.T) {
	letter := testLetter()
	letter.Header = nil

	msg := deadletter.NewMsg(letter)

	if got := msg.Header.Values(deadletter.HeaderOriginalMsgID); got != nil {
		t.Errorf("header %s = %q, want none when the original had no Nats-Msg-Id", deadletter.HeaderOriginalMsgID, got)
	}
	if got := msg.Header.Get(nats.MsgIdHdr); got != "CONTACTS:42:rejected" {
		t.Errorf("header %s = %q, want CONTACTS:42:rejected", nats.MsgIdHdr, got)
	}
}

// TestNewMsgPublishes stores dead letters in a real JetStream: the message
// is accepted, lands in the dead-letter stream with its headers, and a
// second publish of the same letter is dropped as a duplicate.
func TestNewMsgPublishes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	_, js := natstest.Connect(t, natstest.Start(t))
	if err := topology.ProvisionStreams(ctx, js, topology.Options{}); err != nil {
		t.Fatalf("ProvisionStreams: %v", err)
	}

	letter := testLetter()
	letter.Detail = "line one\r\nline two " + strings.Repeat("x", 5<<10) + "\xff"

	first, err := js.PublishMsg(ctx, deadletter.NewMsg(letter))
	if err != nil {
		t.Fatalf("publish dead letter: %v", err)
	}
	if first.Stream != topology.DefaultDeadLetterStream || first.Duplicate {
		t.Fatalf("first publish ack = %+v, want a new message in %s", first, topology.DefaultDeadLetterStream)
	}

	second, err := js.PublishMsg(ctx, deadletter.NewMsg(letter))
	if err != nil {
		t.Fatalf("publish dead letter again: %v", err)
	}
	if !second.Duplicate || second.Sequence != first.Sequence {
		t.Errorf("second publish ack = %+v, want a duplicate of sequence %d", second, first.Sequence)
	}

	stream, err := js.Stream(ctx, topology.DefaultDeadLetterStream)
	if err != nil {
		t.Fatalf("find stream %s: %v", topology.DefaultDeadLetterStream, err)
	}
	stored, err := stream.GetMsg(ctx, first.Sequence)
	if err != nil {
		t.Fatalf("read dead letter at sequence %d: %v", first.Sequence, err)
	}
	if string(stored.Data) != string(letter.Data) {
		t.Errorf("stored body = %s, want %s", stored.Data, letter.Data)
	}
	header := nats.Header(stored.Header)
	if got := header.Get(deadletter.HeaderReason); got != "rejected" {
		t.Errorf("stored header %s = %q, want rejected", deadletter.HeaderReason, got)
	}
	if got := header.Get(deadletter.HeaderOriginalMsgID); got != "evt-1" {
		t.Errorf("stored header %s = %q, want evt-1", deadletter.HeaderOriginalMsgID, got)
	}
	if got := header.Get(deadletter.HeaderDetail); !strings.HasPrefix(got, "line one  line two xxx") || len(got) > 1024 {
		t.Errorf("stored header %s = %.40q... (%d bytes), want one line of at most 1024 bytes", deadletter.HeaderDetail, got, len(got))
	}
	if got := header.Get("Authorization"); got != "" {
		t.Errorf("stored header Authorization is present, want it dropped")
	}
}
