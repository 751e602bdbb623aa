// Package service wires the worker's parts from a config.Config: the NATS
// connection, the streams and consumer, the API client, the worker, and the
// HTTP server of /metrics, /livez and /readyz. The run subcommand and the
// demo both start the worker through it.
package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/contact-sync/contact-sync/config"
	"github.com/contact-sync/contact-sync/internal/topology"
	"github.com/contact-sync/contact-sync/sink"
	"github.com/contact-sync/contact-sync/worker"
)

// httpShutdownTimeout bounds the HTTP server's shutdown.
const httpShutdownTimeout = 5 * time.Second

// Service is a started worker with its connection and HTTP server. Create
// it with Start and run it with Run, once.
type Service struct {
	cfg        config.Config
	logger     zerolog.Logger
	conn       *nats.Conn
	worker     *worker.Worker
	httpServer *http.Server
	listener   net.Listener
}

// Start connects to NATS, builds the API client and the worker, and binds
// the HTTP listener. It does not consume yet. The registry receives every
// metric and is served on /metrics.
func Start(cfg config.Config, logger zerolog.Logger, registry *prometheus.Registry) (*Service, error) {
	conn, err := connectNATS(cfg, logger)
	if err != nil {
		return nil, err
	}

	js, err := jetstream.New(conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("create JetStream context: %w", err)
	}

	observer := worker.NewObserver(logger, registry)
	apiClient, err := newSink(cfg, observer)
	if err != nil {
		conn.Close()
		return nil, err
	}

	topologyOptions := topologyOptions(cfg)
	contactWorker, err := worker.New(worker.Options{
		Conn:          conn,
		JetStream:     js,
		Stream:        cfg.Stream,
		Consumer:      consumerSource(js, cfg.Provision, topologyOptions),
		Sink:          apiClient,
		Logger:        logger,
		Observer:      observer,
		Concurrency:   cfg.Concurrency,
		MergeWindow:   cfg.MergeWindow,
		FetchBatch:    cfg.FetchBatch,
		MaxAckPending: cfg.MaxAckPending,
		AckWait:       cfg.AckWait,
		DrainTimeout:  cfg.DrainTimeout,
	})
	if err != nil {
		conn.Close()
		return nil, err
	}

	listener, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("listen on CONTACT_SYNC_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}

	service := &Service{cfg: cfg, logger: logger, conn: conn, worker: contactWorker, listener: listener}
	service.httpServer = &http.Server{
		Handler:           newHTTPHandler(registry, contactWorker),
		ReadHeaderTimeout: 5 * time.Second,
	}
	return service, nil
}

// Run serves HTTP and runs the worker until ctx ends and the worker has
// drained, then stops the HTTP server and closes the connection.
func (s *Service) Run(ctx context.Context) error {
	httpErrors := make(chan error, 1)
	go func() {
		err := s.httpServer.Serve(s.listener)
		if !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error().Err(err).Str("http_addr", s.listener.Addr().String()).Msg("HTTP server failed")
			httpErrors <- err
		}
	}()
	s.logger.Info().Str("http_addr", s.listener.Addr().String()).Msg("serving /metrics, /livez and /readyz")

	runErr := s.worker.Run(ctx)

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), httpShutdownTimeout)
	defer cancel()
	if err := s.httpServer.Shutdown(shutdownCtx); err != nil {
		s.logger.Error().Err(err).Msg("HTTP server shutdown failed")
	}
	if err := s.conn.Drain(); err != nil {
		s.logger.Error().Err(err).Msg("draining the NATS connection failed")
		s.conn.Close()
	}

	select {
	case err := <-httpErrors:
		return errors.Join(runErr, err)
	default:
		return runErr
	}
}

// Worker returns the service's worker.
func (s *Service) Worker() *worker.Worker { return s.worker }

// HTTPAddr returns the address the HTTP server listens on.
func (s *Service) HTTPAddr() string { return s.listener.Addr().String() }

func topologyOptions(cfg config.Config) topology.Options {
	return topology.Options{
		Stream:           cfg.Stream,
		DeadLetterStream: cfg.DeadLetterStream,
		Consumer:         cfg.Consumer,
		AckWait:          cfg.AckWait,
		MaxAckPending:    cfg.MaxAckPending,
	}
}

// consumerSource returns how the worker gets its consumer: by creating or
// updating the streams and consumer, or by binding to an existing one.
func consumerSource(js jetstream.JetStream, provision bool, opts topology.Options) func(context.Context) (jetstream.Consumer, error) {
	if provision {
		return func(ctx context.Context) (jetstream.Consumer, error) { return topology.Provision(ctx, js, opts) }
	}
	return func(ctx context.Context) (jetstream.Consumer, error) { return topology.Bind(ctx, js, opts) }
}

func newSink(cfg config.Config, observer *worker.Observer) (*sink.Client, error) {
	var token sink.TokenSource = sink.StaticToken(cfg.APIToken)
	if cfg.APITokenFile != "" {
		if _, err := sink.ReadTokenFile(cfg.APITokenFile); err != nil {
			return nil, fmt.Errorf("CONTACT_SYNC_API_TOKEN_FILE: %w", err)
		}
		token = sink.NewFileToken(cfg.APITokenFile)
	}

	return sink.New(sink.Options{
		BaseURL:         cfg.APIBaseURL,
		PathTemplate:    cfg.APIPath,
		Token:           token,
		RateLimit:       cfg.RateLimit,
		RateBurst:       cfg.RateBurst,
		Timeout:         cfg.APITimeout,
		InitialInterval: cfg.RetryInitial,
		MaxInterval:     cfg.RetryMax,
		CAFile:          cfg.APICAFile,
		OnAttempt:       observer.ObserveAttempt,
		OnRetry:         observer.ObserveRetry,
		OnRateWait:      observer.ObserveRateWait,
	})
}
