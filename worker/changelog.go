package worker

import (
	"sync"

	"github.com/rs/zerolog"
)

// changeLogger logs a retry warning only when the error differs from the
// last one it logged, so that an outage of the API writes one warning and
// not one per request. Repeats go to debug.
type changeLogger struct {
	logger zerolog.Logger

	mu       sync.Mutex
	lastText string
}

// warn logs the error at warn level when its text changed, else at debug.
func (c *changeLogger) warn(errorText string, event func(*zerolog.Event) *zerolog.Event, message string) {
	c.mu.Lock()
	changed := errorText != c.lastText
	c.lastText = errorText
	c.mu.Unlock()

	if changed {
		event(c.logger.Warn()).Str("error", errorText).Msg(message)
		return
	}
	event(c.logger.Debug()).Str("error", errorText).Msg(message)
}

// reset clears the last error after a success, and reports whether there
// was one.
func (c *changeLogger) reset() (hadError bool) {
	c.mu.Lock()
	defer c.mu.Unlock()

	hadError = c.lastText != ""
	c.lastText = ""
	return hadError
}
