package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"

	"github.com/contact-sync/contact-sync/internal/contactapi"
	"github.com/contact-sync/contact-sync/internal/deadletter"
	"github.com/contact-sync/contact-sync/internal/eventgen"
	"github.com/contact-sync/contact-sync/internal/natstest"
	"github.com/contact-sync/contact-sync/internal/topology"
)

// Deadlines of the security tests. A connection that TLS or authentication
// rejects fails on the first attempt, so its error is logged well within
// rejectedLogTimeout.
const (
	rejectedLogTimeout = 5 * time.Second
	readyTimeout       = 10 * time.Second
	applyTimeout       = 10 * time.Second
)

// certificateErrorWords are the words a TLS verification error contains,
// such as "x509: certificate signed by unknown authority" or "remote
// error: tls: certificate required".
var certificateErrorWords = []string{"x509", "certificate"}

// authorizationErrorWords are the words of the error nats.go returns when
// the server rejects the client's credentials.
var authorizationErrorWords = []string{"authorization violation", "authentication"}

func TestNATSTLSNeedsTrustedCA(t *testing.T) {
	pki := newTestPKI(t)
	natsServer := startTLSNATS(t, pki, false)
	natsURL := serverURL(natsServer, "tls")
	env := newEnvOn(t, natsURL, connectJetStream(t, natsURL, nats.RootCAs(pki.caFile)))

	untrusting := startService(t, env.load(t, nil))
	entry := waitForErrorLog(t, untrusting, rejectedLogTimeout, certificateErrorWords...)
	t.Logf("logged without the CA: %s: %s", entry.Message, entry.Error)
	expectNotReady(t, untrusting, env)
	if err := untrusting.stop(t); err != nil {
		t.Errorf("Run of the service without the CA = %v, want nil", err)
	}

	trusting := startService(t, env.load(t, map[string]string{"CONTACT_SYNC_NATS_CA_FILE": pki.caFile}))
	waitReady(t, trusting, readyTimeout)
	expectApplied(t, env, trusting, "tls")
}

func TestNATSMutualTLSNeedsClientCert(t *testing.T) {
	pki := newTestPKI(t)
	natsServer := startTLSNATS(t, pki, true)
	natsURL := serverURL(natsServer, "tls")
	env := newEnvOn(t, natsURL, connectJetStream(t, natsURL,
		nats.RootCAs(pki.caFile), nats.ClientCert(pki.clientCertFile, pki.clientKeyFile)))

	anonymous := startService(t, env.load(t, map[string]string{"CONTACT_SYNC_NATS_CA_FILE": pki.caFile}))
	entry := waitForErrorLog(t, anonymous, rejectedLogTimeout, certificateErrorWords...)
	t.Logf("logged without a client certificate: %s: %s", entry.Message, entry.Error)
	expectNotReady(t, anonymous, env)
	if err := anonymous.stop(t); err != nil {
		t.Errorf("Run of the service without a client certificate = %v, want nil", err)
	}

	identified := startService(t, env.load(t, map[string]string{
		"CONTACT_SYNC_NATS_CA_FILE":   pki.caFile,
		"CONTACT_SYNC_NATS_CERT_FILE": pki.clientCertFile,
		"CONTACT_SYNC_NATS_KEY_FILE":  pki.clientKeyFile,
	}))
	waitReady(t, identified, readyTimeout)
	expectApplied(t, env, identified, "mtls")
}

func TestNATSNKeyAuthentication(t *testing.T) {
	userKey := mustKey(t, nkeys.CreateUser)
	seed, err := userKey.Seed()
	if err != nil {
		t.Fatalf("read NKey seed: %v", err)
	}
	seedFile := writeSecretFile(t, "contact-sync.nk", seed)

	natsServer := startNATSWith(t, &server.Options{
		Nkeys: []*server.NkeyUser{{Nkey: mustPublicKey(t, userKey)}},
	})
	natsURL := serverURL(natsServer, "nats")
	seedOption, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatalf("NKey option for the test client: %v", err)
	}
	env := newEnvOn(t, natsURL, connectJetStream(t, natsURL, seedOption))

	anonymous := startService(t, env.load(t, nil))
	entry := waitForErrorLog(t, anonymous, rejectedLogTimeout, authorizationErrorWords...)
	t.Logf("logged without the NKey: %s: %s", entry.Message, entry.Error)
	expectNotReady(t, anonymous, env)
	if err := anonymous.stop(t); err != nil {
		t.Errorf("Run of the service without the NKey = %v, want nil", err)
	}

	authenticated := startService(t, env.load(t, map[string]string{"CONTACT_SYNC_NATS_NKEY_FILE": seedFile}))
	waitReady(t, authenticated, readyTimeout)
	expectApplied(t, env, authenticated, "nkey")
}

// A server that rejects the service's credentials and accepts them later,
// as when the user is added after the worker was deployed, must see the
// service connect without a restart.
func TestNATSRecoversAfterRejectedCredentials(t *testing.T) {
	userKey := mustKey(t, nkeys.CreateUser)
	seed, err := userKey.Seed()
	if err != nil {
		t.Fatalf("read NKey seed: %v", err)
	}
	seedFile := writeSecretFile(t, "contact-sync.nk", seed)
	producerKey := mustKey(t, nkeys.CreateUser)
	producerSeed, err := producerKey.Seed()
	if err != nil {
		t.Fatalf("read producer NKey seed: %v", err)
	}
	producerSeedFile := writeSecretFile(t, "producer.nk", producerSeed)

	opts := &server.Options{Nkeys: []*server.NkeyUser{{Nkey: mustPublicKey(t, producerKey)}}}
	natsServer := startNATSWith(t, opts)
	natsURL := serverURL(natsServer, "nats")
	producerOption, err := nats.NkeyOptionFromSeed(producerSeedFile)
	if err != nil {
		t.Fatalf("NKey option for the test client: %v", err)
	}
	env := newEnvOn(t, natsURL, connectJetStream(t, natsURL, producerOption))

	connectionsBefore := totalConnections(t, natsServer)
	r := startService(t, env.load(t, map[string]string{"CONTACT_SYNC_NATS_NKEY_FILE": seedFile}))
	waitForErrorLog(t, r, rejectedLogTimeout, authorizationErrorWords...)
	expectNotReady(t, r, env)

	// nats.go v1.56 closes the connection for good once a server rejects
	// the same credentials twice in a row, unless IgnoreAuthErrorAbort is
	// set, so the user is added only after the third attempt. Attempts are
	// one reconnect wait (1s in connectNATS) apart.
	waitFor(t, rejectedLogTimeout, func() bool {
		return totalConnections(t, natsServer) >= connectionsBefore+3
	}, func() string {
		return fmt.Sprintf("three rejected connection attempts of the service; logs:\n%s", r.logs)
	})

	reloaded := opts.Clone()
	reloaded.Port = natsServer.Addr().(*net.TCPAddr).Port
	reloaded.Nkeys = append(reloaded.Nkeys, &server.NkeyUser{Nkey: mustPublicKey(t, userKey)})
	if err := natsServer.ReloadOptions(reloaded); err != nil {
		t.Fatalf("reload nats-server with the service's NKey user: %v", err)
	}

	waitReady(t, r, readyTimeout)
	expectApplied(t, env, r, "nkey-added")
}

// totalConnections returns how many client connections the server accepted
// since it started, rejected ones included.
func totalConnections(t *testing.T, natsServer *server.Server) uint64 {
	t.Helper()
	varz, err := natsServer.Varz(nil)
	if err != nil {
		t.Fatalf("read nats-server varz: %v", err)
	}
	return varz.TotalConnections
}

func TestNATSCredentialsFile(t *testing.T) {
	chain := newOperatorChain(t)
	natsServer := startNATSWith(t, &server.Options{
		TrustedOperators: []*jwt.OperatorClaims{chain.operator},
		SystemAccount:    chain.systemAccount,
		AccountResolver:  chain.resolver,
	})
	natsURL := serverURL(natsServer, "nats")
	env := newEnvOn(t, natsURL, connectJetStream(t, natsURL, nats.UserCredentials(chain.credsFile)))

	anonymous := startService(t, env.load(t, nil))
	entry := waitForErrorLog(t, anonymous, rejectedLogTimeout, authorizationErrorWords...)
	t.Logf("logged without the credentials: %s: %s", entry.Message, entry.Error)
	expectNotReady(t, anonymous, env)
	if err := anonymous.stop(t); err != nil {
		t.Errorf("Run of the service without the credentials = %v, want nil", err)
	}

	authenticated := startService(t, env.load(t, map[string]string{"CONTACT_SYNC_NATS_CREDS_FILE": chain.credsFile}))
	waitReady(t, authenticated, readyTimeout)
	expectApplied(t, env, authenticated, "creds")
}

// expectApplied publishes one change for a new contact and waits until the
// stand-in stores it.
func expectApplied(t *testing.T, env *testEnv, r *running, eventID string) {
	t.Helper()
	id := eventgen.ContactIDs(1)[0]
	if err := env.api.AddContacts(id); err != nil {
		t.Fatalf("add contact to the stand-in: %v", err)
	}
	want := "Ada-" + eventID
	publishChange(t, env.js, eventID, id, map[string]any{"name": want})

	waitFor(t, applyTimeout, func() bool {
		state, ok := env.api.Contact(id)
		return ok && state.Name.Value == want
	}, func() string {
		return fmt.Sprintf("the stand-in to store name %q for contact %s; worker stats %+v; logs:\n%s", want, id, r.svc.Worker().Stats(), r.logs)
	})
}

// Values that must never leave the service: its API token, and credentials
// that a producer put in an event's headers.
const (
	secretAPIToken      = "sec-token-Qv7x-must-not-leak"
	secretBearerHeader  = "Bearer hdr-bearer-Lm4t-must-not-leak"
	secretAPITokenValue = "hdr-api-token-Wc9p-must-not-leak"
	harmlessRequestID   = "req-7f3a"
)

func TestSecretsNeverLeak(t *testing.T) {
	natsServer := natstest.Start(t)
	_, js := natstest.Connect(t, natsServer)
	api, apiURL := startStandIn(t, secretAPIToken)
	env := &testEnv{natsURL: natsServer.ClientURL(), js: js, api: api, apiURL: apiURL}

	cfg := env.load(t, map[string]string{
		"CONTACT_SYNC_API_TOKEN": secretAPIToken,
		"CONTACT_SYNC_LOG_LEVEL": "debug",
	})
	r := startService(t, cfg)
	// The run subcommand logs the settings at start, and this test writes the
	// same line into the service's log buffer.
	startupLogger := zerolog.New(r.logs)
	startupLogger.Info().Fields(cfg.LogFields()).Msg("contact-sync starting")
	waitReady(t, r, readyTimeout)

	ids := eventgen.ContactIDs(3)
	known, unknown, invalid := ids[0], ids[1], ids[2]
	if err := api.AddContacts(known); err != nil {
		t.Fatalf("add contact to the stand-in: %v", err)
	}

	runUnauthorizedPhase(t, env, r, known)

	publishWithSecretHeaders(t, js, "unknown-0", unknown, []byte(eventBody(t, "unknown-0", unknown)))
	invalidBody := fmt.Sprintf(`{"event_id":"invalid-0","contact_id":%q,"occurred_at":"2026-03-01T12:00:00Z","changes":{"colour":"red"}}`, invalid)
	publishWithSecretHeaders(t, js, "invalid-0", invalid, []byte(invalidBody))
	waitFor(t, applyTimeout, func() bool {
		dead := r.svc.Worker().Stats().EventsDeadLettered
		return dead["not_found"] == 1 && dead["invalid"] == 1
	}, func() string {
		return fmt.Sprintf("one not_found and one invalid dead letter; worker stats %+v; logs:\n%s", r.svc.Worker().Stats(), r.logs)
	})

	_, exposition := get(t, r.url("/metrics"))
	_, readiness := get(t, r.url("/readyz"))
	if err := r.stop(t); err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}

	checkLogsHaveNoSecret(t, r.logs.String())
	for name, text := range map[string]string{"/metrics": exposition, "/readyz": readiness} {
		if strings.Contains(text, secretAPIToken) {
			t.Errorf("the %s body contains the API token", name)
		}
	}
	checkDeadLettersHaveNoSecret(t, js, 2)
}

// runUnauthorizedPhase makes the stand-in reject the service's token while
// an event for the known contact arrives, waits for the 401s and the
// not-ready state, and restores the token so that the event is applied.
func runUnauthorizedPhase(t *testing.T, env *testEnv, r *running, known string) {
	t.Helper()
	env.api.SetToken("rotated-elsewhere")
	publishWithSecretHeaders(t, env.js, "known-0", known, []byte(eventBody(t, "known-0", known)))

	waitFor(t, applyTimeout, func() bool {
		status, _ := get(t, r.url("/readyz"))
		return env.api.Stats().Unauthorized >= 3 && status == http.StatusServiceUnavailable
	}, func() string {
		return fmt.Sprintf("three 401 responses and /readyz 503; stand-in stats %+v; logs:\n%s", env.api.Stats(), r.logs)
	})

	env.api.SetToken(secretAPIToken)
	waitFor(t, applyTimeout, func() bool {
		return r.svc.Worker().Stats().EventsApplied == 1
	}, func() string {
		return fmt.Sprintf("the event to be applied after the token is accepted again; worker stats %+v", r.svc.Worker().Stats())
	})
}

func eventBody(t *testing.T, eventID, contactID string) string {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"event_id":    eventID,
		"contact_id":  contactID,
		"occurred_at": "2026-03-01T12:00:00Z",
		"changes":     map[string]any{"name": "Ada"},
	})
	if err != nil {
		t.Fatalf("encode event %s: %v", eventID, err)
	}
	return string(body)
}

// publishWithSecretHeaders publishes an event whose headers carry
// credentials, as a careless producer might, next to a harmless header.
func publishWithSecretHeaders(t *testing.T, js jetstream.JetStream, eventID, contactID string, body []byte) {
	t.Helper()
	msg := nats.NewMsg(topology.ChangesSubject(contactID))
	msg.Data = body
	msg.Header.Set("Authorization", secretBearerHeader)
	msg.Header.Set("X-Api-Token", secretAPITokenValue)
	msg.Header.Set("X-Request-Id", harmlessRequestID)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(eventID)); err != nil {
		t.Fatalf("publish event %s: %v", eventID, err)
	}
}

func checkLogsHaveNoSecret(t *testing.T, logs string) {
	t.Helper()
	debugLines := 0
	for line := range strings.Lines(logs) {
		if strings.Contains(line, `"level":"debug"`) {
			debugLines++
		}
		for _, secret := range []string{secretAPIToken, secretBearerHeader, secretAPITokenValue} {
			if strings.Contains(line, secret) {
				t.Errorf("a log line contains the secret %q: %s", secret, line)
			}
		}
	}
	if debugLines == 0 {
		t.Errorf("the logs have no debug line, so the check did not cover debug output; logs:\n%s", logs)
	}
	if _, found := findErrorLog(logs, "401"); !found {
		t.Errorf("no warn or error log line records the 401 responses; logs:\n%s", logs)
	}
}

// checkDeadLettersHaveNoSecret reads every dead letter and checks that
// none carries a secret, while the harmless header was copied.
func checkDeadLettersHaveNoSecret(t *testing.T, js jetstream.JetStream, want int) {
	t.Helper()
	letters := readDeadLetters(t, js)
	if len(letters) != want {
		t.Errorf("the dead-letter stream has %d messages, want %d", len(letters), want)
	}

	for _, letter := range letters {
		reason := letter.Header.Get(deadletter.HeaderReason)
		for name, values := range letter.Header {
			for _, value := range values {
				for _, secret := range []string{secretAPIToken, secretBearerHeader, secretAPITokenValue} {
					if strings.Contains(value, secret) {
						t.Errorf("%s dead letter header %s contains the secret %q", reason, name, secret)
					}
				}
			}
		}
		for _, name := range []string{"Authorization", "X-Api-Token"} {
			if value := letter.Header.Get(name); value != "" {
				t.Errorf("%s dead letter copied the original header %s", reason, name)
			}
		}
		if got := letter.Header.Get("X-Request-Id"); got != harmlessRequestID {
			t.Errorf("%s dead letter header X-Request-Id = %q, want %q copied from the original", reason, got, harmlessRequestID)
		}
		if strings.Contains(string(letter.Data), secretAPIToken) {
			t.Errorf("%s dead letter body contains the API token", reason)
		}
	}
}

// readDeadLetters returns every message of the dead-letter stream.
func readDeadLetters(t *testing.T, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	stream, err := js.Stream(ctx, topology.DefaultDeadLetterStream)
	if err != nil {
		t.Fatalf("find stream %s: %v", topology.DefaultDeadLetterStream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatalf("read stream %s info: %v", topology.DefaultDeadLetterStream, err)
	}

	var letters []*jetstream.RawStreamMsg
	for sequence := info.State.FirstSeq; info.State.Msgs > 0 && sequence <= info.State.LastSeq; sequence++ {
		msg, err := stream.GetMsg(ctx, sequence)
		if err != nil {
			t.Fatalf("read %s message %d: %v", topology.DefaultDeadLetterStream, sequence, err)
		}
		letters = append(letters, msg)
	}
	return letters
}

func TestAPIHTTPSNeedsTrustedCA(t *testing.T) {
	natsServer := natstest.Start(t)
	_, js := natstest.Connect(t, natsServer)
	api, err := contactapi.New(contactapi.Options{Token: testToken})
	if err != nil {
		t.Fatalf("create contact API stand-in: %v", err)
	}
	httpsServer := httptest.NewUnstartedServer(api)
	// Handshakes that the untrusting client aborts would be logged to
	// stderr otherwise.
	httpsServer.Config.ErrorLog = log.New(io.Discard, "", 0)
	httpsServer.StartTLS()
	t.Cleanup(httpsServer.Close)
	caFile := writeSecretFile(t, "api-ca.pem", pemCertificate(httpsServer.Certificate().Raw))
	env := &testEnv{natsURL: natsServer.ClientURL(), js: js, api: api, apiURL: httpsServer.URL}

	id := eventgen.ContactIDs(1)[0]
	if err := api.AddContacts(id); err != nil {
		t.Fatalf("add contact to the stand-in: %v", err)
	}
	untrusting := startService(t, env.load(t, map[string]string{"CONTACT_SYNC_DRAIN_TIMEOUT": "500ms"}))
	waitReady(t, untrusting, readyTimeout)
	publishChange(t, js, "https-0", id, map[string]any{"name": "Ada"})

	waitFor(t, applyTimeout, func() bool {
		return untrusting.svc.Worker().Stats().Attempts >= 3
	}, func() string {
		return fmt.Sprintf("three PUT attempts; worker stats %+v; logs:\n%s", untrusting.svc.Worker().Stats(), untrusting.logs)
	})
	entry := waitForErrorLog(t, untrusting, rejectedLogTimeout, certificateErrorWords...)
	t.Logf("logged without the API CA: %s: %s", entry.Message, entry.Error)
	stats := untrusting.svc.Worker().Stats()
	if stats.EventsApplied != 0 {
		t.Errorf("without the API CA the worker applied %d events, want 0", stats.EventsApplied)
	}
	for reason, count := range stats.EventsDeadLettered {
		if count != 0 {
			t.Errorf("without the API CA the worker dead-lettered %d events as %s, want 0: a TLS failure must be retried", count, reason)
		}
	}
	if requests := api.Stats().Requests; requests != 0 {
		t.Errorf("the stand-in served %d requests over an unverified connection, want 0", requests)
	}
	if err := untrusting.stop(t); err != nil {
		t.Errorf("Run of the service without the API CA = %v, want nil", err)
	}
	if letters := readDeadLetters(t, js); len(letters) != 0 {
		t.Errorf("the dead-letter stream has %d messages after the TLS failures, want 0", len(letters))
	}

	// The event was nakked at shutdown, so a service that trusts the
	// certificate applies it.
	trusting := startService(t, env.load(t, map[string]string{"CONTACT_SYNC_API_CA_FILE": caFile}))
	waitFor(t, applyTimeout, func() bool {
		state, ok := api.Contact(id)
		return ok && state.Name.Value == "Ada"
	}, func() string {
		return fmt.Sprintf("the event to be applied over HTTPS; worker stats %+v; logs:\n%s", trusting.svc.Worker().Stats(), trusting.logs)
	})
}
