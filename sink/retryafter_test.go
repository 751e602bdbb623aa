package sink

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// putOutcome is what one Put returned.
type putOutcome struct {
	result Result
	err    error
}

// receive returns the next value of ch, or fails the test after 5 seconds.
func receive[T any](t *testing.T, ch <-chan T, description string) T {
	t.Helper()

	select {
	case value := <-ch:
		return value
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out after 5s waiting for %s", description)
		var zero T
		return zero
	}
}

// A Retry-After of 1 second must delay the retry of the Put that received
// it and hold every other Put of the client until the pause ends. The
// checks are lower bounds that the pause guarantees, not timing targets.
// The client sets the pause end after the server stamped throttledAt, so no
// request may arrive before throttledAt + 1s. A Put whose context ends at
// throttledAt + 500ms therefore cannot send anything.
func TestPutRetryAfterPausesClient(t *testing.T) {
	t.Parallel()

	const (
		idA = "aaaaaaaa-0000-4000-8000-000000000001"
		idB = "bbbbbbbb-0000-4000-8000-000000000002"
		idC = "cccccccc-0000-4000-8000-000000000003"
	)
	throttled := make(chan time.Time, 1)
	tooManyRequests := func(w http.ResponseWriter, r *http.Request) {
		throttled <- time.Now()
		reply(http.StatusTooManyRequests, `{"detail": "Request was throttled."}`, "Retry-After", "1")(w, r)
	}
	server := newScriptServer(t, tooManyRequests, replyOK())

	var hooks hookRecorder
	opts := fastOptions(server.URL)
	hooks.install(&opts)
	retrying := make(chan struct{}, 1)
	recordRetry := opts.OnRetry
	opts.OnRetry = func(a Attempt, delay time.Duration) {
		recordRetry(a, delay)
		select {
		case retrying <- struct{}{}:
		default:
		}
	}
	client := newTestClient(t, opts)

	outcomeA := make(chan putOutcome, 1)
	go func() {
		result, err := client.Put(testContext(t), idA, []byte(`{}`))
		outcomeA <- putOutcome{result, err}
	}()
	throttledAt := receive(t, throttled, "the 429 response")
	receive(t, retrying, "the OnRetry call of the throttled Put")

	ctxB, cancelB := context.WithDeadline(testContext(t), throttledAt.Add(500*time.Millisecond))
	defer cancelB()
	resultB, errB := client.Put(ctxB, idB, []byte(`{}`))
	if !errors.Is(errB, context.DeadlineExceeded) {
		t.Errorf("Put during the pause with a short deadline: error = %v, want context.DeadlineExceeded", errB)
	}
	if resultB.Attempts != 0 {
		t.Errorf("Put during the pause with a short deadline made %d attempts, want 0", resultB.Attempts)
	}

	if _, err := client.Put(testContext(t), idC, []byte(`{}`)); err != nil {
		t.Errorf("Put started during the pause: %v", err)
	}

	a := receive(t, outcomeA, "the throttled Put to return")
	if a.err != nil || a.result.Attempts != 2 {
		t.Errorf("throttled Put = %+v, %v; want 2 attempts and no error", a.result, a.err)
	}

	retries := hooks.Retries()
	if len(retries) != 1 {
		t.Fatalf("OnRetry was called %d times, want 1", len(retries))
	}
	if retries[0].Attempt.RetryAfter != time.Second {
		t.Errorf("Attempt.RetryAfter = %v, want 1s", retries[0].Attempt.RetryAfter)
	}
	if retries[0].Delay < time.Second {
		t.Errorf("OnRetry delay = %v, want at least the Retry-After of 1s", retries[0].Delay)
	}

	requests := server.Requests()
	if len(requests) != 3 {
		t.Errorf("server received %d requests, want 3: the 429, its retry and the Put started during the pause", len(requests))
	}
	pauseEnd := throttledAt.Add(time.Second)
	for i, request := range requests {
		switch request.Path {
		case "/contact/" + idB + "/":
			t.Errorf("request %d came from the Put whose context ended during the pause", i+1)
		case "/contact/" + idA + "/", "/contact/" + idC + "/":
			if i > 0 && request.Arrived.Before(pauseEnd) {
				t.Errorf("request %d to %s arrived %v after the 429, before the 1s pause ended",
					i+1, request.Path, request.Arrived.Sub(throttledAt))
			}
		}
	}
}

func TestPutRetryAfterHTTPDate(t *testing.T) {
	t.Parallel()

	unavailable := func(w http.ResponseWriter, r *http.Request) {
		retryAt := time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat)
		reply(http.StatusServiceUnavailable, `{}`, "Retry-After", retryAt)(w, r)
	}
	server := newScriptServer(t, unavailable, replyOK())

	// Canceling in OnRetry ends the Put before it waits, so the test
	// observes the delay without spending it.
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	var hooks hookRecorder
	opts := fastOptions(server.URL)
	hooks.install(&opts)
	recordRetry := opts.OnRetry
	opts.OnRetry = func(a Attempt, delay time.Duration) {
		recordRetry(a, delay)
		cancel()
	}
	client := newTestClient(t, opts)

	result, err := client.Put(ctx, testContactID, []byte(`{}`))
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrTransient) {
		t.Errorf("Put error = %v, want context.Canceled joined with ErrTransient", err)
	}
	if result.Attempts != 1 {
		t.Errorf("Attempts = %d, want 1", result.Attempts)
	}

	retries := hooks.Retries()
	if len(retries) != 1 {
		t.Fatalf("OnRetry was called %d times, want 1", len(retries))
	}
	// The date has whole seconds, so 3s from now is 2s to 3s away.
	if delay := retries[0].Delay; delay < time.Second || delay > 3*time.Second {
		t.Errorf("OnRetry delay = %v, want between 1s and 3s", delay)
	}
}

func TestPutCapsRetryAfter(t *testing.T) {
	t.Parallel()

	server := newScriptServer(t, reply(http.StatusTooManyRequests, `{}`, "Retry-After", "3600"), replyOK())
	var hooks hookRecorder
	opts := fastOptions(server.URL)
	opts.MaxRetryAfter = 20 * time.Millisecond
	hooks.install(&opts)
	client := newTestClient(t, opts)

	result, err := client.Put(testContext(t), testContactID, []byte(`{}`))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if result.Attempts != 2 {
		t.Errorf("Attempts = %d, want 2", result.Attempts)
	}

	retries := hooks.Retries()
	if len(retries) != 1 {
		t.Fatalf("OnRetry was called %d times, want 1", len(retries))
	}
	if got := retries[0].Attempt.RetryAfter; got != time.Hour {
		t.Errorf("Attempt.RetryAfter = %v, want the 1h the header asked for", got)
	}
	// The backoff is at most 1.5 × MaxInterval = 7.5ms, so the cap decides.
	if got := retries[0].Delay; got != opts.MaxRetryAfter {
		t.Errorf("OnRetry delay = %v, want MaxRetryAfter %v", got, opts.MaxRetryAfter)
	}
}

// Retry-After is honoured on 429 and 503 only; on a 500 the backoff alone
// sets the delay.
func TestPutIgnoresRetryAfterOn500(t *testing.T) {
	t.Parallel()

	server := newScriptServer(t, reply(http.StatusInternalServerError, `{}`, "Retry-After", "3600"), replyOK())
	var hooks hookRecorder
	opts := fastOptions(server.URL)
	hooks.install(&opts)
	client := newTestClient(t, opts)

	if _, err := client.Put(testContext(t), testContactID, []byte(`{}`)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	retries := hooks.Retries()
	if len(retries) != 1 {
		t.Fatalf("OnRetry was called %d times, want 1", len(retries))
	}
	if retries[0].Attempt.RetryAfter != 0 {
		t.Errorf("Attempt.RetryAfter = %v, want 0 on a 500", retries[0].Attempt.RetryAfter)
	}
	if maxDelay := opts.MaxInterval * 3 / 2; retries[0].Delay > maxDelay {
		t.Errorf("OnRetry delay = %v, want a backoff of at most %v", retries[0].Delay, maxDelay)
	}
}
