// Package importer publishes a batch import, a CSV export or a JSONL file of
// events, as contact-change events on contacts.changes.<contact_id> in
// JetStream.
//
// Input is streamed: each JSONL line or CSV row is read, validated and
// published before the next one is read. Publishing is asynchronous, and at
// most Options.MaxPending records wait for their acks, so memory does not
// grow with the file. Import waits for every ack before it returns, and a
// record counts as published only when JetStream acknowledged it.
//
// # Event ids and duplicates
//
// Every message carries its event_id in the Nats-Msg-Id header, so that
// JetStream drops a second publish of the same event inside the stream's
// duplicate window (one hour by default, see topology.Options). A JSONL line
// uses its own event_id. A CSV row gets a name-based (version 5) UUID:
//
//	event_id = uuid5(EventNamespace, batch_id + "/" + row_number)
//
// where batch_id is, unless given, the lower-case hexadecimal SHA-256 of the
// file's bytes, and row_number is the decimal 1-based number of the record
// with the header as row 1. Re-running the same file within the duplicate
// window therefore publishes nothing new and Result.Duplicates counts every
// row, while any change to the file gives every row a new event_id.
//
// # Contact ids
//
// A CSV row's contact_id is derived from the CRM's integer id as a version 5
// UUID in the mapping's namespace (DefaultNamespace unless set), of the id in
// decimal without leading zeros. In Python:
//
//	uuid.uuid5(uuid.UUID("011d9fbf-1ca1-4c22-babb-3e42accd8567"), str(int(crm_id)))
//
// For example, CRM id 42 becomes d7182571-38a4-53ae-878a-d5d62d22d2d2. A
// mapping with id_is_uuid: true takes the id column as the contact_id itself.
//
// Error messages name the record, the column and the reason, and never
// quote a cell's value, because cells hold personal data such as emails and
// phone numbers. The package does no logging.
package importer
