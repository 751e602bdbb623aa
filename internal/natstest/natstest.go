// Package natstest starts a real in-process nats-server with JetStream for
// tests, and connects clients to it.
package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/contact-sync/contact-sync/internal/embeddednats"
)

// Start starts a nats-server with JetStream on 127.0.0.1 and a random port,
// storing in a temporary directory, and shuts it down when the test ends.
func Start(t testing.TB) *server.Server {
	t.Helper()

	natsServer, err := embeddednats.Start(embeddednats.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	t.Cleanup(func() {
		natsServer.Shutdown()
		natsServer.WaitForShutdown()
	})
	return natsServer
}

// Connect connects to the server and returns the connection with its
// JetStream context. The connection is closed when the test ends.
func Connect(t testing.TB, natsServer *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()

	conn, err := nats.Connect(natsServer.ClientURL())
	if err != nil {
		t.Fatalf("connect to nats-server at %s: %v", natsServer.ClientURL(), err)
	}
	t.Cleanup(conn.Close)

	js, err := jetstream.New(conn)
	if err != nil {
		t.Fatalf("create JetStream context: %v", err)
	}
	return conn, js
}
