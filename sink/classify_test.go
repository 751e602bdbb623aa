package sink

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestClassifyStatus(t *testing.T) {
	t.Parallel()

	notFound := "Contact (" + testContactID + ") not found"
	tests := []struct {
		status int
		detail string
		want   error
	}{
		{http.StatusOK, "", nil},
		{http.StatusCreated, "", nil},
		{http.StatusNoContent, "", nil},
		{http.StatusBadRequest, notFound, ErrNotFound},
		{http.StatusBadRequest, "Contact with this email already exists.", ErrRejected},
		{http.StatusBadRequest, "", ErrRejected},
		{http.StatusNotFound, "", ErrNotFound},
		{http.StatusNotFound, notFound, ErrNotFound},
		{http.StatusNotFound, "Not found.", ErrNotFound},
		{http.StatusUnauthorized, "", ErrUnauthorized},
		{http.StatusForbidden, "You do not have permission to perform this action.", ErrUnauthorized},
		{http.StatusRequestTimeout, "", ErrTransient},
		{http.StatusTooManyRequests, "", ErrTransient},
		{http.StatusInternalServerError, "", ErrTransient},
		{http.StatusBadGateway, "", ErrTransient},
		{http.StatusServiceUnavailable, "", ErrTransient},
		{http.StatusGatewayTimeout, "", ErrTransient},
		{http.StatusConflict, "", ErrRejected},
		{http.StatusRequestEntityTooLarge, "", ErrRejected},
		{http.StatusUnprocessableEntity, "", ErrRejected},
		{http.StatusNotImplemented, "", ErrRejected},
		{http.StatusMovedPermanently, "", ErrRejected},
	}
	for _, tc := range tests {
		if got := classifyStatus(tc.status, tc.detail); got != tc.want {
			t.Errorf("classifyStatus(%d, %q) = %v, want %v", tc.status, tc.detail, got, tc.want)
		}
	}
}

func TestParseDetail(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		body string
		want string
	}{
		{"string", `{"detail": "Contact (abc) not found"}`, "Contact (abc) not found"},
		{"list of one", `{"detail": ["Contact with this email already exists."]}`, "Contact with this email already exists."},
		{"list of two", `{"detail": ["first", "second"]}`, "first; second"},
		{"empty list", `{"detail": []}`, ""},
		{"missing", `{"name": ["This field is required."]}`, ""},
		{"null", `{"detail": null}`, ""},
		{"number", `{"detail": 42}`, ""},
		{"object", `{"detail": {"name": "invalid"}}`, ""},
		{"mixed list", `{"detail": ["text", 1]}`, ""},
		{"top-level list", `["detail"]`, ""},
		{"HTML", `<html><body>502 Bad Gateway</body></html>`, ""},
		{"empty body", ``, ""},
		{"truncated JSON", `{"detail": "Contact (abc`, ""},
	}
	for _, tc := range tests {
		if got := parseDetail([]byte(tc.body)); got != tc.want {
			t.Errorf("%s: parseDetail(%q) = %q, want %q", tc.name, tc.body, got, tc.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, time.May, 4, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		value string
		want  time.Duration
	}{
		{"absent", "", 0},
		{"seconds", "1", time.Second},
		{"seconds with spaces", " 120 ", 2 * time.Minute},
		{"zero seconds", "0", 0},
		{"negative seconds", "-5", 0},
		{"fractional seconds", "1.5", 0},
		{"garbage", "soon", 0},
		{"IMF-fixdate in the future", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"ANSI C date in the future", now.Add(time.Minute).Format(time.ANSIC), time.Minute},
		{"IMF-fixdate now", now.Format(http.TimeFormat), 0},
		{"IMF-fixdate in the past", now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"date without zone", "2026-05-04 10:05:00", 0},
	}
	for _, tc := range tests {
		if got := parseRetryAfter(tc.value, now); got != tc.want {
			t.Errorf("%s: parseRetryAfter(%q) = %v, want %v", tc.name, tc.value, got, tc.want)
		}
	}
}

// A delay-seconds value too large for time.Duration is still a request to
// wait, which Put caps at MaxRetryAfter. It must not overflow to a negative
// delay, because Put ignores a Retry-After that is not positive.
func TestParseRetryAfterHugeSeconds(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, time.May, 4, 10, 0, 0, 0, time.UTC)
	for _, value := range []string{"9300000000", "99999999999999999"} {
		if got := parseRetryAfter(value, now); got <= 0 {
			t.Errorf("parseRetryAfter(%q) = %v, want a positive delay", value, got)
		}
	}
}

func TestStatusErrorMessage(t *testing.T) {
	t.Parallel()

	withDetail := &StatusError{ContactID: testContactID, Status: 422, Detail: "Enter a valid phone number.", Kind: ErrRejected}
	want := "PUT contact " + testContactID + ": HTTP 422: update rejected: Enter a valid phone number."
	if got := withDetail.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}

	withoutDetail := &StatusError{ContactID: testContactID, Status: 404, Kind: ErrNotFound}
	got := withoutDetail.Error()
	if !strings.HasSuffix(got, ": HTTP 404: contact not found") || !strings.Contains(got, testContactID) {
		t.Errorf("Error() = %q, want the contact_id, HTTP 404 and the kind", got)
	}
}
