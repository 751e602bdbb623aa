package sink

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// writeTokenFile writes content to path and fails the test on error.
func writeTokenFile(t *testing.T, path, content string) {
	t.Helper()

	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("write token file: %v", err)
	}
}

func TestStaticToken(t *testing.T) {
	t.Parallel()

	source := StaticToken("static-value")
	source.Invalidate()
	got, err := source.Token(t.Context())
	if err != nil || got != "static-value" {
		t.Errorf("Token() after Invalidate = %q, %v; want the static value and no error", got, err)
	}
}

func TestFileTokenCachesUntilInvalidate(t *testing.T) {
	t.Parallel()

	path := filepath.Join(t.TempDir(), "token")
	source := NewFileToken(path)
	writeTokenFile(t, path, "  first-token\n")

	got, err := source.Token(t.Context())
	if err != nil || got != "first-token" {
		t.Fatalf("Token() = %q, %v; want the trimmed file content", got, err)
	}

	writeTokenFile(t, path, "second-token\n")
	if got, err := source.Token(t.Context()); err != nil || got != "first-token" {
		t.Errorf("Token() before Invalidate = %q, %v; want the cached first token", got, err)
	}

	source.Invalidate()
	if got, err := source.Token(t.Context()); err != nil || got != "second-token" {
		t.Errorf("Token() after Invalidate = %q, %v; want the rewritten file content", got, err)
	}
}

func TestFileTokenMissingFile(t *testing.T) {
	t.Parallel()

	path := filepath.Join(t.TempDir(), "missing-token")
	_, err := NewFileToken(path).Token(t.Context())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Token() error = %v, want fs.ErrNotExist", err)
	}
	if err != nil && !strings.Contains(err.Error(), path) {
		t.Errorf("Token() error %q does not name the path %s", err, path)
	}
}

func TestReadTokenFileEmpty(t *testing.T) {
	t.Parallel()

	for _, content := range []string{"", "\n", " \t\r\n "} {
		path := filepath.Join(t.TempDir(), "token")
		writeTokenFile(t, path, content)

		_, err := ReadTokenFile(path)
		if !errors.Is(err, ErrEmptyToken) {
			t.Errorf("ReadTokenFile(file holding %q) error = %v, want ErrEmptyToken", content, err)
		}
		if err != nil && !strings.Contains(err.Error(), path) {
			t.Errorf("ReadTokenFile error %q does not name the path %s", err, path)
		}
	}
}

func TestFileTokenConcurrentUse(t *testing.T) {
	t.Parallel()

	path := filepath.Join(t.TempDir(), "token")
	writeTokenFile(t, path, "shared-token")
	source := NewFileToken(path)

	var wg sync.WaitGroup
	var failures atomic.Int32
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if got, err := source.Token(t.Context()); err != nil || got != "shared-token" {
					failures.Add(1)
				}
				source.Invalidate()
			}
		})
	}
	wg.Wait()
	if got := failures.Load(); got != 0 {
		t.Errorf("%d of 400 concurrent Token calls failed or returned another value", got)
	}
}

func TestPutRereadsTokenFileAfterRefusal(t *testing.T) {
	t.Parallel()

	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()

			const oldToken, newToken = "old-token", "new-token"
			requireNewToken := func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer "+newToken {
					reply(status, `{"detail": "Invalid token."}`)(w, r)
					return
				}
				replyOK()(w, r)
			}
			server := newScriptServer(t, requireNewToken)

			path := filepath.Join(t.TempDir(), "token")
			writeTokenFile(t, path, oldToken+"\n")
			opts := fastOptions(server.URL)
			opts.Token = NewFileToken(path)
			opts.OnAttempt = func(a Attempt) {
				// The secret rotates after the first refusal.
				if a.Number == 1 && a.Status == status {
					writeTokenFile(t, path, newToken+"\n")
				}
			}
			client := newTestClient(t, opts)

			result, err := client.Put(testContext(t), testContactID, []byte(`{}`))
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if result.Attempts != 2 {
				t.Errorf("Attempts = %d, want 2", result.Attempts)
			}

			requests := server.Requests()
			if len(requests) != 2 {
				t.Fatalf("server received %d requests, want 2", len(requests))
			}
			if requests[0].Authorization != "Bearer "+oldToken {
				t.Error("the first request did not carry the first token of the file")
			}
			if requests[1].Authorization != "Bearer "+newToken {
				t.Error("the retry did not carry the rewritten token of the file")
			}
		})
	}
}

// countingToken is a StaticToken that counts Invalidate calls.
type countingToken struct {
	StaticToken
	invalidations atomic.Int32
}

func (c *countingToken) Invalidate() { c.invalidations.Add(1) }

func TestPutInvalidatesTokenOnlyOnRefusal(t *testing.T) {
	t.Parallel()

	server := newScriptServer(t,
		reply(http.StatusServiceUnavailable, `{}`),
		reply(http.StatusUnauthorized, `{}`),
		reply(http.StatusTooManyRequests, `{}`),
		reply(http.StatusForbidden, `{}`),
		replyOK())
	token := &countingToken{StaticToken: testToken}
	opts := fastOptions(server.URL)
	opts.Token = token
	client := newTestClient(t, opts)

	result, err := client.Put(testContext(t), testContactID, []byte(`{}`))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if result.Attempts != 5 {
		t.Errorf("Attempts = %d, want 5", result.Attempts)
	}
	if got := token.invalidations.Load(); got != 2 {
		t.Errorf("Invalidate was called %d times, want 2 (once per 401 or 403)", got)
	}
}

func TestPutRetriesTokenReadError(t *testing.T) {
	t.Parallel()

	server := newScriptServer(t, replyOK())
	path := filepath.Join(t.TempDir(), "token")
	var hooks hookRecorder
	opts := fastOptions(server.URL)
	opts.Token = NewFileToken(path)
	hooks.install(&opts)
	recordAttempt := opts.OnAttempt
	opts.OnAttempt = func(a Attempt) {
		recordAttempt(a)
		// The secret is mounted after the first attempt found no file.
		if a.Number == 1 {
			writeTokenFile(t, path, testToken)
		}
	}
	client := newTestClient(t, opts)

	result, err := client.Put(testContext(t), testContactID, []byte(`{}`))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if result.Attempts != 2 {
		t.Errorf("Attempts = %d, want 2", result.Attempts)
	}
	if got := len(server.Requests()); got != 1 {
		t.Errorf("server received %d requests, want 1", got)
	}

	attempts := hooks.Attempts()
	if len(attempts) != 2 {
		t.Fatalf("OnAttempt was called %d times, want 2", len(attempts))
	}
	first := attempts[0]
	if first.Status != 0 || !errors.Is(first.Err, ErrTransient) || !errors.Is(first.Err, fs.ErrNotExist) {
		t.Errorf("first attempt = {Status: %d, Err: %v}, want no status, ErrTransient and fs.ErrNotExist", first.Status, first.Err)
	}
}
