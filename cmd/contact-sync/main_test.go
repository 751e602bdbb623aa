package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/contact-sync/contact-sync/config"
	"github.com/contact-sync/contact-sync/internal/contactapi"
	"github.com/contact-sync/contact-sync/internal/natstest"
)

// testToken is distinctive so that a leak into the output is easy to find.
const testToken = "cmd-token-Zx81-never-print"

// runCommand runs the command with args and returns the exit code and both
// outputs. The buffers are safe for concurrent use because NATS callbacks
// log from their own goroutine.
func runCommand(args ...string) (int, string, string) {
	var stdout, stderr syncBuffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// clearSettings empties every CONTACT_SYNC_* variable for the test, which
// Load treats as unset, so that the caller's environment cannot leak in.
func clearSettings(t *testing.T) {
	t.Helper()
	for _, setting := range config.Settings() {
		t.Setenv(setting.Variable, "")
	}
}

func TestRunNoArguments(t *testing.T) {
	code, stdout, stderr := runCommand()
	if code != 2 {
		t.Errorf("exit code = %d, want 2", code)
	}
	if !strings.Contains(stderr, "Usage:") {
		t.Errorf("stderr has no usage:\n%s", stderr)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
}

func TestRunUnknownSubcommand(t *testing.T) {
	code, _, stderr := runCommand("sync-everything")
	if code != 2 {
		t.Errorf("exit code = %d, want 2", code)
	}
	if !strings.Contains(stderr, `"sync-everything"`) {
		t.Errorf("stderr does not name the unknown subcommand:\n%s", stderr)
	}
}

func TestRunHelp(t *testing.T) {
	for _, arg := range []string{"help", "-h", "--help"} {
		t.Run(arg, func(t *testing.T) {
			code, stdout, _ := runCommand(arg)
			if code != 0 {
				t.Errorf("exit code = %d, want 0", code)
			}
			for _, subcommand := range []string{"contact-sync run", "contact-sync import", "contact-sync demo"} {
				if !strings.Contains(stdout, subcommand) {
					t.Errorf("usage on stdout does not list %q:\n%s", subcommand, stdout)
				}
			}
		})
	}
}

func TestRunWorkerInvalidRate(t *testing.T) {
	clearSettings(t)
	t.Setenv("CONTACT_SYNC_API_BASE_URL", "http://127.0.0.1:1")
	t.Setenv("CONTACT_SYNC_API_TOKEN", testToken)
	t.Setenv("CONTACT_SYNC_RATE_LIMIT", "abc")

	code, _, stderr := runCommand("run")
	if code != 2 {
		t.Errorf("exit code = %d, want 2", code)
	}
	if !strings.Contains(stderr, "CONTACT_SYNC_RATE_LIMIT") {
		t.Errorf("stderr does not name CONTACT_SYNC_RATE_LIMIT:\n%s", stderr)
	}
	if !strings.Contains(stderr, "contact-sync run -h") {
		t.Errorf("stderr does not point to contact-sync run -h:\n%s", stderr)
	}
	if strings.Contains(stderr, testToken) {
		t.Errorf("stderr contains the token:\n%s", stderr)
	}
}

func TestRunWorkerMissingBaseURL(t *testing.T) {
	clearSettings(t)
	t.Setenv("CONTACT_SYNC_API_TOKEN", testToken)

	code, _, stderr := runCommand("run")
	if code != 2 {
		t.Errorf("exit code = %d, want 2", code)
	}
	if !strings.Contains(stderr, "CONTACT_SYNC_API_BASE_URL") {
		t.Errorf("stderr does not name CONTACT_SYNC_API_BASE_URL:\n%s", stderr)
	}
}

func TestRunWorkerUnexpectedArgument(t *testing.T) {
	code, _, stderr := runCommand("run", "--rate=5")
	if code != 2 {
		t.Errorf("exit code of an unknown flag = %d, want 2", code)
	}
	if stderr == "" {
		t.Error("stderr is empty for an unknown flag")
	}

	code, _, stderr = runCommand("run", "worker.env")
	if code != 2 {
		t.Errorf("exit code of an argument = %d, want 2", code)
	}
	if !strings.Contains(stderr, `"worker.env"`) {
		t.Errorf("stderr does not name the argument:\n%s", stderr)
	}
}

func TestRunWorkerHelpListsSettings(t *testing.T) {
	code, stdout, stderr := runCommand("run", "-h")
	if code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}

	help := stdout + stderr
	for _, setting := range config.Settings() {
		if !strings.Contains(help, setting.Variable) {
			t.Errorf("run -h does not list %s", setting.Variable)
		}
	}
	if !strings.Contains(help, "(none)") {
		t.Errorf("run -h does not show (none) for a variable without a default:\n%s", help)
	}
}

// TestRunWorkerStartsAndStops runs the worker subcommand against an
// in-process NATS server and the stand-in, and stops it by its context.
func TestRunWorkerStartsAndStops(t *testing.T) {
	natsServer := natstest.Start(t)
	api, err := contactapi.New(contactapi.Options{Token: testToken})
	if err != nil {
		t.Fatalf("create contact API stand-in: %v", err)
	}
	apiURL, shutdown, err := api.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("start contact API stand-in: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdown(ctx)
	})

	clearSettings(t)
	t.Setenv("CONTACT_SYNC_NATS_URL", natsServer.ClientURL())
	t.Setenv("CONTACT_SYNC_API_BASE_URL", apiURL)
	t.Setenv("CONTACT_SYNC_API_TOKEN", testToken)
	t.Setenv("CONTACT_SYNC_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("CONTACT_SYNC_DRAIN_TIMEOUT", "5s")

	stderr := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- runWorker(ctx, nil, &bytes.Buffer{}, stderr) }()

	waitForOutput(t, stderr, `"message":"consuming"`, done)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code after cancel = %d, want 0; stderr:\n%s", code, stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not return within 30s of the context's end; stderr:\n%s", stderr)
	}

	logs := stderr.String()
	if !strings.Contains(logs, "contact-sync starting") {
		t.Errorf("the logs have no start-up line:\n%s", logs)
	}
	if strings.Contains(logs, testToken) {
		t.Errorf("the logs contain the token:\n%s", logs)
	}
}

// waitForOutput waits until out contains text, failing the test when the
// command exits first or 10s pass.
func waitForOutput(t *testing.T, out *syncBuffer, text string, done <-chan int) {
	t.Helper()
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	deadline := time.After(10 * time.Second)

	for !strings.Contains(out.String(), text) {
		select {
		case code := <-done:
			t.Fatalf("the command exited with %d before writing %q; stderr:\n%s", code, text, out)
		case <-deadline:
			t.Fatalf("timed out after 10s waiting for %q; stderr:\n%s", text, out)
		case <-ticker.C:
		}
	}
}

func TestRunWorkerMissingTokenFile(t *testing.T) {
	natsServer := natstest.Start(t)
	clearSettings(t)
	t.Setenv("CONTACT_SYNC_NATS_URL", natsServer.ClientURL())
	t.Setenv("CONTACT_SYNC_API_BASE_URL", "http://127.0.0.1:1")
	t.Setenv("CONTACT_SYNC_API_TOKEN_FILE", filepath.Join(t.TempDir(), "missing-token"))
	t.Setenv("CONTACT_SYNC_HTTP_ADDR", "127.0.0.1:0")

	code, _, stderr := runCommand("run")
	if code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	if !strings.Contains(stderr, "CONTACT_SYNC_API_TOKEN_FILE") {
		t.Errorf("stderr does not name CONTACT_SYNC_API_TOKEN_FILE:\n%s", stderr)
	}
}

func TestImportUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		// message is a fragment stderr must contain.
		message string
	}{
		{"no file", []string{"import"}, "expected one FILE, got 0"},
		{"two files", []string{"import", "a.csv", "b.csv"}, "expected one FILE, got 2"},
		{"unknown flag", []string{"import", "--no-such-flag", "a.csv"}, "no-such-flag"},
		{"CSV without mapping", []string{"import", "contacts.csv"}, "--mapping"},
		{"unknown extension", []string{"import", "contacts.xlsx"}, "--format"},
		{"CSV on stdin without batch id", []string{"import", "--format", "csv", "--mapping", "m.yaml", "-"}, "--batch-id"},
		{"mapping flags on JSONL", []string{"import", "--id-column", "id", "events.jsonl"}, "CSV only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearSettings(t)

			code, _, stderr := runCommand(tt.args...)
			if code != 2 {
				t.Errorf("exit code = %d, want 2; stderr:\n%s", code, stderr)
			}
			if !strings.Contains(stderr, tt.message) {
				t.Errorf("stderr does not contain %q:\n%s", tt.message, stderr)
			}
		})
	}
}

func TestImportHelp(t *testing.T) {
	code, _, stderr := runCommand("import", "-h")
	if code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	if !strings.Contains(stderr, "Usage: contact-sync import") {
		t.Errorf("stderr has no import usage:\n%s", stderr)
	}
}

func TestDemoHelp(t *testing.T) {
	code, _, stderr := runCommand("demo", "-h")
	if code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	for _, flagName := range []string{"-input", "-mapping", "-rate"} {
		if !strings.Contains(stderr, flagName) {
			t.Errorf("demo -h does not list %s:\n%s", flagName, stderr)
		}
	}
}

func TestDemoInvalidFlags(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "--burst", "0"},
		{"demo", "--concurrency", "0"},
		{"demo", "--unknown-every", "0"},
		{"demo", "--rate", "-1"},
		{"demo", "--no-such-flag"},
	} {
		t.Run(strings.Join(args[1:], " "), func(t *testing.T) {
			code, _, stderr := runCommand(args...)
			if code != 2 {
				t.Errorf("exit code = %d, want 2; stderr:\n%s", code, stderr)
			}
		})
	}
}

func TestDisplayDefault(t *testing.T) {
	for value, want := range map[string]string{"": "(none)", "10s": "10s"} {
		if got := displayDefault(value); got != want {
			t.Errorf("displayDefault(%q) = %q, want %q", value, got, want)
		}
	}
}

func TestNewLoggerLevels(t *testing.T) {
	tests := []struct {
		level     string
		debugSeen bool
		infoSeen  bool
	}{
		{"debug", true, true},
		{"info", false, true},
		{"error", false, false},
		{"no-such-level", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			var out bytes.Buffer
			logger := newLogger(&out, tt.level, "json")
			logger.Debug().Msg("debug line")
			logger.Info().Msg("info line")

			if got := strings.Contains(out.String(), "debug line"); got != tt.debugSeen {
				t.Errorf("debug line written = %v, want %v", got, tt.debugSeen)
			}
			if got := strings.Contains(out.String(), "info line"); got != tt.infoSeen {
				t.Errorf("info line written = %v, want %v", got, tt.infoSeen)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
