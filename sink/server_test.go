package sink

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// testContactID is a valid, lower-case contact_id used by most tests.
const testContactID = "3f2b6c1e-8a4d-4c6b-9e2f-1a2b3c4d5e6f"

// testToken is the bearer token fastOptions configures. It is a test
// value, not a secret.
const testToken = "test-token"

// seenRequest is what the test server recorded of one request.
type seenRequest struct {
	Method        string
	Path          string
	Authorization string
	ContentType   string
	Body          []byte
	Arrived       time.Time
}

// scriptServer is an httptest server on 127.0.0.1 that handles the n-th
// request with the n-th step of its script and repeats the last step once
// the script runs out. It records every request it receives.
type scriptServer struct {
	*httptest.Server

	mu       sync.Mutex
	steps    []http.HandlerFunc
	requests []seenRequest
}

// newScriptServer starts a scriptServer and closes it when the test ends.
func newScriptServer(t *testing.T, steps ...http.HandlerFunc) *scriptServer {
	t.Helper()
	if len(steps) == 0 {
		t.Fatal("newScriptServer needs at least one step")
	}

	s := &scriptServer{steps: steps}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *scriptServer) serve(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	body, _ := io.ReadAll(r.Body)

	s.mu.Lock()
	step := s.steps[min(len(s.requests), len(s.steps)-1)]
	s.requests = append(s.requests, seenRequest{
		Method:        r.Method,
		Path:          r.URL.EscapedPath(),
		Authorization: r.Header.Get("Authorization"),
		ContentType:   r.Header.Get("Content-Type"),
		Body:          body,
		Arrived:       arrived,
	})
	s.mu.Unlock()

	step(w, r)
}

// Requests returns a copy of the requests received so far.
func (s *scriptServer) Requests() []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenRequest(nil), s.requests...)
}

// reply returns a step that writes status, the header name and value
// pairs in headerPairs, and body.
func reply(status int, body string, headerPairs ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headerPairs); i += 2 {
			w.Header().Set(headerPairs[i], headerPairs[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// replyOK is the step of a successful PUT.
func replyOK() http.HandlerFunc {
	return reply(http.StatusOK, `{}`)
}

// hangUp returns a step that closes the connection without a response,
// which the client sees as a network error.
func hangUp(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		hijacker, isHijacker := w.(http.Hijacker)
		if !isHijacker {
			t.Error("the response writer does not support hijacking")
			return
		}
		conn, _, err := hijacker.Hijack()
		if err != nil {
			t.Errorf("hijack the connection: %v", err)
			return
		}
		_ = conn.Close()
	}
}

// fastOptions returns options for baseURL with a static token and backoff
// intervals of a few milliseconds, so that retries do not slow tests down.
func fastOptions(baseURL string) Options {
	return Options{
		BaseURL:         baseURL,
		Token:           StaticToken(testToken),
		InitialInterval: time.Millisecond,
		MaxInterval:     5 * time.Millisecond,
	}
}

// newTestClient returns a client built from opts and fails the test if New
// rejects them.
func newTestClient(t *testing.T, opts Options) *Client {
	t.Helper()

	client, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return client
}

// hookRecorder collects what the OnAttempt and OnRetry hooks receive. Its
// mutex makes it safe to share between concurrent Puts.
type hookRecorder struct {
	mu       sync.Mutex
	attempts []Attempt
	retries  []recordedRetry
}

// recordedRetry is one call of the OnRetry hook.
type recordedRetry struct {
	Attempt Attempt
	Delay   time.Duration
}

// install sets opts.OnAttempt and opts.OnRetry to record into r.
func (r *hookRecorder) install(opts *Options) {
	opts.OnAttempt = func(a Attempt) {
		r.mu.Lock()
		r.attempts = append(r.attempts, a)
		r.mu.Unlock()
	}
	opts.OnRetry = func(a Attempt, delay time.Duration) {
		r.mu.Lock()
		r.retries = append(r.retries, recordedRetry{Attempt: a, Delay: delay})
		r.mu.Unlock()
	}
}

// Attempts returns a copy of the recorded attempts.
func (r *hookRecorder) Attempts() []Attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Attempt(nil), r.attempts...)
}

// Retries returns a copy of the recorded retries.
func (r *hookRecorder) Retries() []recordedRetry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedRetry(nil), r.retries...)
}

// testContext returns a context that ends with the test or after 10
// seconds, which bounds a Put that would otherwise retry forever.
func testContext(t *testing.T) context.Context {
	t.Helper()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
