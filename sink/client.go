package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"golang.org/x/time/rate"

	"github.com/contact-sync/contact-sync/internal/contact"
)

// Client sends partial updates to the contact API. Create it with New; the
// zero value is not usable. A Client is safe for concurrent use, and one
// Client per process is what makes its rate limit process-wide.
type Client struct {
	opts       Options
	baseURL    string
	httpClient *http.Client
	limiter    *rate.Limiter
	pause      *pauseGate
}

// Attempt describes one request of a Put.
type Attempt struct {
	// ContactID is the contact the request was for.
	ContactID string

	// Number counts the attempts of one Put, from 1.
	Number int

	// Status is the HTTP status, or 0 when no response arrived.
	Status int

	// Err is nil on success; otherwise it wraps ErrNotFound, ErrRejected,
	// ErrUnauthorized or ErrTransient.
	Err error

	// Duration is how long the request took, from sending to reading the
	// response.
	Duration time.Duration

	// RetryAfter is the delay that the response's Retry-After header requested.
	RetryAfter time.Duration
}

// Result summarises a Put.
type Result struct {
	// Attempts is how many requests were sent.
	Attempts int

	// Status is the last HTTP status, or 0 when no response arrived.
	Status int

	// Detail is the detail message of the last response.
	Detail string
}

// New returns a client after validating opts. Errors name the invalid option.
func New(opts Options) (*Client, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}

	httpClient := opts.HTTPClient
	if httpClient == nil {
		var err error
		if httpClient, err = newHTTPClient(opts); err != nil {
			return nil, err
		}
	}

	limit := rate.Inf
	if opts.RateLimit > 0 {
		limit = rate.Limit(opts.RateLimit)
	}

	client := &Client{
		opts:       opts,
		baseURL:    strings.TrimRight(opts.BaseURL, "/"),
		httpClient: httpClient,
		limiter:    rate.NewLimiter(limit, opts.RateBurst),
		pause:      &pauseGate{},
	}
	return client, nil
}

// Put sends one partial update body for a contact and retries transient
// failures until it succeeds, fails for good, or ctx ends. It is PutFunc
// with a fixed body.
func (c *Client) Put(ctx context.Context, contactID string, body []byte) (Result, error) {
	return c.PutFunc(ctx, contactID, func() []byte { return body })
}

// PutFunc sends one partial update for a contact and retries transient
// failures until it succeeds, fails for good, or ctx ends. It calls body
// once, after the first wait for the rate limiter, so that a caller can
// build the body as late as possible; every retry sends that same body.
//
// It returns nil on success. A permanent failure returns a *StatusError
// wrapping ErrNotFound or ErrRejected. When ctx ends first, PutFunc returns
// an error wrapping ctx.Err(), joined with the last attempt's error if any.
// A contact_id that is not a UUID fails at once with
// contact.ErrInvalidEvent, and nothing is sent.
func (c *Client) PutFunc(ctx context.Context, contactID string, body func() []byte) (Result, error) {
	var result Result

	canonicalID, err := contact.ParseID(contactID)
	if err != nil {
		return result, fmt.Errorf("PUT contact: %w", err)
	}
	requestURL := c.baseURL + strings.Replace(c.opts.PathTemplate, contactIDPlaceholder, url.PathEscape(canonicalID), 1)

	retryBackOff := c.newBackOff()
	var payload []byte
	var built bool
	var lastErr error
	for {
		if err := c.waitTurn(ctx); err != nil {
			return result, fmt.Errorf("PUT contact %s after %d attempts: %w", canonicalID, result.Attempts, errors.Join(err, lastErr))
		}

		if !built {
			payload, built = body(), true
		}
		attempt := c.send(ctx, requestURL, canonicalID, payload)
		result.Attempts++
		attempt.Number = result.Attempts
		result.Status = attempt.Status
		if c.opts.OnAttempt != nil {
			c.opts.OnAttempt(attempt)
		}

		var statusErr *StatusError
		if errors.As(attempt.Err, &statusErr) {
			result.Detail = statusErr.Detail
		}
		if attempt.Err == nil {
			return result, nil
		}
		if errors.Is(attempt.Err, ErrNotFound) || errors.Is(attempt.Err, ErrRejected) || errors.Is(attempt.Err, contact.ErrInvalidEvent) {
			return result, attempt.Err
		}
		lastErr = attempt.Err

		delay := c.retryDelay(retryBackOff, attempt)
		if c.opts.OnRetry != nil {
			c.opts.OnRetry(attempt, delay)
		}
		if err := sleepContext(ctx, delay); err != nil {
			return result, fmt.Errorf("PUT contact %s after %d attempts: %w", canonicalID, result.Attempts, errors.Join(err, lastErr))
		}
	}
}

// newBackOff returns the retry schedule of one Put. It never stops by
// itself: a transient outage is waited out, not turned into a dead letter.
func (c *Client) newBackOff() *backoff.ExponentialBackOff {
	schedule := backoff.NewExponentialBackOff()
	schedule.InitialInterval = c.opts.InitialInterval
	schedule.MaxInterval = c.opts.MaxInterval
	schedule.RandomizationFactor = 0.5
	schedule.Multiplier = 2
	schedule.MaxElapsedTime = 0
	schedule.Reset()
	return schedule
}

// retryDelay returns the wait before the next attempt: the backoff delay,
// or the Retry-After delay when the API asked for longer. A 429 or 503
// signals that the API is overloaded, so it also pauses every other request
// of the client for as long, which lowers the request rate until the API
// recovers.
func (c *Client) retryDelay(schedule *backoff.ExponentialBackOff, attempt Attempt) time.Duration {
	delay := schedule.NextBackOff()
	if attempt.RetryAfter > 0 {
		delay = max(delay, min(attempt.RetryAfter, c.opts.MaxRetryAfter))
	}
	if attempt.Status == http.StatusTooManyRequests || attempt.Status == http.StatusServiceUnavailable {
		c.pause.extend(time.Now().Add(delay))
	}
	return delay
}

// waitTurn waits for any Retry-After pause to end and then for a token of
// the rate limiter.
func (c *Client) waitTurn(ctx context.Context) error {
	start := time.Now()
	if err := c.pause.wait(ctx); err != nil {
		return err
	}
	if err := c.limiter.Wait(ctx); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		// The limiter gives up at once when the wait would pass the
		// deadline; report it as the deadline it is.
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}

	if waited := time.Since(start); waited > time.Millisecond && c.opts.OnRateWait != nil {
		c.opts.OnRateWait(waited)
	}
	return nil
}

// send makes one request and classifies its outcome.
func (c *Client) send(ctx context.Context, requestURL, contactID string, body []byte) (attempt Attempt) {
	attempt = Attempt{ContactID: contactID}
	start := time.Now()
	defer func() { attempt.Duration = time.Since(start) }()

	token, err := c.opts.Token.Token(ctx)
	if err != nil {
		attempt.Err = fmt.Errorf("PUT contact %s: get token: %w: %w", contactID, ErrTransient, err)
		return attempt
	}

	request, err := http.NewRequestWithContext(ctx, http.MethodPut, requestURL, bytes.NewReader(body))
	if err != nil {
		attempt.Err = fmt.Errorf("PUT contact %s: build request: %w", contactID, err)
		return attempt
	}
	request.Header.Set("Authorization", "Bearer "+token)
	request.Header.Set("Content-Type", "application/json; charset=utf-8")
	request.Header.Set("Accept", "application/json")

	response, err := c.httpClient.Do(request)
	if err != nil {
		attempt.Err = fmt.Errorf("PUT contact %s: %w: %w", contactID, ErrTransient, redactURLError(err))
		return attempt
	}
	defer response.Body.Close()

	responseBody, readErr := io.ReadAll(io.LimitReader(response.Body, c.opts.MaxResponseBytes))
	attempt.Status = response.StatusCode
	detail := ""
	if response.StatusCode < 200 || response.StatusCode > 299 {
		detail = parseDetail(responseBody)
	}
	kind := classifyStatus(response.StatusCode, detail)
	if readErr != nil && kind == nil {
		// The status reported success but the response broke off. The update may
		// or may not be stored, and a retry is safe because a PUT is
		// idempotent.
		attempt.Err = fmt.Errorf("PUT contact %s: read response: %w: %w", contactID, ErrTransient, readErr)
		return attempt
	}
	if kind == nil {
		return attempt
	}

	if errors.Is(kind, ErrUnauthorized) {
		c.opts.Token.Invalidate()
	}
	if response.StatusCode == http.StatusTooManyRequests || response.StatusCode == http.StatusServiceUnavailable {
		attempt.RetryAfter = parseRetryAfter(response.Header.Get("Retry-After"), time.Now())
	}
	attempt.Err = &StatusError{ContactID: contactID, Status: response.StatusCode, Detail: detail, Kind: kind}
	return attempt
}

// redactURLError drops the URL from a *url.Error: the URL is known to the
// caller, and keeping errors free of it keeps any credentials in a base URL
// out of logs.
func redactURLError(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return fmt.Errorf("%s: %w", urlErr.Op, urlErr.Err)
	}
	return err
}

// sleepContext waits for d or until ctx ends.
func sleepContext(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()

	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
