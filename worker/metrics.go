package worker

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Dead-letter reasons: the last token of the dead-letter subject and the
// value of the reason label and header.
const (
	ReasonInvalid  = "invalid"
	ReasonNotFound = "not_found"
	ReasonRejected = "rejected"
)

var deadLetterReasons = []string{ReasonInvalid, ReasonNotFound, ReasonRejected}

// PUT outcomes, the values of the outcome label.
const (
	outcomeSuccess  = "success"
	outcomeNotFound = "not_found"
	outcomeRejected = "rejected"
	outcomeAborted  = "aborted"
)

// Attempt results, the values of the result label.
const (
	resultSuccess      = "success"
	resultNotFound     = "not_found"
	resultRejected     = "rejected"
	resultUnauthorized = "unauthorized"
	resultTransient    = "transient"
)

// Stats is a snapshot of a worker's counters since it was created.
type Stats struct {
	// EventsReceived counts deliveries, redeliveries included.
	EventsReceived int64

	// EventsMerged counts events that joined a contact's pending update
	// instead of starting one.
	EventsMerged int64

	// EventsApplied counts events acked after the PUT carrying them
	// succeeded, or at once because their changes were empty.
	EventsApplied int64

	// EventsDeadLettered counts events acked after their dead letter was
	// stored, by reason.
	EventsDeadLettered map[string]int64

	// PUTs counts updates by outcome; retries of one update count once.
	PUTs map[string]int64

	// Attempts counts every request sent, retries included.
	Attempts int64

	// Held is the number of messages held now.
	Held int64
}

// metrics records the worker's counters both as Prometheus metrics and as
// plain atomics that Stats reads.
type metrics struct {
	eventsReceived    prometheus.Counter
	eventsRedelivered prometheus.Counter
	eventsMerged      prometheus.Counter
	eventsApplied     prometheus.Counter
	deadLetters       *prometheus.CounterVec
	deadLetterErrors  prometheus.Counter
	puts              *prometheus.CounterVec
	attempts          *prometheus.CounterVec
	retries           prometheus.Counter
	putDuration       prometheus.Histogram
	rateWait          prometheus.Histogram
	heldMessages      prometheus.Gauge
	pendingContacts   prometheus.Gauge
	ready             prometheus.Gauge

	receivedCount, mergedCount, appliedCount, attemptCount, heldCount atomic.Int64
	deadLetteredCount                                                 [3]atomic.Int64
	putOutcomeCount                                                   [4]atomic.Int64
}

var putOutcomes = []string{outcomeSuccess, outcomeNotFound, outcomeRejected, outcomeAborted}

func newMetrics(registerer prometheus.Registerer) *metrics {
	factory := promauto.With(registerer)
	const namespace = "contact_sync"

	m := &metrics{
		eventsReceived: factory.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "events_received_total",
			Help: "Contact-change messages received, redeliveries included.",
		}),
		eventsRedelivered: factory.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "events_redelivered_total",
			Help: "Messages received that JetStream had delivered before.",
		}),
		eventsMerged: factory.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "events_merged_total",
			Help: "Events merged into a contact's pending update instead of starting one.",
		}),
		eventsApplied: factory.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "events_applied_total",
			Help: "Events acked after the PUT carrying their changes succeeded.",
		}),
		deadLetters: factory.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "dead_letters_total",
			Help: "Events stored as dead letters and acked, by reason.",
		}, []string{"reason"}),
		deadLetterErrors: factory.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "dead_letter_publish_errors_total",
			Help: "Dead-letter publishes that failed; their events were nakked for redelivery.",
		}),
		puts: factory.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "puts_total",
			Help: "Updates sent to the contact API by final outcome; retries of one update count once.",
		}, []string{"outcome"}),
		attempts: factory.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "put_attempts_total",
			Help: "Requests sent to the contact API, retries included, by result.",
		}, []string{"result"}),
		retries: factory.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "put_retries_total",
			Help: "Failed requests that were scheduled for a retry.",
		}),
		putDuration: factory.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "put_duration_seconds",
			Help:    "Duration of one request to the contact API.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
		rateWait: factory.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "rate_limiter_wait_seconds",
			Help:    "Time a request waited for the rate limiter or a Retry-After pause.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 12),
		}),
		heldMessages: factory.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "held_messages",
			Help: "Messages received and not yet acked or nakked.",
		}),
		pendingContacts: factory.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "pending_contacts",
			Help: "Contacts with an update pending or in flight.",
		}),
		ready: factory.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "ready",
			Help: "1 while the worker is connected and consuming, else 0.",
		}),
	}

	// Create every labelled series at 0, so that dashboards and alerts see
	// them before the first event.
	for _, reason := range deadLetterReasons {
		m.deadLetters.WithLabelValues(reason)
	}
	for _, outcome := range putOutcomes {
		m.puts.WithLabelValues(outcome)
	}
	for _, result := range []string{resultSuccess, resultNotFound, resultRejected, resultUnauthorized, resultTransient} {
		m.attempts.WithLabelValues(result)
	}
	return m
}

func (m *metrics) receivedEvent(redelivered bool) {
	m.eventsReceived.Inc()
	m.receivedCount.Add(1)
	if redelivered {
		m.eventsRedelivered.Inc()
	}
}

func (m *metrics) mergedEvent() {
	m.eventsMerged.Inc()
	m.mergedCount.Add(1)
}

func (m *metrics) appliedEvents(n int) {
	m.eventsApplied.Add(float64(n))
	m.appliedCount.Add(int64(n))
}

func (m *metrics) deadLettered(reason string, n int) {
	m.deadLetters.WithLabelValues(reason).Add(float64(n))
	for i, known := range deadLetterReasons {
		if known == reason {
			m.deadLetteredCount[i].Add(int64(n))
		}
	}
}

func (m *metrics) putFinished(outcome string) {
	m.puts.WithLabelValues(outcome).Inc()
	for i, known := range putOutcomes {
		if known == outcome {
			m.putOutcomeCount[i].Add(1)
		}
	}
}

func (m *metrics) heldDelta(n int) {
	m.heldMessages.Add(float64(n))
	m.heldCount.Add(int64(n))
}

func (m *metrics) snapshot() Stats {
	stats := Stats{
		EventsReceived:     m.receivedCount.Load(),
		EventsMerged:       m.mergedCount.Load(),
		EventsApplied:      m.appliedCount.Load(),
		EventsDeadLettered: make(map[string]int64, len(deadLetterReasons)),
		PUTs:               make(map[string]int64, len(putOutcomes)),
		Attempts:           m.attemptCount.Load(),
		Held:               m.heldCount.Load(),
	}
	for i, reason := range deadLetterReasons {
		stats.EventsDeadLettered[reason] = m.deadLetteredCount[i].Load()
	}
	for i, outcome := range putOutcomes {
		stats.PUTs[outcome] = m.putOutcomeCount[i].Load()
	}
	return stats
}
