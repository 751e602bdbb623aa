package worker

import (
	"sync/atomic"
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
	logger   zerolog.Logger
	metrics  *metrics
	retryLog *changeLogger

	// tokenRefused is true from an attempt rejected with 401 or 403 until
	// the API accepts the token again. Transient failures (5xx, network
	// errors) do not change it, because they do not show whether the
	// token is valid.
	tokenRefused atomic.Bool
}

// NewObserver registers the worker's metrics on registerer (nil registers
// none) and logs retries to logger.
func NewObserver(logger zerolog.Logger, registerer prometheus.Registerer) *Observer {
	return &Observer{
		logger:   logger,
		metrics:  newMetrics(registerer),
		retryLog: &changeLogger{logger: logger},
	}
}

// ObserveAttempt records one attempt of the sink; pass it as
// sink.Options.OnAttempt.
func (o *Observer) ObserveAttempt(attempt sink.Attempt) {
	o.metrics.attemptCount.Add(1)
	o.metrics.putDuration.Observe(attempt.Duration.Seconds())
	result := attemptResult(attempt.Err)
	o.metrics.attempts.WithLabelValues(result).Inc()

	switch result {
	case resultUnauthorized:
		if !o.tokenRefused.Swap(true) {
			o.logger.Error().Int("status", attempt.Status).Str("contact_id", attempt.ContactID).
				Msg("the contact API rejected the token; reading it again and retrying; not ready until a request is accepted")
		}
	case resultTransient:
	default:
		if o.tokenRefused.Swap(false) {
			o.logger.Info().Msg("the contact API accepts the token again")
		}
	}
}

// TokenRefused reports whether the last request that reached the API's
// authentication was refused with 401 or 403.
func (o *Observer) TokenRefused() bool { return o.tokenRefused.Load() }

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
