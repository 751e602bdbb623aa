package faultsuite

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/contact-sync/contact-sync/internal/contactapi"
)

// standIn is the contact API stand-in served on a fixed port of 127.0.0.1,
// so that it can go down and come back on the same address.
type standIn struct {
	*contactapi.Server
	t       testing.TB
	addr    string
	baseURL string

	mu       sync.Mutex
	shutdown func() error
}

// startStandIn serves a new stand-in on a free port and shuts it down when
// the test ends.
func startStandIn(t testing.TB, opts contactapi.Options) *standIn {
	t.Helper()
	server, err := contactapi.New(opts)
	if err != nil {
		t.Fatalf("create the contact API stand-in: %v", err)
	}

	api := &standIn{Server: server, t: t}
	api.listen("127.0.0.1:0")
	api.baseURL = "http://" + api.addr
	t.Cleanup(func() { api.stop() })
	return api
}

func (a *standIn) listen(addr string) {
	a.t.Helper()
	baseURL, shutdown, err := a.Listen(addr)
	if err != nil {
		a.t.Fatalf("serve the contact API stand-in on %s: %v", addr, err)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	a.addr = strings.TrimPrefix(baseURL, "http://")
	a.shutdown = func() error {
		ctx, cancel := contextWithTimeout(5 * time.Second)
		defer cancel()
		return shutdown(ctx)
	}
}

// stop closes the listener and every connection, so that clients get
// "connection refused". The stored contacts are kept.
func (a *standIn) stop() {
	a.mu.Lock()
	shutdown := a.shutdown
	a.shutdown = nil
	a.mu.Unlock()

	if shutdown != nil {
		_ = shutdown() // the wait's error only reports that requests were cut
	}
}

// restart serves the same stand-in again on its address.
func (a *standIn) restart() {
	a.t.Helper()
	a.listen(a.addr)
}

// arrivalsBetween counts the requests that arrived in [from, to).
func (a *standIn) arrivalsBetween(from, to time.Time) int {
	count := 0
	for _, request := range a.Requests() {
		if !request.Arrived.Before(from) && request.Arrived.Before(to) {
			count++
		}
	}
	return count
}

// requestsByContact counts the requests per contact_id.
func (a *standIn) requestsByContact() map[string]int {
	counts := map[string]int{}
	for _, request := range a.Requests() {
		counts[request.ContactID]++
	}
	return counts
}
