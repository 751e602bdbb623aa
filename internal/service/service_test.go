package service_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/contact-sync/contact-sync/config"
	"github.com/contact-sync/contact-sync/internal/contactapi"
	"github.com/contact-sync/contact-sync/internal/eventgen"
	"github.com/contact-sync/contact-sync/internal/natstest"
	"github.com/contact-sync/contact-sync/internal/service"
	"github.com/contact-sync/contact-sync/internal/topology"
)

// testToken is the stand-in's bearer token. It is distinctive so that a
// leak into the logs is easy to find.
const testToken = "svc-token-3Kd9-never-log"

// testEnv is an in-process NATS server and the contact API stand-in, both
// on 127.0.0.1.
type testEnv struct {
	natsURL string
	js      jetstream.JetStream
	api     *contactapi.Server
	apiURL  string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()

	natsServer := natstest.Start(t)
	_, js := natstest.Connect(t, natsServer)

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

	return &testEnv{natsURL: natsServer.ClientURL(), js: js, api: api, apiURL: apiURL}
}

// load builds a config through config.Load, as the run subcommand does,
// aimed at the test environment. Overrides replace or add variables.
func (e *testEnv) load(t *testing.T, overrides map[string]string) config.Config {
	t.Helper()

	environ := map[string]string{
		"CONTACT_SYNC_NATS_URL":               e.natsURL,
		"CONTACT_SYNC_API_BASE_URL":           e.apiURL,
		"CONTACT_SYNC_API_TOKEN":              testToken,
		"CONTACT_SYNC_HTTP_ADDR":              "127.0.0.1:0",
		"CONTACT_SYNC_RATE_LIMIT":             "0",
		"CONTACT_SYNC_RETRY_INITIAL_INTERVAL": "10ms",
		"CONTACT_SYNC_RETRY_MAX_INTERVAL":     "100ms",
		"CONTACT_SYNC_DRAIN_TIMEOUT":          "5s",
	}
	for key, value := range overrides {
		environ[key] = value
	}

	cfg, err := config.Load(environ)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	return cfg
}

// running is a started service whose Run executes in a goroutine.
type running struct {
	svc    *service.Service
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// startService starts cfg's service and runs it until the test ends or
// stop is called.
func startService(t *testing.T, cfg config.Config) *running {
	t.Helper()

	logs := &syncBuffer{}
	logger := zerolog.New(logs).Level(zerolog.DebugLevel)
	svc, err := service.Start(cfg, logger, prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("service.Start: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	r := &running{svc: svc, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		if r.cancel != nil {
			r.stop(t)
		}
	})
	return r
}

// stop cancels Run and returns its error.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("Run did not return within 30s of the context's end; logs:\n%s", r.logs)
		return nil
	}
}

func (r *running) url(path string) string {
	return "http://" + r.svc.HTTPAddr() + path
}

// get returns the status and body of a GET, or fails the test.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	request, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("build request for %s: %v", url, err)
	}
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer response.Body.Close()

	body, err := io.ReadAll(response.Body)
	if err != nil {
		t.Fatalf("read the body of GET %s: %v", url, err)
	}
	return response.StatusCode, string(body)
}

// waitFor polls condition every 20ms until it holds, or fails the test
// after timeout with describe's message.
func waitFor(t *testing.T, timeout time.Duration, condition func() bool, describe func() string) {
	t.Helper()
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	deadline := time.After(timeout)

	for !condition() {
		select {
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s", timeout, describe())
		case <-ticker.C:
		}
	}
}

func waitReady(t *testing.T, r *running, timeout time.Duration) {
	t.Helper()
	lastStatus, lastBody := 0, ""
	waitFor(t, timeout, func() bool {
		lastStatus, lastBody = get(t, r.url("/readyz"))
		return lastStatus == http.StatusOK
	}, func() string {
		return fmt.Sprintf("/readyz to return 200; last %d %q; logs:\n%s", lastStatus, lastBody, r.logs)
	})
}

// metricValue returns the value of one series, such as
// `contact_sync_puts_total{outcome="success"}`, in the text exposition.
func metricValue(exposition, series string) (float64, bool) {
	scanner := bufio.NewScanner(strings.NewReader(exposition))
	for scanner.Scan() {
		line := scanner.Text()
		rest, found := strings.CutPrefix(line, series+" ")
		if !found {
			continue
		}
		value, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		return value, err == nil
	}
	return 0, false
}

// publishChange publishes one event that sets fields of a contact.
func publishChange(t *testing.T, js jetstream.JetStream, eventID, contactID string, changes map[string]any) {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"event_id":    eventID,
		"contact_id":  contactID,
		"occurred_at": "2026-03-01T12:00:00Z",
		"changes":     changes,
	})
	if err != nil {
		t.Fatalf("encode event %s: %v", eventID, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, topology.ChangesSubject(contactID), body, jetstream.WithMsgID(eventID)); err != nil {
		t.Fatalf("publish event %s: %v", eventID, err)
	}
}

func TestServiceServesAndApplies(t *testing.T) {
	env := newTestEnv(t)
	r := startService(t, env.load(t, nil))

	status, body := get(t, r.url("/livez"))
	if status != http.StatusOK || body != "ok\n" {
		t.Errorf("/livez = %d %q, want 200 \"ok\\n\"", status, body)
	}
	waitReady(t, r, 15*time.Second)

	_, exposition := get(t, r.url("/metrics"))
	for _, series := range []string{
		"contact_sync_events_received_total",
		`contact_sync_puts_total{outcome="success"}`,
		`contact_sync_dead_letters_total{reason="not_found"}`,
		`contact_sync_dead_letters_total{reason="invalid"}`,
		"contact_sync_put_retries_total",
		"contact_sync_events_merged_total",
		"contact_sync_put_duration_seconds_count",
		"contact_sync_rate_limiter_wait_seconds_count",
	} {
		value, found := metricValue(exposition, series)
		if !found {
			t.Errorf("/metrics has no series %s before the first event", series)
			continue
		}
		if value != 0 {
			t.Errorf("%s = %v before the first event, want 0", series, value)
		}
	}

	ids := eventgen.ContactIDs(4)
	known, unknown := ids[:3], ids[3]
	if err := env.api.AddContacts(known...); err != nil {
		t.Fatalf("add contacts to the stand-in: %v", err)
	}
	for i, id := range known {
		publishChange(t, env.js, fmt.Sprintf("name-%d", i), id, map[string]any{"name": fmt.Sprintf("Ada-%d", i)})
		publishChange(t, env.js, fmt.Sprintf("surname-%d", i), id, map[string]any{"surname": fmt.Sprintf("Lovelace-%d", i)})
	}
	publishChange(t, env.js, "unknown-0", unknown, map[string]any{"name": "Nobody"})

	waitFor(t, 15*time.Second, func() bool {
		stats := r.svc.Worker().Stats()
		return stats.EventsApplied == 6 && stats.EventsDeadLettered["not_found"] == 1
	}, func() string {
		return fmt.Sprintf("6 events applied and 1 dead-lettered as not_found; worker stats %+v", r.svc.Worker().Stats())
	})

	for i, id := range known {
		state, ok := env.api.Contact(id)
		if !ok {
			t.Errorf("contact %s is not known to the stand-in", id)
			continue
		}
		if want := fmt.Sprintf("Ada-%d", i); state.Name.Value != want {
			t.Errorf("contact %s name = %q, want %q", id, state.Name.Value, want)
		}
		if want := fmt.Sprintf("Lovelace-%d", i); state.Surname.Value != want {
			t.Errorf("contact %s surname = %q, want %q", id, state.Surname.Value, want)
		}
	}

	_, exposition = get(t, r.url("/metrics"))
	wantAfter := map[string]float64{
		"contact_sync_events_received_total":                  7,
		`contact_sync_dead_letters_total{reason="not_found"}`: 1,
		`contact_sync_puts_total{outcome="not_found"}`:        1,
	}
	for series, want := range wantAfter {
		if value, _ := metricValue(exposition, series); value != want {
			t.Errorf("%s = %v after the events, want %v", series, value, want)
		}
	}
	if value, _ := metricValue(exposition, `contact_sync_puts_total{outcome="success"}`); value < 3 {
		t.Errorf(`contact_sync_puts_total{outcome="success"} = %v, want at least 3 (one per known contact)`, value)
	}
	if value, _ := metricValue(exposition, "contact_sync_put_duration_seconds_count"); value < 4 {
		t.Errorf("contact_sync_put_duration_seconds_count = %v, want at least 4 (one per PUT)", value)
	}

	if err := r.stop(t); err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
	if strings.Contains(r.logs.String(), testToken) {
		t.Error("the service's logs contain the API token")
	}
	if response, err := http.Get(r.url("/livez")); err == nil {
		response.Body.Close()
		t.Errorf("/livez answers %d after Run returned, want a refused connection", response.StatusCode)
	}
}

func TestServiceWithoutProvisionWaitsForConsumer(t *testing.T) {
	const consumerName = "crm-sync-test"
	env := newTestEnv(t)
	r := startService(t, env.load(t, map[string]string{
		"CONTACT_SYNC_PROVISION": "false",
		"CONTACT_SYNC_CONSUMER":  consumerName,
	}))

	waitFor(t, 10*time.Second, func() bool {
		return hasErrorNaming(r.logs.String(), consumerName)
	}, func() string {
		return fmt.Sprintf("an error log line naming consumer %s; logs:\n%s", consumerName, r.logs)
	})
	status, body := get(t, r.url("/readyz"))
	if status != http.StatusServiceUnavailable {
		t.Errorf("/readyz without a consumer = %d %q, want 503", status, body)
	}
	if !strings.Contains(body, "not consuming") {
		t.Errorf("/readyz body %q does not say why it is not ready", body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := topology.Provision(ctx, env.js, topology.Options{Consumer: consumerName}); err != nil {
		t.Fatalf("provision streams and consumer: %v", err)
	}

	// The worker retries with a backoff of up to 15s.
	waitReady(t, r, 30*time.Second)
	if err := r.stop(t); err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
}

// hasErrorNaming reports whether a JSON log line at error level has an
// error naming the consumer.
func hasErrorNaming(logs, consumerName string) bool {
	for line := range strings.Lines(logs) {
		var entry struct {
			Level string `json:"level"`
			Error string `json:"error"`
		}
		if json.Unmarshal([]byte(line), &entry) != nil {
			continue
		}
		if entry.Level == "error" && strings.Contains(entry.Error, consumerName) {
			return true
		}
	}
	return false
}

func TestServiceTokenFile(t *testing.T) {
	env := newTestEnv(t)
	tokenPath := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenPath, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatalf("write token file: %v", err)
	}
	r := startService(t, env.load(t, map[string]string{
		"CONTACT_SYNC_API_TOKEN":      "",
		"CONTACT_SYNC_API_TOKEN_FILE": tokenPath,
	}))
	waitReady(t, r, 15*time.Second)

	id := eventgen.ContactIDs(1)[0]
	if err := env.api.AddContacts(id); err != nil {
		t.Fatalf("add contact to the stand-in: %v", err)
	}
	publishChange(t, env.js, "file-token-0", id, map[string]any{"email": "ada@example.com"})

	waitFor(t, 10*time.Second, func() bool {
		return r.svc.Worker().Stats().EventsApplied == 1
	}, func() string {
		return fmt.Sprintf("the event to be applied with the token from the file; stand-in stats %+v", env.api.Stats())
	})
	if unauthorized := env.api.Stats().Unauthorized; unauthorized != 0 {
		t.Errorf("the stand-in answered 401 %d times, want 0", unauthorized)
	}
}

func TestStartMissingTokenFile(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.load(t, map[string]string{
		"CONTACT_SYNC_API_TOKEN":      "",
		"CONTACT_SYNC_API_TOKEN_FILE": filepath.Join(t.TempDir(), "missing-token"),
	})

	svc, err := service.Start(cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err == nil {
		t.Fatalf("Start with a missing token file returned a service listening on %s", svc.HTTPAddr())
	}
	if !strings.Contains(err.Error(), "CONTACT_SYNC_API_TOKEN_FILE") {
		t.Errorf("error %q does not name CONTACT_SYNC_API_TOKEN_FILE", err)
	}
}

func TestStartHTTPAddrInUse(t *testing.T) {
	env := newTestEnv(t)
	occupied, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { occupied.Close() })
	cfg := env.load(t, map[string]string{"CONTACT_SYNC_HTTP_ADDR": occupied.Addr().String()})

	svc, err := service.Start(cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err == nil {
		t.Fatalf("Start on an address in use returned a service listening on %s", svc.HTTPAddr())
	}
	if !strings.Contains(err.Error(), "CONTACT_SYNC_HTTP_ADDR") {
		t.Errorf("error %q does not name CONTACT_SYNC_HTTP_ADDR", err)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for logs.
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
