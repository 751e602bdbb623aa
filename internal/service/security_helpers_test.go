package service_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/contact-sync/contact-sync/internal/contactapi"
)

// natsReadyTimeout bounds how long a test waits for its nats-server to
// accept clients.
const natsReadyTimeout = 10 * time.Second

// testPKI contains the paths of a certificate authority and of a server and a
// client certificate it signed, all PEM files in a temporary directory.
type testPKI struct {
	caFile         string
	serverCertFile string
	serverKeyFile  string
	clientCertFile string
	clientKeyFile  string
}

// newTestPKI generates an ECDSA P-256 CA, a server certificate for the IP
// address 127.0.0.1 and a client certificate, valid for one hour.
func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()

	caKey := newKey(t)
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "contact-sync test CA"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("create CA certificate: %v", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("parse CA certificate: %v", err)
	}

	pki := testPKI{caFile: filepath.Join(dir, "ca.pem")}
	writePEM(t, pki.caFile, "CERTIFICATE", caDER)

	serverTemplate := leafTemplate(2, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	serverTemplate.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	pki.serverCertFile, pki.serverKeyFile = issueLeaf(t, dir, "server", serverTemplate, caCert, caKey)

	clientTemplate := leafTemplate(3, "contact-sync", x509.ExtKeyUsageClientAuth)
	pki.clientCertFile, pki.clientKeyFile = issueLeaf(t, dir, "client", clientTemplate, caCert, caKey)
	return pki
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate ECDSA key: %v", err)
	}
	return key
}

func leafTemplate(serial int64, commonName string, usage x509.ExtKeyUsage) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
}

// issueLeaf signs template with the CA and writes the certificate and its
// key to name.pem and name-key.pem in dir.
func issueLeaf(t *testing.T, dir, name string, template, caCert *x509.Certificate, caKey *ecdsa.PrivateKey) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, template, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatalf("create %s certificate: %v", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("encode %s key: %v", name, err)
	}

	certFile = filepath.Join(dir, name+".pem")
	keyFile = filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, blockType string, der []byte) {
	t.Helper()
	data := pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// writeSecretFile writes content to a new file readable only by its owner
// and returns its path.
func writeSecretFile(t *testing.T, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return path
}

// startNATSWith starts a nats-server with JetStream on 127.0.0.1 and a
// random port, configured by opts for TLS or authentication, and shuts it
// down when the test ends.
func startNATSWith(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.Host = "127.0.0.1"
	opts.Port = server.RANDOM_PORT
	opts.JetStream = true
	opts.StoreDir = t.TempDir()
	opts.NoLog = true
	opts.NoSigs = true

	natsServer, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("create nats-server: %v", err)
	}
	go natsServer.Start()
	t.Cleanup(func() {
		natsServer.Shutdown()
		natsServer.WaitForShutdown()
	})

	if !natsServer.ReadyForConnections(natsReadyTimeout) {
		t.Fatalf("nats-server not ready for connections after %s", natsReadyTimeout)
	}
	return natsServer
}

// serverURL returns the server's client URL with the given scheme, nats or
// tls.
func serverURL(natsServer *server.Server, scheme string) string {
	return fmt.Sprintf("%s://%s", scheme, natsServer.Addr().String())
}

// startTLSNATS starts a nats-server that requires TLS with pki's server
// certificate and, when verifyClients is true, a client certificate signed
// by pki's CA.
func startTLSNATS(t *testing.T, pki testPKI, verifyClients bool) *server.Server {
	t.Helper()
	tlsConfig, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: pki.serverCertFile,
		KeyFile:  pki.serverKeyFile,
		CaFile:   pki.caFile,
		Verify:   verifyClients,
	})
	if err != nil {
		t.Fatalf("build the nats-server TLS config: %v", err)
	}
	return startNATSWith(t, &server.Options{TLS: true, TLSVerify: verifyClients, TLSConfig: tlsConfig})
}

// connectJetStream connects a test client with options and returns its
// JetStream context. The connection is closed when the test ends.
func connectJetStream(t *testing.T, url string, options ...nats.Option) jetstream.JetStream {
	t.Helper()
	conn, err := nats.Connect(url, options...)
	if err != nil {
		t.Fatalf("connect the test client to %s: %v", url, err)
	}
	t.Cleanup(conn.Close)

	js, err := jetstream.New(conn)
	if err != nil {
		t.Fatalf("create JetStream context: %v", err)
	}
	return js
}

// startStandIn starts the contact API stand-in on 127.0.0.1 with token and
// stops it when the test ends.
func startStandIn(t *testing.T, token string) (*contactapi.Server, string) {
	t.Helper()
	api, err := contactapi.New(contactapi.Options{Token: token})
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
	return api, apiURL
}

// newEnvOn returns a test environment on a nats-server the test started,
// with a stand-in that accepts testToken.
func newEnvOn(t *testing.T, natsURL string, js jetstream.JetStream) *testEnv {
	t.Helper()
	api, apiURL := startStandIn(t, testToken)
	return &testEnv{natsURL: natsURL, js: js, api: api, apiURL: apiURL}
}

// logEntry is the part of a JSON log line that the tests read.
type logEntry struct {
	Level   string `json:"level"`
	Error   string `json:"error"`
	Message string `json:"message"`
}

// findErrorLog returns the first warn or error log line whose error
// contains any of needles, ignoring case.
func findErrorLog(logs string, needles ...string) (logEntry, bool) {
	for line := range strings.Lines(logs) {
		var entry logEntry
		if json.Unmarshal([]byte(line), &entry) != nil {
			continue
		}
		if entry.Level != "warn" && entry.Level != "error" {
			continue
		}
		lowered := strings.ToLower(entry.Error)
		for _, needle := range needles {
			if strings.Contains(lowered, strings.ToLower(needle)) {
				return entry, true
			}
		}
	}
	return logEntry{}, false
}

// waitForErrorLog waits until the service logs a warning or error whose
// error contains any of needles, and fails the test after timeout.
func waitForErrorLog(t *testing.T, r *running, timeout time.Duration, needles ...string) logEntry {
	t.Helper()
	var found logEntry
	waitFor(t, timeout, func() bool {
		var ok bool
		found, ok = findErrorLog(r.logs.String(), needles...)
		return ok
	}, func() string {
		return fmt.Sprintf("a warn or error log line whose error mentions one of %q; logs:\n%s", needles, r.logs)
	})
	return found
}

// expectNotReady checks that /readyz returns 503 and that no request
// reached the stand-in.
func expectNotReady(t *testing.T, r *running, env *testEnv) {
	t.Helper()
	status, body := get(t, r.url("/readyz"))
	if status != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d %q, want 503", status, body)
	}
	if requests := env.api.Stats().Requests; requests != 0 {
		t.Errorf("the stand-in received %d requests from a service that should not consume, want 0", requests)
	}
}

// operatorChain is an operator, a system account and one account with
// JetStream, with a user of that account whose credentials file the
// service reads.
type operatorChain struct {
	operator      *jwt.OperatorClaims
	systemAccount string
	resolver      *server.MemAccResolver
	credsFile     string
}

// newOperatorChain builds the JWTs of an operator-mode nats-server: the
// operator signs the system account and the application account, whose
// JetStream limits are unlimited, and the application account signs a
// user with default permissions.
func newOperatorChain(t *testing.T) operatorChain {
	t.Helper()
	operatorKey := mustKey(t, nkeys.CreateOperator)
	operatorPublic := mustPublicKey(t, operatorKey)
	operatorClaims := jwt.NewOperatorClaims(operatorPublic)
	operatorClaims.Name = "test-operator"

	resolver := &server.MemAccResolver{}
	systemKey := mustKey(t, nkeys.CreateAccount)
	systemPublic := mustPublicKey(t, systemKey)
	systemClaims := jwt.NewAccountClaims(systemPublic)
	systemClaims.Name = "SYS"
	storeAccount(t, resolver, systemClaims, operatorKey)

	accountKey := mustKey(t, nkeys.CreateAccount)
	accountPublic := mustPublicKey(t, accountKey)
	accountClaims := jwt.NewAccountClaims(accountPublic)
	accountClaims.Name = "contacts"
	accountClaims.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	storeAccount(t, resolver, accountClaims, operatorKey)

	userKey := mustKey(t, nkeys.CreateUser)
	userClaims := jwt.NewUserClaims(mustPublicKey(t, userKey))
	userClaims.Name = "contact-sync"
	userJWT, err := userClaims.Encode(accountKey)
	if err != nil {
		t.Fatalf("encode user JWT: %v", err)
	}
	userSeed, err := userKey.Seed()
	if err != nil {
		t.Fatalf("read user seed: %v", err)
	}
	creds, err := jwt.FormatUserConfig(userJWT, userSeed)
	if err != nil {
		t.Fatalf("format credentials file: %v", err)
	}

	return operatorChain{
		operator:      operatorClaims,
		systemAccount: systemPublic,
		resolver:      resolver,
		credsFile:     writeSecretFile(t, "contact-sync.creds", creds),
	}
}

func storeAccount(t *testing.T, resolver *server.MemAccResolver, claims *jwt.AccountClaims, operatorKey nkeys.KeyPair) {
	t.Helper()
	encoded, err := claims.Encode(operatorKey)
	if err != nil {
		t.Fatalf("encode account JWT %s: %v", claims.Name, err)
	}
	if err := resolver.Store(claims.Subject, encoded); err != nil {
		t.Fatalf("store account JWT %s: %v", claims.Name, err)
	}
}

func mustKey(t *testing.T, create func() (nkeys.KeyPair, error)) nkeys.KeyPair {
	t.Helper()
	key, err := create()
	if err != nil {
		t.Fatalf("create NKey: %v", err)
	}
	return key
}

func mustPublicKey(t *testing.T, key nkeys.KeyPair) string {
	t.Helper()
	public, err := key.PublicKey()
	if err != nil {
		t.Fatalf("read NKey public key: %v", err)
	}
	return public
}

// pemCertificate encodes a DER certificate as PEM.
func pemCertificate(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
