package contactapi

import (
	"slices"
	"sync/atomic"
	"time"
)

// Stats contains counts of the requests and responses since New. Each
// counter is read separately, so while requests are being served the
// counters of one Stats value may be a few requests apart.
type Stats struct {
	// Requests counts every request received, on any path and method.
	Requests int64

	// Updated counts 200 responses, which are the updates applied.
	Updated int64

	// NotFound counts 400 "Contact (...) not found" responses, for unknown
	// contacts and for contact_ids that are not UUIDs.
	NotFound int64

	// BadPaths counts PUTs on the contact path whose contact_id is not a
	// UUID. The worker validates every contact_id, so it must send none.
	BadPaths int64

	// Rejected counts 400 responses with a detail list: a body that is not a
	// valid partial update, or an email held by another contact.
	Rejected int64

	// Unauthorized counts 401 responses.
	Unauthorized int64

	// UnsupportedMediaType counts 415 responses.
	UnsupportedMediaType int64

	// NoRoute counts 404 responses to other paths and 405 responses to other
	// methods on the contact path.
	NoRoute int64

	// Faults counts requests given a fault's Status or closed by its
	// ResetConnection. A fault with only a Delay is not counted.
	Faults int64

	// Canceled counts requests that got no response because the client went
	// away during Latency, a fault's Delay or the body.
	Canceled int64

	// InFlight is the number of PUTs with a UUID contact_id being handled
	// now.
	InFlight int64

	// MaxInFlightPerContact is the largest number of requests ever in
	// flight at once for one contact_id. A worker that sends one request
	// per contact at a time keeps it at 1.
	MaxInFlightPerContact int64

	// ConcurrentViolations counts requests that arrived while another
	// request for the same contact_id was in flight.
	ConcurrentViolations int64
}

type counters struct {
	requests              atomic.Int64
	updated               atomic.Int64
	notFound              atomic.Int64
	badPaths              atomic.Int64
	rejected              atomic.Int64
	unauthorized          atomic.Int64
	unsupportedMediaType  atomic.Int64
	noRoute               atomic.Int64
	faults                atomic.Int64
	canceled              atomic.Int64
	inFlight              atomic.Int64
	maxInFlightPerContact atomic.Int64
	concurrentViolations  atomic.Int64
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	c := &s.counters
	return Stats{
		Requests:              c.requests.Load(),
		Updated:               c.updated.Load(),
		NotFound:              c.notFound.Load(),
		BadPaths:              c.badPaths.Load(),
		Rejected:              c.rejected.Load(),
		Unauthorized:          c.unauthorized.Load(),
		UnsupportedMediaType:  c.unsupportedMediaType.Load(),
		NoRoute:               c.noRoute.Load(),
		Faults:                c.faults.Load(),
		Canceled:              c.canceled.Load(),
		InFlight:              c.inFlight.Load(),
		MaxInFlightPerContact: c.maxInFlightPerContact.Load(),
		ConcurrentViolations:  c.concurrentViolations.Load(),
	}
}

// enter counts a request as in flight for its contact. A request is in
// flight from before its body is read until its response is written, and
// leaves before net/http flushes the response, so a client that waits for
// each response before the next request is never counted as concurrent.
func (s *Server) enter(rec *record) {
	inFlight := rec.inFlight.Add(1)
	s.counters.inFlight.Add(1)
	if inFlight > 1 {
		s.counters.concurrentViolations.Add(1)
	}

	for {
		largest := s.counters.maxInFlightPerContact.Load()
		if inFlight <= largest || s.counters.maxInFlightPerContact.CompareAndSwap(largest, inFlight) {
			return
		}
	}
}

func (s *Server) leave(rec *record) {
	rec.inFlight.Add(-1)
	s.counters.inFlight.Add(-1)
}

// Request is one entry of the request log: a PUT on the contact path.
type Request struct {
	// Seq is the 1-based number of the request in arrival order.
	Seq int64

	// ContactID is the contact_id of the path, in canonical form, or as
	// sent when it is not a UUID.
	ContactID string

	// Arrived is when the server matched the request's path. It carries a
	// monotonic clock reading, and never decreases along the log.
	Arrived time.Time

	// Body is the request body, set when the request is finished. It is
	// shared with the server and must not be modified.
	Body []byte

	// Status is the status sent, or 0 when no response was sent because the
	// connection was reset by a fault or the client went away.
	Status int

	// Finished reports that the server is done with the request. Until
	// then Body is nil and Status is 0.
	Finished bool
}

// logArrival assigns the request its sequence number and, unless the log
// is off, appends its entry.
func (s *Server) logArrival(contactID string) int64 {
	if !s.logRequests {
		return s.seq.Add(1)
	}

	s.logMu.Lock()
	defer s.logMu.Unlock()
	seq := s.seq.Add(1)
	s.log = append(s.log, Request{Seq: seq, ContactID: contactID, Arrived: time.Now()})
	return seq
}

func (s *Server) logResponse(seq int64, body []byte, status int) {
	if !s.logRequests {
		return
	}

	s.logMu.Lock()
	defer s.logMu.Unlock()
	entry := &s.log[seq-1]
	entry.Body = body
	entry.Status = status
	entry.Finished = true
}

// Requests returns a copy of the request log in arrival order, or nil when
// Options.NoRequestLog is set. The bodies are shared, not copied.
func (s *Server) Requests() []Request {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return slices.Clone(s.log)
}

// MaxPerWindow returns the largest number of logged requests that arrived
// within any interval [t, t+window), sliding t over the arrival times. Rate
// limit tests compare it with the limit the worker must keep. It returns 0
// when the request log is off or window is not positive.
func (s *Server) MaxPerWindow(window time.Duration) int {
	s.logMu.Lock()
	arrivals := make([]time.Time, len(s.log))
	for i, entry := range s.log {
		arrivals[i] = entry.Arrived
	}
	s.logMu.Unlock()

	return maxArrivalsInWindow(arrivals, window)
}

// maxArrivalsInWindow returns the largest number of times within any
// interval [t, t+window). It sorts times in place.
func maxArrivalsInWindow(times []time.Time, window time.Duration) int {
	if window <= 0 {
		return 0
	}
	slices.SortFunc(times, time.Time.Compare)

	largest := 0
	first := 0
	for last := range times {
		for times[last].Sub(times[first]) >= window {
			first++
		}
		largest = max(largest, last-first+1)
	}
	return largest
}
