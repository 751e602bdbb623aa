package contactapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

// Listen serves s over HTTP/1.1 on a TCP address until shutdown is called.
// The empty addr means 127.0.0.1 on a free port. It returns the base URL,
// such as "http://127.0.0.1:41234", to which the path template is
// appended, and an error when it cannot listen on addr.
//
// shutdown stops accepting connections and waits for active requests until
// ctx ends, then closes every connection, which ends requests waiting in
// Latency or a fault's Delay. It returns the error of that wait, if any,
// and the error that stopped the server, if it stopped on its own. Calling
// it again returns the same result.
func (s *Server) Listen(addr string) (baseURL string, shutdown func(ctx context.Context) error, err error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("contact API stand-in: listen on %s: %w", addr, err)
	}

	httpServer := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		// A library does not log; net/http would log accept errors and
		// handler panics other than http.ErrAbortHandler.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	served := make(chan error, 1)
	go func() {
		served <- httpServer.Serve(listener)
	}()

	var once sync.Once
	var shutdownErr error
	shutdown = func(ctx context.Context) error {
		once.Do(func() {
			waitErr := httpServer.Shutdown(ctx)
			if waitErr != nil {
				_ = httpServer.Close() // the wait's error is the one to report
			}
			serveErr := <-served
			if errors.Is(serveErr, http.ErrServerClosed) {
				serveErr = nil
			}
			shutdownErr = errors.Join(waitErr, serveErr)
		})
		return shutdownErr
	}
	return "http://" + listener.Addr().String(), shutdown, nil
}
