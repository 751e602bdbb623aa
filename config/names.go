package config

import (
	"fmt"
	"strings"
)

func (c *Config) validateNames() []error {
	var problems []error
	checkName := func(variable, value string) {
		if value == "" || strings.ContainsAny(value, " \t.*>/\\") {
			problems = append(problems, fmt.Errorf("%s %q is invalid: expected a JetStream name without spaces, dots, wildcards or slashes", variable, value))
		}
	}
	checkName("CONTACT_SYNC_STREAM", c.Stream)
	checkName("CONTACT_SYNC_DEADLETTER_STREAM", c.DeadLetterStream)
	checkName("CONTACT_SYNC_CONSUMER", c.Consumer)

	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		problems = append(problems, fmt.Errorf("CONTACT_SYNC_LOG_LEVEL %q is invalid: expected debug, info, warn or error", c.LogLevel))
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		problems = append(problems, fmt.Errorf("CONTACT_SYNC_LOG_FORMAT %q is invalid: expected json or console", c.LogFormat))
	}
	return problems
}

// LogFields returns the effective settings for the start-up log line, with
// the token replaced by whether it is set and URLs stripped of passwords.
func (c *Config) LogFields() map[string]any {
	return map[string]any{
		"nats_url":          redactURLs(c.NATSURL),
		"nats_creds_file":   c.NATSCredsFile,
		"nats_nkey_file":    c.NATSNKeyFile,
		"nats_tls":          c.NATSCAFile != "" || c.NATSCertFile != "" || strings.Contains(c.NATSURL, "tls://"),
		"stream":            c.Stream,
		"deadletter_stream": c.DeadLetterStream,
		"consumer":          c.Consumer,
		"provision":         c.Provision,
		"api_base_url":      redactURLs(c.APIBaseURL),
		"api_path":          c.APIPath,
		"api_token":         redactedToken(c.APIToken),
		"api_token_file":    c.APITokenFile,
		"api_timeout":       c.APITimeout.String(),
		"api_ca_file":       c.APICAFile,
		"rate_limit":        c.RateLimit,
		"rate_burst":        c.RateBurst,
		"concurrency":       c.Concurrency,
		"merge_window":      c.MergeWindow.String(),
		"retry_initial":     c.RetryInitial.String(),
		"retry_max":         c.RetryMax.String(),
		"ack_wait":          c.AckWait.String(),
		"max_ack_pending":   c.MaxAckPending,
		"drain_timeout":     c.DrainTimeout.String(),
		"http_addr":         c.HTTPAddr,
		"log_level":         c.LogLevel,
		"log_format":        c.LogFormat,
	}
}

func redactedToken(token string) string {
	if token == "" {
		return "unset"
	}
	return "set (redacted)"
}
