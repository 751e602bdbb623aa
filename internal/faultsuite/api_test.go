package faultsuite

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/contact-sync/contact-sync/internal/contactapi"
	"github.com/contact-sync/contact-sync/internal/eventgen"
)

// Settings of the API outage tests.
const (
	// outageRate is CONTACT_SYNC_RATE_LIMIT, in requests per second.
	outageRate = 50

	// outageWindow is how long each outage lasts: long enough for the
	// backoff to reach CONTACT_SYNC_RETRY_MAX_INTERVAL (200 ms) many times.
	outageWindow = 3 * time.Second
)

// outage is one way the contact API fails for outageWindow.
type outage struct {
	name  string
	fault string

	// env adds worker settings.
	env map[string]string

	// overload marks an outage in which the API signals overload (429
	// with Retry-After), so the worker must send fewer requests.
	overload bool

	// begin starts the outage and end stops it.
	begin func(api *standIn)
	end   func(api *standIn)
}

// TestAPIOutage runs the worker through outages of the contact API. No event
// may be dead-lettered, and everything must be applied once the API
// recovers.
func TestAPIOutage(t *testing.T) {
	outages := []outage{
		{
			name:  "5xx",
			fault: "API answers 500, 502, 503 and 504 (no Retry-After) for 3 s",
			begin: func(api *standIn) {
				statuses := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}
				api.SetFault(func(request contactapi.FaultRequest) contactapi.Fault {
					return contactapi.Fault{Status: statuses[request.Seq%int64(len(statuses))]}
				})
			},
			end: clearFault,
		},
		{
			name:  "connection refused",
			fault: "API down (connection refused) for 3 s, then up on the same port",
			begin: func(api *standIn) { api.stop() },
			end:   func(api *standIn) { api.restart() },
		},
		{
			name:  "connection reset",
			fault: "API resets every connection before responding, for 3 s",
			begin: func(api *standIn) {
				api.SetFault(func(contactapi.FaultRequest) contactapi.Fault {
					return contactapi.Fault{ResetConnection: true}
				})
			},
			end: clearFault,
		},
		{
			name:  "slower than the timeout",
			fault: "API responds after 1 s, past CONTACT_SYNC_API_TIMEOUT=200ms, for 3 s",
			env:   map[string]string{"CONTACT_SYNC_API_TIMEOUT": "200ms"},
			begin: func(api *standIn) {
				api.SetFault(func(contactapi.FaultRequest) contactapi.Fault {
					return contactapi.Fault{Delay: time.Second}
				})
			},
			end: clearFault,
		},
		{
			name:     "429 storm Retry-After seconds",
			fault:    "API answers 429 with Retry-After: 1 to every request for 3 s",
			overload: true,
			begin: func(api *standIn) {
				api.SetFault(func(contactapi.FaultRequest) contactapi.Fault {
					return contactapi.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1"}
				})
			},
			end: clearFault,
		},
		{
			name:     "429 storm Retry-After HTTP-date",
			fault:    "API answers 429 with Retry-After as an HTTP-date 2 s ahead to every request for 3 s",
			overload: true,
			begin: func(api *standIn) {
				api.SetFault(func(contactapi.FaultRequest) contactapi.Fault {
					date := time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)
					return contactapi.Fault{Status: http.StatusTooManyRequests, RetryAfter: date}
				})
			},
			end: clearFault,
		},
	}

	for _, o := range outages {
		t.Run(o.name, func(t *testing.T) {
			t.Parallel()
			testAPIOutage(t, o)
		})
	}
}

func clearFault(api *standIn) { api.SetFault(nil) }

func testAPIOutage(t *testing.T, o outage) {
	f := newFixture(t, inProcessNATS(t), contactapi.Options{}, o.fault)
	contacts := eventgen.ContactIDs(60)
	f.addContacts(contacts...)
	events := eventgen.New(41).Events(contacts, 600)

	env := map[string]string{"CONTACT_SYNC_RATE_LIMIT": strconv.Itoa(outageRate), "CONTACT_SYNC_RATE_BURST": "5"}
	for name, value := range o.env {
		env[name] = value
	}
	worker := startWorker(t, f.workerEnv(env))
	worker.waitReady(20 * time.Second)
	f.publish(events[:300])
	waitFor(t, 20*time.Second, "10 updates applied before the outage", func() bool {
		return f.api.Stats().Updated >= 10
	})

	failedBefore := worker.metrics()[`contact_sync_put_attempts_total{result="transient"}`]
	begin := time.Now()
	o.begin(f.api)
	f.publish(events[300:])
	failed := 0.0
	waitFor(t, 20*time.Second, "an outage of 3 s with at least 5 failed attempts", func() bool {
		failed = worker.metrics()[`contact_sync_put_attempts_total{result="transient"}`] - failedBefore
		return time.Since(begin) >= outageWindow && failed >= 5
	})
	o.end(f.api)
	endAt := time.Now()

	drainedAt := f.waitDrained(60 * time.Second)
	f.recordRun(worker)
	result := f.account(contacts)
	result.check(f, nil)
	f.report.record(result, f.repeatedPUTs(), drainedAt.Sub(endAt))

	arrivalRate := float64(f.api.arrivalsBetween(begin, endAt)) / endAt.Sub(begin).Seconds()
	f.report.note("%.0f attempts failed during the outage, and the stand-in received %.1f requests per second then (rate limit %d).", failed, arrivalRate, outageRate)
	if o.overload && arrivalRate > outageRate/2 {
		t.Errorf("the stand-in received %.1f requests per second while it responded with 429, want at most half the rate limit (%d)", arrivalRate, outageRate/2)
	}
}
