package faultsuite

import (
	"strings"
	"testing"
	"time"

	"github.com/contact-sync/contact-sync/internal/contact"
	"github.com/contact-sync/contact-sync/internal/contactapi"
	"github.com/contact-sync/contact-sync/internal/eventgen"
)

// takenEmail is the email the first contact holds, which the stand-in's
// uniqueness check rejects for any other contact.
const takenEmail = "taken@example.com"

// TestRejectedMergedUpdate merges five events of one contact into one
// update, two of which set an email another contact holds, so that the API
// rejects the merged update with a validation 400. The worker must find the
// two culprits by sending the events' changes in smaller groups in stream
// order: only they are dead-lettered, and the other three are applied.
func TestRejectedMergedUpdate(t *testing.T) {
	f := newFixture(t, inProcessNATS(t), contactapi.Options{UniqueEmail: true},
		"merged update of 5 events rejected with a validation 400 caused by 2 of them (email held by another contact)")
	ids := eventgen.ContactIDs(2)
	holder, target := ids[0], ids[1]
	f.addContacts(ids...)

	worker := startWorker(t, f.workerEnv(map[string]string{"CONTACT_SYNC_MERGE_WINDOW": "1s"}))
	worker.waitReady(20 * time.Second)
	f.publish([]eventgen.Event{rawEvent(holder, "holder-email", `{"email":"`+takenEmail+`"}`)})
	f.waitDrained(20 * time.Second)

	// The worker is idle, so the first event opens a 1 s merge window and
	// the other four, published right after it, merge into its update.
	events := []eventgen.Event{
		rawEvent(target, "target-1", `{"name":"Bea"}`),
		rawEvent(target, "target-2", `{"email":"`+takenEmail+`"}`),
		rawEvent(target, "target-3", `{"name":"Bee","phone":"+15550100"}`),
		rawEvent(target, "target-4", `{"email":"`+takenEmail+`","surname":"Smith"}`),
		rawEvent(target, "target-5", `{"surname":"Jones"}`),
	}
	startedAt := time.Now()
	f.publish(events)
	drainedAt := f.waitDrained(30 * time.Second)

	firstBody := ""
	for _, request := range f.api.Requests() {
		if request.ContactID == target {
			firstBody = string(request.Body)
			break
		}
	}
	for _, field := range []string{`"name"`, `"email"`, `"phone"`, `"surname"`} {
		if !strings.Contains(firstBody, field) {
			t.Fatalf("the first PUT of the contact carries %s, want the merged update of all five events with %s", firstBody, field)
		}
	}

	f.recordRun(worker)
	result := f.account(ids)
	result.check(f, map[string]int{"rejected": 2})
	culprits := map[uint64]bool{f.ledger[2].sequence: true, f.ledger[4].sequence: true}
	for _, letter := range f.deadLetters() {
		if !culprits[letter.sequence] {
			t.Errorf("the event at stream sequence %d was dead-lettered as %s, want only the two that set the taken email (sequences 3 and 5)", letter.sequence, letter.reason)
		}
	}

	got, _ := f.api.Contact(target)
	want := contact.State{Name: contact.SetTo("Bee"), Phone: contact.SetTo("+15550100"), Surname: contact.SetTo("Jones")}
	if !got.Equal(&want) {
		t.Errorf("the contact holds %s, want name, phone and surname from the three accepted events and no email", describeState(&got))
	}

	requests := 0
	for _, request := range f.api.Requests() {
		if request.ContactID == target {
			requests++
		}
	}
	f.report.record(result, f.repeatedPUTs(), -1)
	f.report.note("The worker sent %d requests for the contact and finished %.2f s after the events were published.", requests, drainedAt.Sub(startedAt).Seconds())
}
