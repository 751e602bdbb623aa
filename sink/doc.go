// Package sink sends partial contact updates to the contact API as
// PUT {base URL}/contact/{contact_id}/, under a process-wide rate limit,
// retrying transient failures with exponential backoff and jitter.
//
// How a response is classified:
//   - 2xx: success.
//   - 400 whose detail is "Contact (<id>) not found", and any 404:
//     permanent, ErrNotFound.
//   - 401 and 403: the token was refused. The client asks its TokenSource
//     for a fresh token and retries; it never gives up on this alone.
//   - 408, 429, 500, 502, 503, 504, network errors and timeouts: transient,
//     retried until the context ends. A 429 or 503 pauses every request of
//     the client, not just the one that got it, for the retry delay: the
//     Retry-After header when it asks for longer than the backoff.
//   - Any other 4xx (or other status): permanent, ErrRejected.
//
// The package never logs; callers observe attempts, retries and rate-limit
// waits through the hooks in Options.
package sink
