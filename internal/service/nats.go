package service

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/contact-sync/contact-sync/config"
)

// connectNATS connects with credentials and TLS from cfg. The connection
// reconnects forever, and a first connection that fails is retried in the
// background, so that the worker starts, reports not-ready, and catches up
// once NATS is reachable.
func connectNATS(cfg config.Config, logger zerolog.Logger) (*nats.Conn, error) {
	redactedURL := fmt.Sprint(cfg.LogFields()["nats_url"])

	// lastConnectErr keeps a rejected certificate or credential, which
	// fails every attempt the same way, to one error line. nats.go runs
	// these callbacks on one goroutine, so it needs no lock.
	var lastConnectErr string
	options := []nats.Option{
		nats.Name("contact-sync"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(conn *nats.Conn, err error) {
			// A closed connection was closed on purpose, at shutdown, and
			// does not reconnect.
			if conn.IsClosed() {
				return
			}
			logger.Warn().Err(err).Msg("disconnected from NATS; reconnecting")
		}),
		nats.ConnectHandler(func(*nats.Conn) { lastConnectErr = "" }),
		nats.ReconnectHandler(func(conn *nats.Conn) {
			lastConnectErr = ""
			logger.Info().Str("server", conn.ConnectedUrlRedacted()).Msg("reconnected to NATS")
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			if err.Error() == lastConnectErr {
				logger.Debug().Err(err).Msg("connecting to NATS failed again; retrying")
				return
			}
			lastConnectErr = err.Error()
			logger.Error().Err(err).Str("nats_url", redactedURL).Msg("connecting to NATS failed; retrying")
		}),
		// Without this, nats.go closes the connection for good after the
		// server rejects the credentials twice, and the worker would stay
		// not ready until restarted even once the credentials are fixed.
		nats.IgnoreAuthErrorAbort(),
		nats.ErrorHandler(func(_ *nats.Conn, subscription *nats.Subscription, err error) {
			event := logger.Error().Err(err)
			if subscription != nil {
				event = event.Str("subject", subscription.Subject)
			}
			event.Msg("NATS asynchronous error")
		}),
	}

	if cfg.NATSCredsFile != "" {
		options = append(options, nats.UserCredentials(cfg.NATSCredsFile))
	}
	if cfg.NATSNKeyFile != "" {
		nkeyOption, err := nats.NkeyOptionFromSeed(cfg.NATSNKeyFile)
		if err != nil {
			return nil, fmt.Errorf("CONTACT_SYNC_NATS_NKEY_FILE: read NKey seed: %w", err)
		}
		options = append(options, nkeyOption)
	}
	if cfg.NATSCAFile != "" {
		options = append(options, nats.RootCAs(cfg.NATSCAFile))
	}
	if cfg.NATSCertFile != "" {
		options = append(options, nats.ClientCert(cfg.NATSCertFile, cfg.NATSKeyFile))
	}

	conn, err := nats.Connect(cfg.NATSURL, options...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", cfg.LogFields()["nats_url"], err)
	}
	return conn, nil
}
