package contactapi

import (
	"net"
	"net/http"
	"time"
)

// FaultFunc chooses the fault for one request. The server calls it once for
// every PUT whose contact_id is a UUID, after Latency and before checking
// the token, while the request counts as in flight. It runs on the
// request's goroutine, so it must be safe for concurrent use, and it may
// block (on a channel, say) to hold a request in flight.
type FaultFunc func(r FaultRequest) Fault

// FaultRequest describes the request a FaultFunc is called for.
type FaultRequest struct {
	// ContactID is the contact_id of the path, in canonical form.
	ContactID string

	// Attempt is the 1-based count of requests seen for ContactID,
	// this one included, whatever their outcome.
	Attempt int64

	// Seq is the 1-based number of the request among all PUTs on the
	// contact path, the same as Request.Seq.
	Seq int64

	// Body is the request body. It is shared with the request log and
	// must not be modified.
	Body []byte
}

// Fault is the failure a FaultFunc injects into one request. The zero
// value injects nothing. A
// request that gets a fault response is not applied.
type Fault struct {
	// Status is the status to respond with instead of running the API's
	// checks. Zero responds normally, after Delay.
	Status int

	// Body is the JSON body of the Status response. The empty string sends
	// {"detail": "<status text>"}.
	Body string

	// RetryAfter is the value of the Retry-After header of the Status
	// response, such as "2" or an HTTP-date. The empty string sends none.
	RetryAfter string

	// Delay is waited before responding, whether the response is the fault
	// or the normal one. When the client goes away during it, nothing is
	// sent and the request is not applied.
	Delay time.Duration

	// ResetConnection closes the connection without a response, as a reset
	// in the middle of a response. It takes precedence over Status.
	ResetConnection bool
}

// SetFault sets the function that chooses faults for later requests; nil
// turns fault injection off.
func (s *Server) SetFault(f FaultFunc) {
	if f == nil {
		s.fault.Store(nil)
		return
	}
	s.fault.Store(&f)
}

// injectFault calls the FaultFunc and carries out its fault. It reports
// whether the request is finished, and the status sent (0 for none).
func (s *Server) injectFault(w http.ResponseWriter, r *http.Request, request FaultRequest) (status int, finished bool) {
	choose := s.fault.Load()
	if choose == nil {
		return 0, false
	}
	fault := (*choose)(request)

	if !sleepContext(r.Context(), fault.Delay) {
		s.counters.canceled.Add(1)
		return 0, true
	}

	switch {
	case fault.ResetConnection:
		s.counters.faults.Add(1)
		resetConnection(w)
		return 0, true
	case fault.Status != 0:
		s.counters.faults.Add(1)
		return writeFault(w, fault), true
	default:
		return 0, false
	}
}

func writeFault(w http.ResponseWriter, fault Fault) int {
	if fault.RetryAfter != "" {
		w.Header().Set("Retry-After", fault.RetryAfter)
	}

	body := []byte(fault.Body)
	if fault.Body == "" {
		body = detailBody(http.StatusText(fault.Status))
	}
	return writeJSON(w, fault.Status, body)
}

// resetConnection closes the client's connection without a response. On a
// TCP connection it sets SO_LINGER to 0 first, so that the client gets an
// RST, not a clean end of stream. When the connection cannot be hijacked
// (HTTP/2, or a ResponseWriter that is not a connection) it aborts the
// handler with http.ErrAbortHandler, which the server turns into a broken
// stream. A caller of ServeHTTP outside net/http gets that panic.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}

	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}
