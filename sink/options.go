package sink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults of Options.
const (
	DefaultPathTemplate     = "/contact/{contact_id}/"
	DefaultTimeout          = 10 * time.Second
	DefaultInitialInterval  = 500 * time.Millisecond
	DefaultMaxInterval      = 30 * time.Second
	DefaultMaxRetryAfter    = 5 * time.Minute
	DefaultMaxResponseBytes = 64 << 10
	DefaultMaxConnsPerHost  = 256
)

// contactIDPlaceholder is the part of the path template replaced by the
// path-escaped contact_id.
const contactIDPlaceholder = "{contact_id}"

// Options configures a Client. A zero field takes its default; BaseURL and
// Token are required.
type Options struct {
	// BaseURL is the API's scheme, host and optional path prefix, such as
	// https://api.example.com/v1.
	BaseURL string

	// PathTemplate is appended to BaseURL, with {contact_id} replaced by the
	// path-escaped contact_id; default /contact/{contact_id}/.
	PathTemplate string

	// Token supplies the bearer token of each request.
	Token TokenSource

	// RateLimit is the most requests per second the client sends, retries
	// included, across all goroutines; 0 means unlimited.
	RateLimit float64

	// RateBurst is how many requests may go at once above the steady rate;
	// default 1. The limiter grants at most RateLimit + RateBurst requests
	// in any one-second window. Network delays can shift arrival times at
	// the API, so a request may land in a later window than its grant.
	// Keep rate + burst a little under the API's hard limit.
	RateBurst int

	// Timeout bounds one attempt, from sending the request to reading the
	// response; default 10s.
	Timeout time.Duration

	// InitialInterval and MaxInterval shape the exponential backoff between
	// retries; defaults 500ms and 30s. Each delay is randomised by ±50%.
	InitialInterval time.Duration
	MaxInterval     time.Duration

	// MaxRetryAfter caps the delay a Retry-After header can impose;
	// default 5m.
	MaxRetryAfter time.Duration

	// MaxResponseBytes caps how much of a response is read; default 64 KiB.
	MaxResponseBytes int64

	// CAFile is a PEM bundle of extra certificate authorities trusted for
	// HTTPS, added to the system pool; "" uses the system pool only.
	CAFile string

	// HTTPClient, when set, is used as is and Timeout, CAFile and the
	// connection pool settings are ignored. Tests use it.
	HTTPClient *http.Client

	// OnAttempt, when set, is called after every attempt.
	OnAttempt func(Attempt)

	// OnRetry, when set, is called before waiting to retry a failed attempt,
	// with the delay about to be waited.
	OnRetry func(attempt Attempt, delay time.Duration)

	// OnRateWait, when set, is called with how long a request waited for
	// the rate limiter or a Retry-After pause, when it waited at all.
	OnRateWait func(time.Duration)
}

func (o *Options) setDefaults() {
	if o.PathTemplate == "" {
		o.PathTemplate = DefaultPathTemplate
	}
	if o.RateBurst == 0 {
		o.RateBurst = 1
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.InitialInterval == 0 {
		o.InitialInterval = DefaultInitialInterval
	}
	if o.MaxInterval == 0 {
		o.MaxInterval = DefaultMaxInterval
	}
	if o.MaxRetryAfter == 0 {
		o.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if o.MaxResponseBytes == 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
}

// validate returns an error naming the first invalid option.
func (o *Options) validate() error {
	base, err := url.Parse(o.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("sink: base URL %q is not an absolute http or https URL", o.BaseURL)
	}
	if base.RawQuery != "" || base.Fragment != "" {
		return fmt.Errorf("sink: base URL %q must not have a query or fragment", o.BaseURL)
	}
	if !strings.HasPrefix(o.PathTemplate, "/") || strings.Count(o.PathTemplate, contactIDPlaceholder) != 1 {
		return fmt.Errorf("sink: path template %q must start with / and contain %s once", o.PathTemplate, contactIDPlaceholder)
	}
	if strings.ContainsAny(o.PathTemplate, "?#") {
		return fmt.Errorf("sink: path template %q must not have a query or fragment", o.PathTemplate)
	}
	if o.Token == nil {
		return errors.New("sink: a token source is required")
	}
	if o.RateLimit < 0 {
		return fmt.Errorf("sink: rate limit %v must be 0 (unlimited) or positive", o.RateLimit)
	}
	if o.RateBurst < 1 {
		return fmt.Errorf("sink: rate burst %d must be at least 1", o.RateBurst)
	}
	if o.InitialInterval < 0 || o.MaxInterval < o.InitialInterval {
		return fmt.Errorf("sink: backoff intervals %s..%s must be positive and ordered", o.InitialInterval, o.MaxInterval)
	}
	return nil
}

// newHTTPClient builds the client used when Options.HTTPClient is nil: a
// connection pool sized for many concurrent PUTs to one host, and TLS that
// always verifies certificates.
func newHTTPClient(opts Options) (*http.Client, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = DefaultMaxConnsPerHost
	transport.MaxIdleConnsPerHost = DefaultMaxConnsPerHost

	if opts.CAFile != "" {
		pool, err := loadCAPool(opts.CAFile)
		if err != nil {
			return nil, err
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}

	client := &http.Client{
		Transport: transport,
		Timeout:   opts.Timeout,
		// A redirect would turn the PUT into a GET that returns 200
		// without storing anything; the 3xx itself is returned instead
		// and classified as a rejection.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return client, nil
}

func loadCAPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sink: read CA bundle: %w", err)
	}

	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("sink: CA bundle %s contains no PEM certificate; expected PEM-encoded CA certificates", path)
	}
	return pool, nil
}
