package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/contact-sync/contact-sync/internal/contactapi"
	"github.com/contact-sync/contact-sync/internal/embeddednats"
	"github.com/contact-sync/contact-sync/internal/topology"
)

// apiToken is the stand-in's bearer token. It guards nothing real, but
// the worker must send it as it would a real one.
const apiToken = "bench-token"

// environment is one measurement's own nats-server, with the streams and
// the consumer provisioned, and its own stand-in contact API.
type environment struct {
	dir        string
	natsServer *server.Server
	conn       *nats.Conn
	js         jetstream.JetStream
	consumer   jetstream.Consumer
	api        *contactapi.Server
	apiURL     string
	stopAPI    func(context.Context) error
}

// startEnvironment starts a fresh nats-server in a temporary directory,
// provisions the streams and the consumer with maxAckPending, and starts
// the stand-in API on 127.0.0.1 without its request log.
func startEnvironment(ctx context.Context, maxAckPending int) (*environment, error) {
	dir, err := os.MkdirTemp("", "contact-sync-bench-")
	if err != nil {
		return nil, fmt.Errorf("create a temporary directory: %w", err)
	}
	env := &environment{dir: dir}

	if err := env.startNATS(ctx, maxAckPending); err != nil {
		env.close()
		return nil, err
	}

	env.api, err = contactapi.New(contactapi.Options{Token: apiToken, NoRequestLog: true})
	if err != nil {
		env.close()
		return nil, fmt.Errorf("create the stand-in API: %w", err)
	}
	env.apiURL, env.stopAPI, err = env.api.Listen("127.0.0.1:0")
	if err != nil {
		env.close()
		return nil, err
	}
	return env, nil
}

func (e *environment) startNATS(ctx context.Context, maxAckPending int) error {
	var err error
	e.natsServer, err = embeddednats.Start(embeddednats.Options{StoreDir: filepath.Join(e.dir, "jetstream")})
	if err != nil {
		return err
	}

	e.conn, err = nats.Connect(e.natsServer.ClientURL(), nats.Name("contact-sync-bench"))
	if err != nil {
		return fmt.Errorf("connect to the embedded nats-server at %s: %w", e.natsServer.ClientURL(), err)
	}
	e.js, err = jetstream.New(e.conn)
	if err != nil {
		return fmt.Errorf("create JetStream context: %w", err)
	}

	provisionCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	e.consumer, err = topology.Provision(provisionCtx, e.js, topologyOptions(maxAckPending))
	return err
}

// topologyOptions are the options the worker provisions with, given
// CONTACT_SYNC_MAX_ACK_PENDING; both sides must agree, or the worker's
// start-up would change the consumer the bench created.
func topologyOptions(maxAckPending int) topology.Options {
	return topology.Options{MaxAckPending: maxAckPending}
}

// close stops the stand-in and the nats-server and removes the temporary
// directory. It is safe on a partly started environment.
func (e *environment) close() {
	if e.stopAPI != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = e.stopAPI(ctx)
		cancel()
	}
	if e.conn != nil {
		e.conn.Close()
	}
	if e.natsServer != nil {
		e.natsServer.Shutdown()
		e.natsServer.WaitForShutdown()
	}
	_ = os.RemoveAll(e.dir)
}

// errNotDrained is wrapped by waitDrained when the consumer still had
// messages when the wait ended.
var errNotDrained = errors.New("consumer not drained")

// drainPollInterval is how often waitDrained reads the consumer's state.
// A measured time is therefore late by up to this much.
const drainPollInterval = 50 * time.Millisecond

// waitDrained polls the consumer until it has no message pending and none
// waiting for an ack, and returns when that was seen. It returns an error
// wrapping errNotDrained when ctx ends or stopped is closed first (the
// worker process exited, say); stopped may be nil.
func (e *environment) waitDrained(ctx context.Context, stopped <-chan struct{}) error {
	ticker := time.NewTicker(drainPollInterval)
	defer ticker.Stop()

	var last *jetstream.ConsumerInfo
	for {
		info, err := e.consumer.Info(ctx)
		if err == nil {
			last = info
			if info.NumPending == 0 && info.NumAckPending == 0 {
				return nil
			}
		}

		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s: %w", errNotDrained, describeConsumer(last), ctx.Err())
		case <-stopped:
			return fmt.Errorf("%w: %s: the consumer's process stopped", errNotDrained, describeConsumer(last))
		case <-ticker.C:
		}
	}
}

func describeConsumer(info *jetstream.ConsumerInfo) string {
	if info == nil {
		return "consumer state never read"
	}
	return fmt.Sprintf("%d messages pending, %d waiting for an ack", info.NumPending, info.NumAckPending)
}
