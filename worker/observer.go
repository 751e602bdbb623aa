package worker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/contact-sync/contact-sync/sink"
)

// Observer records the worker's metrics and logs what the sink reports
// through its hooks. Create it with NewObserver, wire its Observe methods
// into sink.Options, and pass it to the worker in Options.Observer. Safe for
// concurrent use.
type Observer struct {
	metrics  *metrics
	retryLog *changeLogger
}

// NewObserver registers the worker's metrics on registerer (nil registers
// none) and logs retries to logger.
func NewObserver(logger zerolog.Logger, registerer prometheus.Registerer) *Observer {
	return &Observer{
		metrics:  newMetrics(registerer),
		retryLog: &changeLogger{logger: logger},
	}
}

// ObserveAttempt records one attempt of the sink; pass it as
// sink.Options.OnAttempt.
func (o *Observer) ObserveAttempt(attempt sink.Attempt) {
	o.metrics.attemptCount.Add(1)
	o.metrics.putDuration.Observe(attempt.Duration.Seconds())
	o.metrics.attempts.WithLabelValues(attemptResult(attempt.Err)).Inc()
}

// ObserveRetry records and logs a retry of the sink; pass it as
// sink.Options.OnRetry. The warning is written once per changed error.
func (o *Observer) ObserveRetry(attempt sink.Attempt, delay time.Duration) {
	o.metrics.retries.Inc()
	o.retryLog.warn(retryKey(attempt), func(event *zerolog.Event) *zerolog.Event {
		return event.Str("contact_id", attempt.ContactID).Int("attempt", attempt.Number).Int("status", attempt.Status).Dur("retry_in", delay)
	}, "PUT failed; retrying")
}

// ObserveRateWait records a wait for the rate limiter; pass it as
// sink.Options.OnRateWait.
func (o *Observer) ObserveRateWait(wait time.Duration) {
	o.metrics.rateWait.Observe(wait.Seconds())
}
