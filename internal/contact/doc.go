// Package contact defines the contact-change event, the partial update it
// carries, and the rule that merges several updates of one contact into one.
//
// An event is a JSON object published on contacts.changes.<contact_id>:
//
//	{"event_id": "...", "contact_id": "<uuid>", "occurred_at": "<RFC 3339>", "changes": {...}}
//
// In changes, an absent field is unchanged and a field set to null is cleared.
// The package does no I/O and no logging; every function is safe for
// concurrent use unless its receiver is shared and modified.
package contact
