package sink

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewRejectsInvalidOptions(t *testing.T) {
	t.Parallel()

	missingCA := filepath.Join(t.TempDir(), "missing-ca.pem")
	notPEM := filepath.Join(t.TempDir(), "not-a-ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatalf("write CA file: %v", err)
	}

	tests := []struct {
		name     string
		change   func(*Options)
		wantText string
	}{
		{"relative base URL", func(o *Options) { o.BaseURL = "/api/v1" }, `"/api/v1"`},
		{"base URL without scheme", func(o *Options) { o.BaseURL = "api.example.com" }, `"api.example.com"`},
		{"base URL with FTP scheme", func(o *Options) { o.BaseURL = "ftp://127.0.0.1/" }, `"ftp://127.0.0.1/"`},
		{"base URL without host", func(o *Options) { o.BaseURL = "http:///api" }, `"http:///api"`},
		{"base URL with query", func(o *Options) { o.BaseURL = "http://127.0.0.1/api?tenant=1" }, `"http://127.0.0.1/api?tenant=1"`},
		{"base URL with fragment", func(o *Options) { o.BaseURL = "http://127.0.0.1/api#top" }, `"http://127.0.0.1/api#top"`},
		{"template without placeholder", func(o *Options) { o.PathTemplate = "/contact/" }, `"/contact/"`},
		{"template with placeholder twice", func(o *Options) { o.PathTemplate = "/{contact_id}/{contact_id}/" }, `"/{contact_id}/{contact_id}/"`},
		{"template without leading slash", func(o *Options) { o.PathTemplate = "contact/{contact_id}/" }, `"contact/{contact_id}/"`},
		{"template with query", func(o *Options) { o.PathTemplate = "/contact/{contact_id}/?full=1" }, `"/contact/{contact_id}/?full=1"`},
		{"missing token source", func(o *Options) { o.Token = nil }, "token source"},
		{"negative rate", func(o *Options) { o.RateLimit = -1 }, "rate limit -1"},
		{"negative burst", func(o *Options) { o.RateBurst = -1 }, "rate burst -1"},
		{"negative initial interval", func(o *Options) { o.InitialInterval = -time.Second }, "-1s"},
		{"initial above max interval", func(o *Options) { o.InitialInterval, o.MaxInterval = time.Minute, time.Second }, "1m0s..1s"},
		{"missing CA file", func(o *Options) { o.CAFile = missingCA }, missingCA},
		{"CA file without PEM", func(o *Options) { o.CAFile = notPEM }, notPEM},
	}
	for _, tc := range tests {
		opts := fastOptions("http://127.0.0.1:1")
		tc.change(&opts)

		client, err := New(opts)
		if err == nil {
			t.Errorf("%s: New returned no error", tc.name)
			continue
		}
		if client != nil {
			t.Errorf("%s: New returned a client along with error %v", tc.name, err)
		}
		if !strings.Contains(err.Error(), tc.wantText) {
			t.Errorf("%s: New error %q does not contain %q", tc.name, err, tc.wantText)
		}
	}
}

func TestNewAppliesDefaults(t *testing.T) {
	t.Parallel()

	client := newTestClient(t, Options{BaseURL: "https://127.0.0.1:1/api/", Token: StaticToken(testToken)})
	got := client.opts
	if got.PathTemplate != DefaultPathTemplate {
		t.Errorf("PathTemplate = %q, want %q", got.PathTemplate, DefaultPathTemplate)
	}
	if got.RateBurst != 1 {
		t.Errorf("RateBurst = %d, want 1", got.RateBurst)
	}
	if got.Timeout != DefaultTimeout || got.InitialInterval != DefaultInitialInterval || got.MaxInterval != DefaultMaxInterval {
		t.Errorf("Timeout, InitialInterval, MaxInterval = %v, %v, %v; want %v, %v, %v",
			got.Timeout, got.InitialInterval, got.MaxInterval, DefaultTimeout, DefaultInitialInterval, DefaultMaxInterval)
	}
	if got.MaxRetryAfter != DefaultMaxRetryAfter || got.MaxResponseBytes != DefaultMaxResponseBytes {
		t.Errorf("MaxRetryAfter, MaxResponseBytes = %v, %d; want %v, %d",
			got.MaxRetryAfter, got.MaxResponseBytes, DefaultMaxRetryAfter, DefaultMaxResponseBytes)
	}
	if client.baseURL != "https://127.0.0.1:1/api" {
		t.Errorf("base URL = %q, want the trailing slash trimmed", client.baseURL)
	}
	if client.httpClient.Timeout != DefaultTimeout {
		t.Errorf("HTTP client timeout = %v, want %v", client.httpClient.Timeout, DefaultTimeout)
	}
}

// newTLSServer starts an HTTPS server on 127.0.0.1 with a self-signed
// certificate, writes that certificate as PEM to a file and returns the
// server and the file's path.
func newTLSServer(t *testing.T, handler http.Handler) (*httptest.Server, string) {
	t.Helper()

	server := httptest.NewUnstartedServer(handler)
	// Handshakes the client rejects would otherwise be logged to stderr.
	server.Config.ErrorLog = log.New(io.Discard, "", 0)
	server.StartTLS()
	t.Cleanup(server.Close)

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate().Raw})
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatalf("write CA file: %v", err)
	}
	return server, caFile
}

func TestPutTrustsCAFile(t *testing.T) {
	t.Parallel()

	server, caFile := newTLSServer(t, replyOK())
	opts := fastOptions(server.URL)
	opts.CAFile = caFile
	client := newTestClient(t, opts)

	result, err := client.Put(testContext(t), testContactID, []byte(`{}`))
	if err != nil {
		t.Fatalf("Put over HTTPS with CAFile: %v", err)
	}
	if result.Attempts != 1 || result.Status != http.StatusOK {
		t.Errorf("result = %+v, want 1 attempt with status 200", result)
	}
}

func TestPutRetriesUntrustedCertificate(t *testing.T) {
	t.Parallel()

	server, _ := newTLSServer(t, replyOK())
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()

	const cancelAfter = 2
	var hooks hookRecorder
	opts := fastOptions(server.URL)
	hooks.install(&opts)
	recordAttempt := opts.OnAttempt
	opts.OnAttempt = func(a Attempt) {
		recordAttempt(a)
		if a.Number == cancelAfter {
			cancel()
		}
	}
	client := newTestClient(t, opts)

	result, err := client.Put(ctx, testContactID, []byte(`{}`))
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrTransient) {
		t.Errorf("Put error = %v, want context.Canceled joined with ErrTransient", err)
	}
	var unknownAuthority x509.UnknownAuthorityError
	if !errors.As(err, &unknownAuthority) {
		t.Errorf("Put error = %v, want an x509.UnknownAuthorityError in its chain", err)
	}
	if err != nil && !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Put error %q does not mention the certificate", err)
	}
	if result.Attempts != cancelAfter {
		t.Errorf("Attempts = %d, want %d", result.Attempts, cancelAfter)
	}
}

// With HTTPClient set, New uses it as is and ignores CAFile, so a CAFile
// that does not exist is no error.
func TestNewUsesGivenHTTPClient(t *testing.T) {
	t.Parallel()

	server, _ := newTLSServer(t, replyOK())
	opts := fastOptions(server.URL)
	opts.HTTPClient = server.Client()
	opts.CAFile = filepath.Join(t.TempDir(), "missing-ca.pem")
	client := newTestClient(t, opts)

	if client.httpClient != opts.HTTPClient {
		t.Error("New did not use Options.HTTPClient")
	}
	if _, err := client.Put(testContext(t), testContactID, []byte(`{}`)); err != nil {
		t.Errorf("Put through the given HTTP client: %v", err)
	}
}
