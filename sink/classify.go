package sink

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// classifyStatus maps an HTTP status and the response's detail to nil for
// success or to the sentinel error of its kind.
func classifyStatus(status int, detail string) error {
	switch {
	case status >= 200 && status < 300:
		return nil
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusBadRequest && isNotFoundDetail(detail):
		return ErrNotFound
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return ErrUnauthorized
	case status == http.StatusRequestTimeout,
		status == http.StatusTooManyRequests,
		status == http.StatusInternalServerError,
		status == http.StatusBadGateway,
		status == http.StatusServiceUnavailable,
		status == http.StatusGatewayTimeout:
		return ErrTransient
	default:
		return ErrRejected
	}
}

// isNotFoundDetail reports whether a 400's detail is the API's
// "Contact (<id>) not found".
func isNotFoundDetail(detail string) bool {
	return strings.HasPrefix(detail, "Contact (") && strings.HasSuffix(detail, ") not found")
}

// parseDetail returns the detail member of an error body: a string as is,
// a list of strings joined with "; ", and "" for anything else.
func parseDetail(body []byte) string {
	var response struct {
		Detail json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(body, &response); err != nil || len(response.Detail) == 0 {
		return ""
	}

	var text string
	if err := json.Unmarshal(response.Detail, &text); err == nil {
		return text
	}

	var list []string
	if err := json.Unmarshal(response.Detail, &list); err == nil {
		return strings.Join(list, "; ")
	}
	return ""
}

// parseRetryAfter reads a Retry-After header in either form RFC 9110
// section 10.2.3 allows: delay-seconds or an HTTP-date. It returns 0 when
// the header is absent, invalid or in the past.
func parseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}

	if seconds, err := strconv.ParseInt(value, 10, 64); err == nil {
		if seconds <= 0 {
			return 0
		}
		if seconds > int64(math.MaxInt64/time.Second) {
			return math.MaxInt64
		}
		return time.Duration(seconds) * time.Second
	}

	date, err := http.ParseTime(value)
	if err != nil {
		return 0
	}
	if delay := date.Sub(now); delay > 0 {
		return delay
	}
	return 0
}
