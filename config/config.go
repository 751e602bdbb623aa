// Package config reads the worker's settings from CONTACT_SYNC_*
// environment variables and validates them. An invalid or missing value
// is an error that names the variable and the expected form.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Config holds every setting of `contact-sync run`. Each field's env tag
// names its variable, envDefault its default, and help the expected form.
type Config struct {
	NATSURL          string `env:"CONTACT_SYNC_NATS_URL" envDefault:"nats://127.0.0.1:4222" help:"NATS server URL(s), comma-separated, nats:// or tls://"`
	NATSCredsFile    string `env:"CONTACT_SYNC_NATS_CREDS_FILE" help:"path of a NATS credentials file (JWT and NKey seed); empty for none"`
	NATSNKeyFile     string `env:"CONTACT_SYNC_NATS_NKEY_FILE" help:"path of an NKey seed file for NKey authentication; empty for none"`
	NATSCAFile       string `env:"CONTACT_SYNC_NATS_CA_FILE" help:"PEM bundle of CAs trusted for TLS to NATS; empty uses the system pool"`
	NATSCertFile     string `env:"CONTACT_SYNC_NATS_CERT_FILE" help:"client certificate (PEM) for mutual TLS to NATS; needs CONTACT_SYNC_NATS_KEY_FILE"`
	NATSKeyFile      string `env:"CONTACT_SYNC_NATS_KEY_FILE" help:"client private key (PEM) for mutual TLS to NATS"`
	Stream           string `env:"CONTACT_SYNC_STREAM" envDefault:"CONTACTS" help:"stream of change events"`
	DeadLetterStream string `env:"CONTACT_SYNC_DEADLETTER_STREAM" envDefault:"CONTACTS_DEADLETTER" help:"stream of dead letters"`
	Consumer         string `env:"CONTACT_SYNC_CONSUMER" envDefault:"contact-sync" help:"durable pull consumer name"`
	Provision        bool   `env:"CONTACT_SYNC_PROVISION" envDefault:"true" help:"true creates or updates both streams and the consumer at start; false only binds to them"`

	APIBaseURL    string        `env:"CONTACT_SYNC_API_BASE_URL" help:"contact API base URL, http(s)://host[/prefix]; required"`
	APIPath       string        `env:"CONTACT_SYNC_API_PATH" envDefault:"/contact/{contact_id}/" help:"path template appended to the base URL; must contain {contact_id}"`
	APIToken      string        `env:"CONTACT_SYNC_API_TOKEN" help:"bearer token; set this or CONTACT_SYNC_API_TOKEN_FILE"`
	APITokenFile  string        `env:"CONTACT_SYNC_API_TOKEN_FILE" help:"file holding the bearer token, re-read after a 401 or 403 (for rotated Kubernetes Secrets)"`
	APITimeout    time.Duration `env:"CONTACT_SYNC_API_TIMEOUT" envDefault:"10s" help:"timeout of one request, a Go duration such as 10s"`
	APICAFile     string        `env:"CONTACT_SYNC_API_CA_FILE" help:"PEM bundle of extra CAs trusted for HTTPS to the API"`
	RateLimit     float64       `env:"CONTACT_SYNC_RATE_LIMIT" envDefault:"10" help:"requests per second to the API for the whole process, retries included; 0 means unlimited"`
	RateBurst     int           `env:"CONTACT_SYNC_RATE_BURST" envDefault:"5" help:"requests allowed at once above the rate; at least 1"`
	Concurrency   int           `env:"CONTACT_SYNC_CONCURRENCY" envDefault:"32" help:"maximum number of PUTs in flight at once; at least 1"`
	MergeWindow   time.Duration `env:"CONTACT_SYNC_MERGE_WINDOW" envDefault:"0s" help:"how long a contact's first pending event waits for more to merge, a Go duration"`
	RetryInitial  time.Duration `env:"CONTACT_SYNC_RETRY_INITIAL_INTERVAL" envDefault:"500ms" help:"first delay between retries, a Go duration"`
	RetryMax      time.Duration `env:"CONTACT_SYNC_RETRY_MAX_INTERVAL" envDefault:"30s" help:"maximum delay between retries, a Go duration"`
	AckWait       time.Duration `env:"CONTACT_SYNC_ACK_WAIT" envDefault:"30s" help:"consumer ack wait, a Go duration of at least 1s"`
	MaxAckPending int           `env:"CONTACT_SYNC_MAX_ACK_PENDING" envDefault:"20000" help:"maximum number of messages delivered and not yet acked, which bounds what the worker holds; at least 1"`
	FetchBatch    int           `env:"CONTACT_SYNC_FETCH_BATCH" envDefault:"2000" help:"messages the client buffers ahead of the worker; at least 1"`
	DrainTimeout  time.Duration `env:"CONTACT_SYNC_DRAIN_TIMEOUT" envDefault:"25s" help:"how long a shutdown waits for PUTs in flight, a Go duration"`

	HTTPAddr  string `env:"CONTACT_SYNC_HTTP_ADDR" envDefault:"127.0.0.1:8080" help:"host:port of /metrics, /livez and /readyz; use :8080 in a container"`
	LogLevel  string `env:"CONTACT_SYNC_LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error"`
	LogFormat string `env:"CONTACT_SYNC_LOG_FORMAT" envDefault:"json" help:"json, or console for people reading a terminal"`
}

// Setting describes one environment variable, for help texts and docs.
type Setting struct {
	Variable string
	Default  string
	Help     string
}

// Settings lists every variable Config reads, in declaration order.
func Settings() []Setting {
	configType := reflect.TypeFor[Config]()
	settings := make([]Setting, 0, configType.NumField())
	for field := range configType.Fields() {
		settings = append(settings, Setting{
			Variable: field.Tag.Get("env"),
			Default:  field.Tag.Get("envDefault"),
			Help:     field.Tag.Get("help"),
		})
	}
	return settings
}

// Load reads the settings from environ (a map of variable to value; use
// FromEnviron for os.Environ) and validates them.
func Load(environ map[string]string) (Config, error) {
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ}); err != nil {
		return Config{}, explainParseError(err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// FromEnviron turns os.Environ's KEY=value list into a map.
func FromEnviron(environ []string) map[string]string {
	values := make(map[string]string, len(environ))
	for _, entry := range environ {
		key, value, _ := strings.Cut(entry, "=")
		values[key] = value
	}
	return values
}

// explainParseError rewrites the library's errors, which name struct
// fields, into ones that name the variable, the bad value's problem and
// the expected form.
func explainParseError(err error) error {
	var aggregate env.AggregateError
	if !errors.As(err, &aggregate) {
		return fmt.Errorf("read settings: %w", err)
	}

	var explained []error
	for _, item := range aggregate.Errors {
		var parseErr env.ParseError
		if errors.As(item, &parseErr) {
			setting := settingOfField(parseErr.Name)
			explained = append(explained, fmt.Errorf("%s is invalid (%v): expected %s", setting.Variable, parseErr.Err, setting.Help))
			continue
		}
		explained = append(explained, item)
	}
	return errors.Join(explained...)
}

func settingOfField(fieldName string) Setting {
	field, _ := reflect.TypeFor[Config]().FieldByName(fieldName)
	return Setting{Variable: field.Tag.Get("env"), Default: field.Tag.Get("envDefault"), Help: field.Tag.Get("help")}
}

// Validate checks values that parse but make no sense. Each error names the
// variable and the expected form; all problems are reported at once.
func (c *Config) Validate() error {
	var problems []error
	add := func(variable, format string, args ...any) {
		problems = append(problems, fmt.Errorf("%s %s", variable, fmt.Sprintf(format, args...)))
	}

	if c.APIBaseURL == "" {
		add("CONTACT_SYNC_API_BASE_URL", "is missing: set it to the contact API's base URL, such as https://api.example.com")
	} else if base, err := url.Parse(c.APIBaseURL); err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		add("CONTACT_SYNC_API_BASE_URL", "%q is invalid: expected an absolute http(s) URL such as https://api.example.com", c.APIBaseURL)
	}
	if !strings.HasPrefix(c.APIPath, "/") || strings.Count(c.APIPath, "{contact_id}") != 1 || strings.ContainsAny(c.APIPath, "?#") {
		add("CONTACT_SYNC_API_PATH", "%q is invalid: expected a path starting with / that contains {contact_id} once, such as /contact/{contact_id}/", c.APIPath)
	}
	switch {
	case c.APIToken == "" && c.APITokenFile == "":
		add("CONTACT_SYNC_API_TOKEN", "is missing: set it, or CONTACT_SYNC_API_TOKEN_FILE to a file holding the token")
	case c.APIToken != "" && c.APITokenFile != "":
		add("CONTACT_SYNC_API_TOKEN", "and CONTACT_SYNC_API_TOKEN_FILE are both set: set only one")
	}

	if c.RateLimit < 0 {
		add("CONTACT_SYNC_RATE_LIMIT", "%v is invalid: expected requests per second, 0 (unlimited) or more", c.RateLimit)
	}
	if c.RateBurst < 1 {
		add("CONTACT_SYNC_RATE_BURST", "%d is invalid: expected an integer of at least 1", c.RateBurst)
	}
	if c.Concurrency < 1 {
		add("CONTACT_SYNC_CONCURRENCY", "%d is invalid: expected an integer of at least 1", c.Concurrency)
	}
	if c.FetchBatch < 1 {
		add("CONTACT_SYNC_FETCH_BATCH", "%d is invalid: expected an integer of at least 1", c.FetchBatch)
	}
	if c.MaxAckPending < 1 {
		add("CONTACT_SYNC_MAX_ACK_PENDING", "%d is invalid: expected an integer of at least 1", c.MaxAckPending)
	}
	if c.AckWait < time.Second {
		add("CONTACT_SYNC_ACK_WAIT", "%s is invalid: expected a duration of at least 1s", c.AckWait)
	}
	checkPositive := func(variable string, d time.Duration) {
		if d <= 0 {
			add(variable, "%s is invalid: expected a positive duration such as 10s", d)
		}
	}
	checkPositive("CONTACT_SYNC_API_TIMEOUT", c.APITimeout)
	checkPositive("CONTACT_SYNC_RETRY_INITIAL_INTERVAL", c.RetryInitial)
	checkPositive("CONTACT_SYNC_DRAIN_TIMEOUT", c.DrainTimeout)
	if c.RetryMax < c.RetryInitial {
		add("CONTACT_SYNC_RETRY_MAX_INTERVAL", "%s is invalid: expected at least CONTACT_SYNC_RETRY_INITIAL_INTERVAL (%s)", c.RetryMax, c.RetryInitial)
	}
	if c.MergeWindow < 0 {
		add("CONTACT_SYNC_MERGE_WINDOW", "%s is invalid: expected 0 or a positive duration", c.MergeWindow)
	}
	if (c.NATSCertFile == "") != (c.NATSKeyFile == "") {
		add("CONTACT_SYNC_NATS_CERT_FILE", "and CONTACT_SYNC_NATS_KEY_FILE must be set together for mutual TLS")
	}
	if c.NATSCredsFile != "" && c.NATSNKeyFile != "" {
		add("CONTACT_SYNC_NATS_CREDS_FILE", "and CONTACT_SYNC_NATS_NKEY_FILE are both set: set only one")
	}

	problems = append(problems, c.validateNames()...)
	return errors.Join(problems...)
}
