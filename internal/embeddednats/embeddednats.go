// Package embeddednats starts an in-process nats-server with JetStream, for
// the demo and for tests. It listens on 127.0.0.1 only.
package embeddednats

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds how long Start waits for the server to accept clients.
const readyTimeout = 10 * time.Second

// Options configures an embedded server. The zero value is not valid:
// StoreDir is required.
type Options struct {
	// StoreDir is the directory for JetStream's file storage.
	StoreDir string

	// Port is the client port on 127.0.0.1; 0 picks a free port.
	Port int
}

// Start starts a nats-server with JetStream and waits until it accepts
// clients. The caller stops it with Shutdown and WaitForShutdown.
func Start(opts Options) (*server.Server, error) {
	if opts.StoreDir == "" {
		return nil, fmt.Errorf("embeddednats: StoreDir is required")
	}

	port := opts.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	serverOpts := &server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  opts.StoreDir,
		NoLog:     true,
		NoSigs:    true,
		// The HTTP monitoring port stays off; nothing here reads it.
		HTTPPort: 0,
	}

	natsServer, err := server.NewServer(serverOpts)
	if err != nil {
		return nil, fmt.Errorf("embeddednats: create server: %w", err)
	}
	go natsServer.Start()

	if !natsServer.ReadyForConnections(readyTimeout) {
		natsServer.Shutdown()
		return nil, fmt.Errorf("embeddednats: server not ready for connections after %s", readyTimeout)
	}
	return natsServer, nil
}
