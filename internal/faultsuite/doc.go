// Package faultsuite contains the fault tests of contact-sync. Each test
// runs the real worker binary (`contact-sync run`, built once by TestMain)
// as a subprocess between a real nats-server and the contact API stand-in of
// internal/contactapi, and injects one fault. It then checks that no event
// is lost, that every known contact ends with the stream-order fold of its
// events, and that nothing is dead-lettered that should not be.
//
// Each test records one row of figures (events published, applied,
// dead-lettered, lost, stale overwrites, repeated PUTs and time to recover).
// When CONTACT_SYNC_RELIABILITY_OUT names a file, the rows are appended to
// it as JSON lines, and TestWriteReliabilityDoc turns them into the table of
// docs/reliability.md (`make reliability` runs both).
//
// The package has no code outside its tests.
package faultsuite
