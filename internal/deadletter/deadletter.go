// Package deadletter builds the messages the worker publishes on
// contacts.deadletter.<reason>: the original event's body, with headers
// that record why it could not be applied and where it came from.
package deadletter

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/contact-sync/contact-sync/internal/topology"
)

// Headers set on every dead letter. Tools that list, show or redrive dead
// letters read them.
const (
	HeaderReason           = "Contact-Sync-Reason"
	HeaderError            = "Contact-Sync-Error"
	HeaderStatus           = "Contact-Sync-Status"
	HeaderDetail           = "Contact-Sync-Detail"
	HeaderAttempts         = "Contact-Sync-Attempts"
	HeaderContactID        = "Contact-Sync-Contact-Id"
	HeaderOriginalSubject  = "Contact-Sync-Original-Subject"
	HeaderOriginalStream   = "Contact-Sync-Original-Stream"
	HeaderOriginalSequence = "Contact-Sync-Original-Sequence"
	HeaderOriginalMsgID    = "Contact-Sync-Original-Msg-Id"
	HeaderDeadLetteredAt   = "Contact-Sync-Dead-Lettered-At"
	HeaderBodyOmitted      = "Contact-Sync-Body-Omitted"
)

// maxHeaderValue caps a header value taken from outside input, such as an
// API detail or a decoding error, in bytes.
const maxHeaderValue = 1024

// Letter describes one dead letter.
type Letter struct {
	// Reason is invalid, not_found or rejected; it ends the subject.
	Reason string

	// Err is the decoding error of an invalid event.
	Err string

	// Status and Detail are from the API's last response, or 0 and "" when
	// there was none.
	Status int
	Detail string

	// Attempts is how many requests were sent; 0 for invalid events.
	Attempts int

	// ContactID is the event's contact, or "" when it could not be read.
	ContactID string

	// Stream, Subject and Sequence locate the original message.
	Stream   string
	Subject  string
	Sequence uint64

	// Data and Header are the original message's body and headers.
	Data   []byte
	Header nats.Header

	// OmittedBodySize is the size in bytes of an original body left out
	// because the dead letter would exceed the server's max payload; 0
	// when the body is included. The original stays in its stream.
	OmittedBodySize int

	// At is when the event was dead-lettered.
	At time.Time
}

// NewMsg returns the message to publish for a letter. The original headers
// are copied, except those that may carry a secret, those that steer
// JetStream (Nats-*) and those of an earlier dead letter (Contact-Sync-*); the original Nats-Msg-Id is kept under
// Contact-Sync-Original-Msg-Id. The letter's own Nats-Msg-Id is derived from
// the original stream sequence and reason, so publishing the same letter
// again within the duplicate window stores it once.
func NewMsg(letter Letter) *nats.Msg {
	msg := nats.NewMsg(topology.DeadLetterSubject(letter.Reason))
	msg.Data = letter.Data

	for name, values := range letter.Header {
		lower := strings.ToLower(name)
		if isSecretHeader(name) || strings.HasPrefix(lower, "nats-") || strings.HasPrefix(lower, "contact-sync-") {
			continue
		}
		for _, value := range values {
			msg.Header.Add(name, value)
		}
	}

	setIfNotEmpty(msg.Header, HeaderOriginalMsgID, letter.Header.Get(nats.MsgIdHdr))
	msg.Header.Set(nats.MsgIdHdr, fmt.Sprintf("%s:%d:%s", letter.Stream, letter.Sequence, letter.Reason))
	msg.Header.Set(HeaderReason, letter.Reason)
	setIfNotEmpty(msg.Header, HeaderError, headerValue(letter.Err))
	if letter.Status != 0 {
		msg.Header.Set(HeaderStatus, strconv.Itoa(letter.Status))
	}
	setIfNotEmpty(msg.Header, HeaderDetail, headerValue(letter.Detail))
	msg.Header.Set(HeaderAttempts, strconv.Itoa(letter.Attempts))
	setIfNotEmpty(msg.Header, HeaderContactID, letter.ContactID)
	msg.Header.Set(HeaderOriginalStream, letter.Stream)
	msg.Header.Set(HeaderOriginalSubject, headerValue(letter.Subject))
	msg.Header.Set(HeaderOriginalSequence, strconv.FormatUint(letter.Sequence, 10))
	msg.Header.Set(HeaderDeadLetteredAt, letter.At.UTC().Format(time.RFC3339Nano))
	if letter.OmittedBodySize > 0 {
		msg.Header.Set(HeaderBodyOmitted, strconv.Itoa(letter.OmittedBodySize))
	}
	return msg
}

// isSecretHeader reports whether a header name suggests a credential.
func isSecretHeader(name string) bool {
	lower := strings.ToLower(name)
	for _, marker := range []string{"authorization", "cookie", "token", "secret", "password", "api-key", "apikey"} {
		if strings.Contains(lower, marker) {
			return true
		}
	}
	return false
}

// lineBreaks replaces the characters that would end a header line.
var lineBreaks = strings.NewReplacer("\r", " ", "\n", " ")

// headerValue makes a value safe for a NATS header: one line, at most
// maxHeaderValue bytes.
func headerValue(value string) string {
	value = lineBreaks.Replace(value)
	if len(value) > maxHeaderValue {
		value = value[:maxHeaderValue]
	}
	return strings.ToValidUTF8(value, "?")
}

func setIfNotEmpty(header nats.Header, name, value string) {
	if value != "" {
		header.Set(name, value)
	}
}
