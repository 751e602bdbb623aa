package config_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/contact-sync/contact-sync/config"
)

// testToken is distinctive so that a leak into any output is easy to find.
const testToken = "tok-7Qz4-never-print-me"

// requiredEnviron returns the only two variables without a usable default.
func requiredEnviron() map[string]string {
	return map[string]string{
		"CONTACT_SYNC_API_BASE_URL": "https://api.example.com",
		"CONTACT_SYNC_API_TOKEN":    testToken,
	}
}

// environWith returns requiredEnviron with overrides applied. An empty
// override value removes the variable.
func environWith(overrides map[string]string) map[string]string {
	environ := requiredEnviron()
	for key, value := range overrides {
		if value == "" {
			delete(environ, key)
			continue
		}
		environ[key] = value
	}
	return environ
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := config.Load(requiredEnviron())
	if err != nil {
		t.Fatalf("Load with only the base URL and token: %v", err)
	}

	want := config.Config{
		NATSURL:          "nats://127.0.0.1:4222",
		Stream:           "CONTACTS",
		DeadLetterStream: "CONTACTS_DEADLETTER",
		Consumer:         "contact-sync",
		Provision:        true,
		APIBaseURL:       "https://api.example.com",
		APIPath:          "/contact/{contact_id}/",
		APIToken:         testToken,
		APITimeout:       10 * time.Second,
		RateLimit:        10,
		RateBurst:        5,
		Concurrency:      32,
		MergeWindow:      0,
		RetryInitial:     500 * time.Millisecond,
		RetryMax:         30 * time.Second,
		AckWait:          30 * time.Second,
		MaxAckPending:    20000,
		FetchBatch:       2000,
		DrainTimeout:     25 * time.Second,
		HTTPAddr:         "127.0.0.1:8080",
		LogLevel:         "info",
		LogFormat:        "json",
	}
	if cfg != want {
		t.Errorf("Load defaults =\n%+v\nwant\n%+v", cfg, want)
	}
}

// TestLoadDefaultsMatchSettings checks that each variable's default in
// Settings() equals the value Load gives it, so that the help text and docs
// built from Settings() are true.
func TestLoadDefaultsMatchSettings(t *testing.T) {
	cfg, err := config.Load(requiredEnviron())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	value := reflect.ValueOf(cfg)
	configType := value.Type()
	for i := range configType.NumField() {
		field := configType.Field(i)
		variable := field.Tag.Get("env")
		if _, required := requiredEnviron()[variable]; required {
			continue
		}

		setting := settingNamed(t, variable)
		got := formatValue(value.Field(i).Interface())
		if got != setting.Default {
			t.Errorf("%s: Load gives %q, Settings() documents default %q", variable, got, setting.Default)
		}
	}
}

func settingNamed(t *testing.T, variable string) config.Setting {
	t.Helper()
	for _, setting := range config.Settings() {
		if setting.Variable == variable {
			return setting
		}
	}
	t.Fatalf("Settings() has no %s", variable)
	return config.Setting{}
}

// formatValue formats a field's value as an envDefault tag writes it. The
// empty string matches a variable without a default.
func formatValue(value any) string {
	switch v := value.(type) {
	case time.Duration:
		return v.String()
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return fmt.Sprint(v)
	}
}

func TestLoadInvalidValues(t *testing.T) {
	tests := []struct {
		name     string
		environ  map[string]string
		variable string
		// expected is a fragment of the expected form that the error must
		// state.
		expected string
	}{
		{"rate not a number", map[string]string{"CONTACT_SYNC_RATE_LIMIT": "abc"}, "CONTACT_SYNC_RATE_LIMIT", "requests per second"},
		{"negative rate", map[string]string{"CONTACT_SYNC_RATE_LIMIT": "-1"}, "CONTACT_SYNC_RATE_LIMIT", "0 (unlimited) or more"},
		{"burst 0", map[string]string{"CONTACT_SYNC_RATE_BURST": "0"}, "CONTACT_SYNC_RATE_BURST", "at least 1"},
		{"concurrency 0", map[string]string{"CONTACT_SYNC_CONCURRENCY": "0"}, "CONTACT_SYNC_CONCURRENCY", "at least 1"},
		{"max ack pending 0", map[string]string{"CONTACT_SYNC_MAX_ACK_PENDING": "0"}, "CONTACT_SYNC_MAX_ACK_PENDING", "at least 1"},
		{"ack wait 500ms", map[string]string{"CONTACT_SYNC_ACK_WAIT": "500ms"}, "CONTACT_SYNC_ACK_WAIT", "at least 1s"},
		{"timeout in words", map[string]string{"CONTACT_SYNC_API_TIMEOUT": "ten seconds"}, "CONTACT_SYNC_API_TIMEOUT", "Go duration"},
		{"merge window in words", map[string]string{"CONTACT_SYNC_MERGE_WINDOW": "ten seconds"}, "CONTACT_SYNC_MERGE_WINDOW", "Go duration"},
		{"drain timeout in words", map[string]string{"CONTACT_SYNC_DRAIN_TIMEOUT": "ten seconds"}, "CONTACT_SYNC_DRAIN_TIMEOUT", "Go duration"},
		{"zero timeout", map[string]string{"CONTACT_SYNC_API_TIMEOUT": "0s"}, "CONTACT_SYNC_API_TIMEOUT", "positive duration"},
		{"retry max below initial", map[string]string{"CONTACT_SYNC_RETRY_INITIAL_INTERVAL": "2s", "CONTACT_SYNC_RETRY_MAX_INTERVAL": "1s"}, "CONTACT_SYNC_RETRY_MAX_INTERVAL", "at least CONTACT_SYNC_RETRY_INITIAL_INTERVAL"},
		{"negative merge window", map[string]string{"CONTACT_SYNC_MERGE_WINDOW": "-1s"}, "CONTACT_SYNC_MERGE_WINDOW", "0 or a positive duration"},
		{"provision maybe", map[string]string{"CONTACT_SYNC_PROVISION": "maybe"}, "CONTACT_SYNC_PROVISION", "true"},
		{"missing base URL", map[string]string{"CONTACT_SYNC_API_BASE_URL": ""}, "CONTACT_SYNC_API_BASE_URL", "https://api.example.com"},
		{"relative base URL", map[string]string{"CONTACT_SYNC_API_BASE_URL": "/api"}, "CONTACT_SYNC_API_BASE_URL", "absolute http(s) URL"},
		{"base URL without scheme", map[string]string{"CONTACT_SYNC_API_BASE_URL": "api.example.com"}, "CONTACT_SYNC_API_BASE_URL", "absolute http(s) URL"},
		{"ftp base URL", map[string]string{"CONTACT_SYNC_API_BASE_URL": "ftp://api.example.com"}, "CONTACT_SYNC_API_BASE_URL", "absolute http(s) URL"},
		{"path without contact_id", map[string]string{"CONTACT_SYNC_API_PATH": "/contact/"}, "CONTACT_SYNC_API_PATH", "contains {contact_id} once"},
		{"path with contact_id twice", map[string]string{"CONTACT_SYNC_API_PATH": "/contact/{contact_id}/{contact_id}/"}, "CONTACT_SYNC_API_PATH", "contains {contact_id} once"},
		{"path with query", map[string]string{"CONTACT_SYNC_API_PATH": "/contact/{contact_id}/?format=json"}, "CONTACT_SYNC_API_PATH", "contains {contact_id} once"},
		{"path without leading slash", map[string]string{"CONTACT_SYNC_API_PATH": "contact/{contact_id}/"}, "CONTACT_SYNC_API_PATH", "starting with /"},
		{"token and token file", map[string]string{"CONTACT_SYNC_API_TOKEN_FILE": "/run/secrets/token"}, "CONTACT_SYNC_API_TOKEN_FILE", "set only one"},
		{"neither token nor token file", map[string]string{"CONTACT_SYNC_API_TOKEN": ""}, "CONTACT_SYNC_API_TOKEN", "CONTACT_SYNC_API_TOKEN_FILE"},
		{"cert without key", map[string]string{"CONTACT_SYNC_NATS_CERT_FILE": "/tls/client.crt"}, "CONTACT_SYNC_NATS_KEY_FILE", "set together"},
		{"key without cert", map[string]string{"CONTACT_SYNC_NATS_KEY_FILE": "/tls/client.key"}, "CONTACT_SYNC_NATS_CERT_FILE", "set together"},
		{"creds and nkey", map[string]string{"CONTACT_SYNC_NATS_CREDS_FILE": "/nats/user.creds", "CONTACT_SYNC_NATS_NKEY_FILE": "/nats/user.nk"}, "CONTACT_SYNC_NATS_NKEY_FILE", "set only one"},
		{"stream with dot", map[string]string{"CONTACT_SYNC_STREAM": "CONTACTS.V2"}, "CONTACT_SYNC_STREAM", "without spaces, dots"},
		{"stream with space", map[string]string{"CONTACT_SYNC_STREAM": "MY CONTACTS"}, "CONTACT_SYNC_STREAM", "without spaces, dots"},
		{"dead-letter stream with wildcard", map[string]string{"CONTACT_SYNC_DEADLETTER_STREAM": "DEAD*"}, "CONTACT_SYNC_DEADLETTER_STREAM", "wildcards"},
		{"consumer with slash", map[string]string{"CONTACT_SYNC_CONSUMER": "contact/sync"}, "CONTACT_SYNC_CONSUMER", "slashes"},
		{"bad log level", map[string]string{"CONTACT_SYNC_LOG_LEVEL": "verbose"}, "CONTACT_SYNC_LOG_LEVEL", "debug, info, warn or error"},
		{"bad log format", map[string]string{"CONTACT_SYNC_LOG_FORMAT": "text"}, "CONTACT_SYNC_LOG_FORMAT", "json or console"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(environWith(tt.environ))
			if err == nil {
				t.Fatalf("Load(%v) returned no error", tt.environ)
			}

			message := err.Error()
			if !strings.Contains(message, tt.variable) {
				t.Errorf("error %q does not name %s", message, tt.variable)
			}
			if !strings.Contains(message, tt.expected) {
				t.Errorf("error %q does not state the expected form %q", message, tt.expected)
			}
			if strings.Contains(message, testToken) {
				t.Errorf("error %q contains the token", message)
			}
		})
	}
}

// TestLoadParseErrorShowsCause checks that a value the library cannot
// parse is quoted with the parser's reason, not replaced by "<nil>".
func TestLoadParseErrorShowsCause(t *testing.T) {
	tests := map[string]string{
		"CONTACT_SYNC_RATE_LIMIT":  "abc",
		"CONTACT_SYNC_API_TIMEOUT": "ten seconds",
		"CONTACT_SYNC_PROVISION":   "maybe",
		"CONTACT_SYNC_RATE_BURST":  "five",
	}
	for variable, value := range tests {
		t.Run(variable, func(t *testing.T) {
			_, err := config.Load(environWith(map[string]string{variable: value}))
			if err == nil {
				t.Fatalf("Load with %s=%q returned no error", variable, value)
			}

			message := err.Error()
			if strings.Contains(message, "<nil>") {
				t.Errorf("error %q shows <nil> in place of the parse error", message)
			}
			if !strings.Contains(message, value) {
				t.Errorf("error %q does not quote the invalid value %q", message, value)
			}
		})
	}
}

func TestLoadReportsEveryValidationProblem(t *testing.T) {
	_, err := config.Load(map[string]string{
		"CONTACT_SYNC_API_BASE_URL": "ftp://api.example.com",
		"CONTACT_SYNC_RATE_BURST":   "0",
		"CONTACT_SYNC_CONCURRENCY":  "0",
		"CONTACT_SYNC_ACK_WAIT":     "500ms",
		"CONTACT_SYNC_STREAM":       "A.B",
		"CONTACT_SYNC_LOG_FORMAT":   "xml",
	})
	if err == nil {
		t.Fatal("Load with six problems returned no error")
	}

	for _, variable := range []string{
		"CONTACT_SYNC_API_BASE_URL",
		"CONTACT_SYNC_API_TOKEN",
		"CONTACT_SYNC_RATE_BURST",
		"CONTACT_SYNC_CONCURRENCY",
		"CONTACT_SYNC_ACK_WAIT",
		"CONTACT_SYNC_STREAM",
		"CONTACT_SYNC_LOG_FORMAT",
	} {
		if !strings.Contains(err.Error(), variable) {
			t.Errorf("error does not report %s:\n%v", variable, err)
		}
	}
}

func TestLoadReportsEveryParseProblem(t *testing.T) {
	_, err := config.Load(environWith(map[string]string{
		"CONTACT_SYNC_RATE_LIMIT":  "abc",
		"CONTACT_SYNC_API_TIMEOUT": "ten seconds",
		"CONTACT_SYNC_PROVISION":   "maybe",
	}))
	if err == nil {
		t.Fatal("Load with three unparsable values returned no error")
	}

	for _, variable := range []string{"CONTACT_SYNC_RATE_LIMIT", "CONTACT_SYNC_API_TIMEOUT", "CONTACT_SYNC_PROVISION"} {
		if !strings.Contains(err.Error(), variable) {
			t.Errorf("error does not report %s:\n%v", variable, err)
		}
	}
}

func TestLoadAcceptsValidSettings(t *testing.T) {
	cfg, err := config.Load(environWith(map[string]string{
		"CONTACT_SYNC_API_TOKEN":      "",
		"CONTACT_SYNC_API_TOKEN_FILE": "/run/secrets/contact-api-token",
		"CONTACT_SYNC_API_BASE_URL":   "http://127.0.0.1:9000/v1",
		"CONTACT_SYNC_API_PATH":       "/engagement/contacts/{contact_id}",
		"CONTACT_SYNC_RATE_LIMIT":     "0",
		"CONTACT_SYNC_MERGE_WINDOW":   "250ms",
		"CONTACT_SYNC_PROVISION":      "false",
		"CONTACT_SYNC_NATS_CERT_FILE": "/tls/client.crt",
		"CONTACT_SYNC_NATS_KEY_FILE":  "/tls/client.key",
		"CONTACT_SYNC_LOG_LEVEL":      "debug",
		"CONTACT_SYNC_LOG_FORMAT":     "console",
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	if cfg.RateLimit != 0 {
		t.Errorf("RateLimit = %v, want 0 (unlimited)", cfg.RateLimit)
	}
	if cfg.MergeWindow != 250*time.Millisecond {
		t.Errorf("MergeWindow = %s, want 250ms", cfg.MergeWindow)
	}
	if cfg.Provision {
		t.Error("Provision = true, want false")
	}
	if cfg.APITokenFile != "/run/secrets/contact-api-token" {
		t.Errorf("APITokenFile = %q", cfg.APITokenFile)
	}
}

func TestFromEnviron(t *testing.T) {
	got := config.FromEnviron([]string{"A=1", "B=x=y", "C=", "D"})
	want := map[string]string{"A": "1", "B": "x=y", "C": "", "D": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FromEnviron = %v, want %v", got, want)
	}
}

func TestLogFieldsHideToken(t *testing.T) {
	cfg, err := config.Load(requiredEnviron())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	fields := cfg.LogFields()
	encoded, err := json.Marshal(fields)
	if err != nil {
		t.Fatalf("encode log fields: %v", err)
	}
	if strings.Contains(string(encoded), testToken) {
		t.Errorf("LogFields contains the token: %s", encoded)
	}
	if fields["api_token"] != "set (redacted)" {
		t.Errorf("api_token = %v, want %q", fields["api_token"], "set (redacted)")
	}

	unset := config.Config{}
	if got := unset.LogFields()["api_token"]; got != "unset" {
		t.Errorf("api_token of an empty token = %v, want %q", got, "unset")
	}
}

func TestLogFieldsRedactURLPasswords(t *testing.T) {
	cfg, err := config.Load(environWith(map[string]string{
		"CONTACT_SYNC_NATS_URL":     "nats://user:secret@host:4222, nats://other:hunter2@host2:4222",
		"CONTACT_SYNC_API_BASE_URL": "https://u:p@api.example.com",
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	fields := cfg.LogFields()
	natsURL := fmt.Sprint(fields["nats_url"])
	for _, password := range []string{"secret", "hunter2"} {
		if strings.Contains(natsURL, password) {
			t.Errorf("nats_url %q contains the password %q", natsURL, password)
		}
	}
	if want := "nats://user:xxxxx@host:4222,nats://other:xxxxx@host2:4222"; natsURL != want {
		t.Errorf("nats_url = %q, want %q", natsURL, want)
	}
	if got, want := fields["api_base_url"], "https://u:xxxxx@api.example.com"; got != want {
		t.Errorf("api_base_url = %q, want %q", got, want)
	}
}

func TestLogFieldsUnparsableURL(t *testing.T) {
	cfg := config.Config{NATSURL: "nats://user:se cret@host:4222"}

	got := fmt.Sprint(cfg.LogFields()["nats_url"])
	if strings.Contains(got, "cret") {
		t.Errorf("nats_url %q contains part of the password of an unparsable URL", got)
	}
}

func TestSettingsComplete(t *testing.T) {
	settings := config.Settings()
	if got, want := len(settings), reflect.TypeFor[config.Config]().NumField(); got != want {
		t.Errorf("Settings() lists %d variables, Config has %d fields", got, want)
	}

	seen := make(map[string]bool, len(settings))
	for i, setting := range settings {
		if setting.Variable == "" {
			t.Errorf("setting %d has no variable name", i)
			continue
		}
		if !strings.HasPrefix(setting.Variable, "CONTACT_SYNC_") {
			t.Errorf("%s does not start with CONTACT_SYNC_", setting.Variable)
		}
		if strings.TrimSpace(setting.Help) == "" {
			t.Errorf("%s has no help text", setting.Variable)
		}
		if seen[setting.Variable] {
			t.Errorf("%s is listed twice", setting.Variable)
		}
		seen[setting.Variable] = true
	}
}

// TestREADMEListsEverySetting checks the configuration table of the
// repository's README.md against Settings().
func TestREADMEListsEverySetting(t *testing.T) {
	const readmePath = "../README.md"
	readme, err := os.ReadFile(readmePath)
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s is missing: the README must document every CONTACT_SYNC_* variable in its configuration table", readmePath)
	}
	if err != nil {
		t.Fatalf("read %s: %v", readmePath, err)
	}

	for _, setting := range config.Settings() {
		if !strings.Contains(string(readme), setting.Variable) {
			t.Errorf("%s does not mention %s; add it to the configuration table", readmePath, setting.Variable)
		}
	}
}
