package sink

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contact-sync/contact-sync/internal/contact"
)

func TestPutSendsOneRequest(t *testing.T) {
	t.Parallel()

	server := newScriptServer(t, replyOK())
	client := newTestClient(t, fastOptions(server.URL))
	body := []byte(`{"name":"Ada","dynamic_field_list":[{"key":"route","value":"7"}]}`)

	result, err := client.Put(testContext(t), testContactID, body)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if result.Attempts != 1 || result.Status != http.StatusOK {
		t.Errorf("result = %+v, want 1 attempt with status 200", result)
	}

	requests := server.Requests()
	if len(requests) != 1 {
		t.Fatalf("server received %d requests, want 1", len(requests))
	}
	got := requests[0]
	if got.Method != http.MethodPut {
		t.Errorf("method = %s, want PUT", got.Method)
	}
	if want := "/contact/" + testContactID + "/"; got.Path != want {
		t.Errorf("path = %s, want %s", got.Path, want)
	}
	if got.Authorization != "Bearer "+testToken {
		t.Error("the Authorization header is not Bearer followed by the configured token")
	}
	if got.ContentType != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q, want application/json; charset=utf-8", got.ContentType)
	}
	if !bytes.Equal(got.Body, body) {
		t.Errorf("body = %s, want %s", got.Body, body)
	}
}

func TestPutBuildsPathFromTemplate(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		prefix   string
		template string
		wantPath string
	}{
		{"default template", "", "", "/contact/" + testContactID + "/"},
		{"base URL with prefix", "/api/v2", "", "/api/v2/contact/" + testContactID + "/"},
		{"base URL with trailing slash", "/api/v2/", "", "/api/v2/contact/" + testContactID + "/"},
		{"custom template", "", "/engagement/contacts/{contact_id}", "/engagement/contacts/" + testContactID},
		{"custom template and prefix", "/v1", "/engagement/contacts/{contact_id}", "/v1/engagement/contacts/" + testContactID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			server := newScriptServer(t, replyOK())
			opts := fastOptions(server.URL + tc.prefix)
			opts.PathTemplate = tc.template
			client := newTestClient(t, opts)

			if _, err := client.Put(testContext(t), testContactID, []byte(`{}`)); err != nil {
				t.Fatalf("Put: %v", err)
			}
			requests := server.Requests()
			if len(requests) != 1 {
				t.Fatalf("server received %d requests, want 1", len(requests))
			}
			if requests[0].Path != tc.wantPath {
				t.Errorf("path = %s, want %s", requests[0].Path, tc.wantPath)
			}
		})
	}
}

func TestPutRetriesTransientStatuses(t *testing.T) {
	t.Parallel()

	transient := []int{503, 500, 502, 504, 408, 429}
	var steps []http.HandlerFunc
	for _, status := range transient {
		steps = append(steps, reply(status, `{"detail": "try later"}`))
	}
	steps = append(steps, replyOK())
	server := newScriptServer(t, steps...)

	var hooks hookRecorder
	opts := fastOptions(server.URL)
	hooks.install(&opts)
	client := newTestClient(t, opts)

	result, err := client.Put(testContext(t), testContactID, []byte(`{"name":"Ada"}`))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	wantAttempts := len(transient) + 1
	if result.Attempts != wantAttempts || result.Status != http.StatusOK {
		t.Errorf("result = %+v, want %d attempts ending with status 200", result, wantAttempts)
	}
	if got := len(server.Requests()); got != wantAttempts {
		t.Errorf("server received %d requests, want %d", got, wantAttempts)
	}

	attempts := hooks.Attempts()
	if len(attempts) != wantAttempts {
		t.Fatalf("OnAttempt was called %d times, want %d", len(attempts), wantAttempts)
	}
	for i, status := range transient {
		attempt := attempts[i]
		if attempt.Number != i+1 || attempt.Status != status || attempt.ContactID != testContactID {
			t.Errorf("attempt %d = {Number: %d, Status: %d, ContactID: %s}, want {%d, %d, %s}",
				i, attempt.Number, attempt.Status, attempt.ContactID, i+1, status, testContactID)
		}
		if !errors.Is(attempt.Err, ErrTransient) {
			t.Errorf("attempt %d (HTTP %d) error = %v, want ErrTransient", i+1, status, attempt.Err)
		}
	}
	if last := attempts[wantAttempts-1]; last.Number != wantAttempts || last.Err != nil {
		t.Errorf("last attempt = {Number: %d, Err: %v}, want {%d, nil}", last.Number, last.Err, wantAttempts)
	}

	retries := hooks.Retries()
	if len(retries) != len(transient) {
		t.Fatalf("OnRetry was called %d times, want %d", len(retries), len(transient))
	}
	maxDelay := opts.MaxInterval * 3 / 2
	for i, retry := range retries {
		if retry.Attempt.Number != i+1 {
			t.Errorf("retry %d is for attempt %d, want %d", i, retry.Attempt.Number, i+1)
		}
		if retry.Delay <= 0 || retry.Delay > maxDelay {
			t.Errorf("retry %d delay = %v, want a backoff in (0, %v]", i, retry.Delay, maxDelay)
		}
	}
}

func TestPutRetriesNetworkError(t *testing.T) {
	t.Parallel()

	server := newScriptServer(t, hangUp(t), replyOK())
	var hooks hookRecorder
	opts := fastOptions(server.URL)
	hooks.install(&opts)
	client := newTestClient(t, opts)

	result, err := client.Put(testContext(t), testContactID, []byte(`{}`))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if result.Attempts != 2 {
		t.Errorf("Attempts = %d, want 2", result.Attempts)
	}
	if got := len(server.Requests()); got != 2 {
		t.Errorf("server received %d requests, want 2", got)
	}

	attempts := hooks.Attempts()
	if len(attempts) != 2 {
		t.Fatalf("OnAttempt was called %d times, want 2", len(attempts))
	}
	if attempts[0].Status != 0 || !errors.Is(attempts[0].Err, ErrTransient) {
		t.Errorf("first attempt = {Status: %d, Err: %v}, want no status and ErrTransient", attempts[0].Status, attempts[0].Err)
	}
	if strings.Contains(attempts[0].Err.Error(), server.URL) {
		t.Errorf("first attempt error %q contains the request URL", attempts[0].Err)
	}
}

func TestPutRetriesSlowResponse(t *testing.T) {
	t.Parallel()

	release := make(chan struct{})
	stall := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
	server := newScriptServer(t, stall, replyOK())
	t.Cleanup(func() { close(release) }) // runs before server.Close

	var hooks hookRecorder
	opts := fastOptions(server.URL)
	opts.Timeout = 100 * time.Millisecond
	hooks.install(&opts)
	client := newTestClient(t, opts)

	result, err := client.Put(testContext(t), testContactID, []byte(`{}`))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if result.Attempts < 2 || result.Status != http.StatusOK {
		t.Errorf("result = %+v, want at least 2 attempts ending with status 200", result)
	}

	attempts := hooks.Attempts()
	if len(attempts) < 2 {
		t.Fatalf("OnAttempt was called %d times, want at least 2", len(attempts))
	}
	first := attempts[0]
	if first.Status != 0 || !errors.Is(first.Err, ErrTransient) {
		t.Errorf("first attempt = {Status: %d, Err: %v}, want no status and ErrTransient", first.Status, first.Err)
	}
}

// Attempt.Duration lets hooks observe request latency. The client cannot
// abandon a stalled response before Timeout, so the stalled attempt lasts
// at least that long.
func TestAttemptDurationCoversRequest(t *testing.T) {
	t.Parallel()

	release := make(chan struct{})
	stall := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
	server := newScriptServer(t, stall, replyOK())
	t.Cleanup(func() { close(release) }) // runs before server.Close

	var hooks hookRecorder
	opts := fastOptions(server.URL)
	opts.Timeout = 20 * time.Millisecond
	hooks.install(&opts)
	client := newTestClient(t, opts)

	if _, err := client.Put(testContext(t), testContactID, []byte(`{}`)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	attempts := hooks.Attempts()
	if len(attempts) < 2 {
		t.Fatalf("OnAttempt was called %d times, want at least 2", len(attempts))
	}
	if got := attempts[0].Duration; got < opts.Timeout {
		t.Errorf("stalled attempt Duration = %v, want at least the timeout %v", got, opts.Timeout)
	}
	if got := attempts[len(attempts)-1].Duration; got <= 0 {
		t.Errorf("successful attempt Duration = %v, want more than 0", got)
	}
}

func TestPutStopsOnNotFound(t *testing.T) {
	t.Parallel()

	notFound := "Contact (" + testContactID + ") not found"
	tests := []struct {
		name       string
		status     int
		body       string
		wantDetail string
	}{
		{"400 with not-found detail", http.StatusBadRequest, `{"detail": "` + notFound + `"}`, notFound},
		{"404", http.StatusNotFound, `{"detail": "Not found."}`, "Not found."},
		{"404 with HTML", http.StatusNotFound, `<h1>Not Found</h1>`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			server := newScriptServer(t, reply(tc.status, tc.body), replyOK())
			client := newTestClient(t, fastOptions(server.URL))

			result, err := client.Put(testContext(t), testContactID, []byte(`{}`))
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("Put error = %v, want ErrNotFound", err)
			}
			var statusErr *StatusError
			if !errors.As(err, &statusErr) {
				t.Fatalf("Put error %v is not a *StatusError", err)
			}
			if statusErr.Status != tc.status || statusErr.Detail != tc.wantDetail || statusErr.ContactID != testContactID {
				t.Errorf("StatusError = %+v, want Status %d, Detail %q, ContactID %s", statusErr, tc.status, tc.wantDetail, testContactID)
			}
			if result.Attempts != 1 || result.Status != tc.status || result.Detail != tc.wantDetail {
				t.Errorf("result = %+v, want 1 attempt, status %d, detail %q", result, tc.status, tc.wantDetail)
			}
			if got := len(server.Requests()); got != 1 {
				t.Errorf("server received %d requests, want 1", got)
			}
		})
	}
}

func TestPutStopsOnRejected(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name       string
		status     int
		body       string
		wantDetail string
	}{
		{"400 with list detail", http.StatusBadRequest, `{"detail": ["Contact with this email already exists."]}`, "Contact with this email already exists."},
		{"409", http.StatusConflict, `{}`, ""},
		{"413", http.StatusRequestEntityTooLarge, ``, ""},
		{"422", http.StatusUnprocessableEntity, `{"detail": "Enter a valid phone number."}`, "Enter a valid phone number."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			server := newScriptServer(t, reply(tc.status, tc.body), replyOK())
			client := newTestClient(t, fastOptions(server.URL))

			result, err := client.Put(testContext(t), testContactID, []byte(`{"email":"ada@example.com"}`))
			if !errors.Is(err, ErrRejected) {
				t.Fatalf("Put error = %v, want ErrRejected", err)
			}
			if errors.Is(err, ErrNotFound) {
				t.Errorf("Put error %v also matches ErrNotFound", err)
			}
			var statusErr *StatusError
			if !errors.As(err, &statusErr) {
				t.Fatalf("Put error %v is not a *StatusError", err)
			}
			if statusErr.Status != tc.status || statusErr.Detail != tc.wantDetail {
				t.Errorf("StatusError = %+v, want Status %d and Detail %q", statusErr, tc.status, tc.wantDetail)
			}
			if strings.Contains(err.Error(), "ada@example.com") {
				t.Errorf("Put error %q contains the email from the body", err)
			}
			if result.Attempts != 1 {
				t.Errorf("Attempts = %d, want 1", result.Attempts)
			}
			if got := len(server.Requests()); got != 1 {
				t.Errorf("server received %d requests, want 1", got)
			}
		})
	}
}

// Put must report success only when the API stored the PUT. net/http
// follows a 301, 302 or 303 by sending a GET without the body, so following
// one turns the update into a read that returns 200.
func TestPutDoesNotFollowRedirectAsGet(t *testing.T) {
	t.Parallel()

	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()

			server := newScriptServer(t, reply(status, ``, "Location", "/moved/"), replyOK())
			client := newTestClient(t, fastOptions(server.URL))

			_, err := client.Put(testContext(t), testContactID, []byte(`{"name":"Ada"}`))
			if err == nil {
				t.Errorf("Put returned nil after an HTTP %d redirect, though the API never stored the update", status)
			}
			for i, request := range server.Requests() {
				if request.Method != http.MethodPut {
					t.Errorf("request %d to %s used %s, want only PUT", i+1, request.Path, request.Method)
				}
			}
		})
	}
}

func TestPutCanceledDuringOutage(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		status   int
		wantKind error
	}{
		{"503", http.StatusServiceUnavailable, ErrTransient},
		{"401", http.StatusUnauthorized, ErrUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			server := newScriptServer(t, reply(tc.status, `{}`))
			ctx, cancel := context.WithCancel(testContext(t))
			defer cancel()

			const cancelAfter = 3
			opts := fastOptions(server.URL)
			opts.OnAttempt = func(a Attempt) {
				if a.Number == cancelAfter {
					cancel()
				}
			}
			client := newTestClient(t, opts)

			result, err := client.Put(ctx, testContactID, []byte(`{}`))
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Put error = %v, want context.Canceled", err)
			}
			if !errors.Is(err, tc.wantKind) {
				t.Errorf("Put error = %v, want the last attempt's %v joined", err, tc.wantKind)
			}
			if !strings.Contains(err.Error(), testContactID) {
				t.Errorf("Put error %q does not name the contact_id", err)
			}
			if result.Attempts != cancelAfter || result.Status != tc.status {
				t.Errorf("result = %+v, want %d attempts with status %d", result, cancelAfter, tc.status)
			}
			if got := len(server.Requests()); got != cancelAfter {
				t.Errorf("server received %d requests, want %d", got, cancelAfter)
			}
		})
	}
}

func TestPutRejectsInvalidContactID(t *testing.T) {
	t.Parallel()

	server := newScriptServer(t, replyOK())
	var hooks hookRecorder
	opts := fastOptions(server.URL)
	hooks.install(&opts)
	client := newTestClient(t, opts)

	ids := []string{
		"",
		"../x",
		"a/b",
		"%2F",
		"?x=1",
		"{" + testContactID + "}",
		testContactID + "/",
		"3f2b6c1e-8a4d-4c6b-9e2f-1a2b3c4d5e6/",
		"3f2b6c1e-8a4d-4c6b-9e2f-1a2b3c4d5e6?",
		"00000000-0000-0000-0000-000000000000",
	}
	for _, id := range ids {
		result, err := client.Put(testContext(t), id, []byte(`{}`))
		if !errors.Is(err, contact.ErrInvalidEvent) {
			t.Errorf("Put(%q) error = %v, want contact.ErrInvalidEvent", id, err)
		}
		if result.Attempts != 0 {
			t.Errorf("Put(%q) made %d attempts, want 0", id, result.Attempts)
		}
	}

	if got := len(server.Requests()); got != 0 {
		t.Errorf("server received %d requests, want 0", got)
	}
	if got := len(hooks.Attempts()); got != 0 {
		t.Errorf("OnAttempt was called %d times, want 0", got)
	}
}

func TestPutLowercasesContactID(t *testing.T) {
	t.Parallel()

	server := newScriptServer(t, replyOK())
	var hooks hookRecorder
	opts := fastOptions(server.URL)
	hooks.install(&opts)
	client := newTestClient(t, opts)

	if _, err := client.Put(testContext(t), strings.ToUpper(testContactID), []byte(`{}`)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	requests := server.Requests()
	if len(requests) != 1 {
		t.Fatalf("server received %d requests, want 1", len(requests))
	}
	if want := "/contact/" + testContactID + "/"; requests[0].Path != want {
		t.Errorf("path = %s, want %s", requests[0].Path, want)
	}
	if attempts := hooks.Attempts(); len(attempts) != 1 || attempts[0].ContactID != testContactID {
		t.Errorf("attempts = %+v, want one for contact_id %s", attempts, testContactID)
	}
}

func TestPutFuncBuildsBodyOnce(t *testing.T) {
	t.Parallel()

	server := newScriptServer(t, reply(503, `{}`), hangUp(t), reply(500, `{}`), replyOK())
	client := newTestClient(t, fastOptions(server.URL))

	body := []byte(`{"surname":"Lovelace"}`)
	var calls atomic.Int32
	result, err := client.PutFunc(testContext(t), testContactID, func() []byte {
		calls.Add(1)
		return body
	})
	if err != nil {
		t.Fatalf("PutFunc: %v", err)
	}
	if result.Attempts != 4 {
		t.Errorf("Attempts = %d, want 4", result.Attempts)
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("body was called %d times, want 1", got)
	}

	requests := server.Requests()
	if len(requests) != 4 {
		t.Fatalf("server received %d requests, want 4", len(requests))
	}
	for i, request := range requests {
		if !bytes.Equal(request.Body, body) {
			t.Errorf("request %d body = %s, want %s", i+1, request.Body, body)
		}
	}
}

// PutFunc promises to call body once. That must hold even when body
// returns a nil slice, as a caller may for an update with nothing in it.
func TestPutFuncBuildsNilBodyOnce(t *testing.T) {
	t.Parallel()

	server := newScriptServer(t, reply(503, `{}`), reply(503, `{}`), replyOK())
	client := newTestClient(t, fastOptions(server.URL))

	var calls atomic.Int32
	_, err := client.PutFunc(testContext(t), testContactID, func() []byte {
		calls.Add(1)
		return nil
	})
	if err != nil {
		t.Fatalf("PutFunc: %v", err)
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("body was called %d times over 3 attempts, want 1", got)
	}
}

func TestPutFuncSkipsBodyForInvalidID(t *testing.T) {
	t.Parallel()

	server := newScriptServer(t, replyOK())
	client := newTestClient(t, fastOptions(server.URL))

	var calls atomic.Int32
	_, err := client.PutFunc(testContext(t), "a/b", func() []byte {
		calls.Add(1)
		return []byte(`{}`)
	})
	if !errors.Is(err, contact.ErrInvalidEvent) {
		t.Errorf("PutFunc error = %v, want contact.ErrInvalidEvent", err)
	}
	if got := calls.Load(); got != 0 {
		t.Errorf("body was called %d times, want 0", got)
	}
}

func TestPutLimitsResponseBytes(t *testing.T) {
	t.Parallel()

	const hugeSize = 10 << 20
	hugeDetail := `{"detail": "` + strings.Repeat("x", hugeSize) + `"}`
	server := newScriptServer(t, reply(http.StatusInternalServerError, hugeDetail), replyOK())
	var hooks hookRecorder
	opts := fastOptions(server.URL)
	hooks.install(&opts)
	client := newTestClient(t, opts)

	result, err := client.Put(testContext(t), testContactID, []byte(`{}`))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if result.Attempts != 2 {
		t.Errorf("Attempts = %d, want 2", result.Attempts)
	}

	// Had Put read the whole response, the detail would be 10 MB of x. Read
	// up to MaxResponseBytes, the JSON is cut short and has no detail.
	attempts := hooks.Attempts()
	if len(attempts) != 2 {
		t.Fatalf("OnAttempt was called %d times, want 2", len(attempts))
	}
	var statusErr *StatusError
	if !errors.As(attempts[0].Err, &statusErr) {
		t.Fatalf("first attempt error %v is not a *StatusError", attempts[0].Err)
	}
	if statusErr.Status != http.StatusInternalServerError || statusErr.Detail != "" {
		t.Errorf("first attempt = HTTP %d with a %d-byte detail, want HTTP 500 and no detail", statusErr.Status, len(statusErr.Detail))
	}
}

func TestPutReadsDetailWithinLimit(t *testing.T) {
	t.Parallel()

	body := `{"detail": "Enter a valid phone number."}` // 42 bytes
	tests := []struct {
		limit      int64
		wantDetail string
	}{
		{int64(len(body)), "Enter a valid phone number."},
		{int64(len(body)) - 1, ""},
	}
	for _, tc := range tests {
		server := newScriptServer(t, reply(http.StatusUnprocessableEntity, body))
		opts := fastOptions(server.URL)
		opts.MaxResponseBytes = tc.limit
		client := newTestClient(t, opts)

		result, err := client.Put(testContext(t), testContactID, []byte(`{}`))
		if !errors.Is(err, ErrRejected) {
			t.Errorf("limit %d: Put error = %v, want ErrRejected", tc.limit, err)
		}
		if result.Detail != tc.wantDetail {
			t.Errorf("limit %d: Detail = %q, want %q", tc.limit, result.Detail, tc.wantDetail)
		}
	}
}
