// Package bench measures the worker end to end on this machine: the
// throughput of an unlimited backlog against three ceilings, the rate
// limiter's use of a limited API, memory against backlog size, and latency
// at low load. Run runs the scenarios and returns a Report whose rows go
// to BENCHMARKS.md.
//
// The worker under test runs as a separate process (Options.WorkerCommand,
// normally `contact-sync run`) configured by CONTACT_SYNC_* variables, so
// that its CPU time and peak RSS are its own. The embedded nats-server,
// the stand-in contact API and the ceiling measurements live in the
// calling process, and everything listens on 127.0.0.1. Each scenario
// gets a fresh nats-server in a temporary directory and a fresh stand-in.
package bench
