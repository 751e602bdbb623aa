// Package demo runs the whole contact-sync path on one machine: an
// embedded JetStream server, a stand-in for the contact API on 127.0.0.1,
// two imports of a real CRM export with some rows changed in between, and
// the worker until the stream is drained. It then checks the stand-in's
// contacts against the fold of every event in stream order and reports.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/contact-sync/contact-sync/config"
	"github.com/contact-sync/contact-sync/internal/contactapi"
	"github.com/contact-sync/contact-sync/internal/embeddednats"
	"github.com/contact-sync/contact-sync/internal/importer"
	"github.com/contact-sync/contact-sync/internal/service"
	"github.com/contact-sync/contact-sync/internal/topology"
)

// Options configures a demo run. Input and Mapping are required; a zero
// number takes the default in brackets.
type Options struct {
	// Input is the CRM export (CSV) and Mapping its column mapping.
	Input   string
	Mapping string

	// RateLimit and RateBurst limit requests to the stand-in [100, 10].
	RateLimit float64
	RateBurst int

	// Concurrency is the most PUTs in flight [16].
	Concurrency int

	// UnknownEvery makes every contact whose CRM id is a multiple of it
	// unknown to the stand-in, so that its events are dead-lettered [10].
	UnknownEvery int

	// ChangeEvery changes every row whose CRM id is a multiple of it
	// between the two imports [4].
	ChangeEvery int

	// Timeout bounds the whole run [2m].
	Timeout time.Duration

	// Logger receives the worker's logs.
	Logger zerolog.Logger

	// Progress receives the progress display; Terminal selects a bar
	// instead of periodic lines.
	Progress io.Writer
	Terminal bool
}

func (o *Options) setDefaults() {
	if o.RateLimit == 0 {
		o.RateLimit = 100
	}
	if o.RateBurst == 0 {
		o.RateBurst = 10
	}
	if o.Concurrency == 0 {
		o.Concurrency = 16
	}
	if o.UnknownEvery == 0 {
		o.UnknownEvery = 10
	}
	if o.ChangeEvery == 0 {
		o.ChangeEvery = 4
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// demoToken is the stand-in's bearer token; it guards nothing real.
const demoToken = "demo-token"

// Run runs the demo and returns its report. The report's Mismatches must be
// 0 and its Lost 0 for the run to have kept the worker's promises.
func Run(ctx context.Context, opts Options) (Report, error) {
	opts.setDefaults()
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	workDir, err := os.MkdirTemp("", "contact-sync-demo-")
	if err != nil {
		return Report{}, fmt.Errorf("create a temporary directory: %w", err)
	}
	defer os.RemoveAll(workDir)

	env, err := startEnvironment(workDir)
	if err != nil {
		return Report{}, err
	}
	defer env.close()

	dataset, err := loadDataset(opts, workDir)
	if err != nil {
		return Report{}, err
	}
	if err := env.api.AddContacts(dataset.known...); err != nil {
		return Report{}, fmt.Errorf("add contacts to the stand-in: %w", err)
	}

	fmt.Fprintf(opts.Progress, "stand-in contact API knows %d of the export's %d contacts; %d are unknown and will be dead-lettered\n",
		len(dataset.known), dataset.rows, dataset.rows-len(dataset.known))

	published, err := importTwice(ctx, env.js, opts, dataset)
	if err != nil {
		return Report{}, err
	}
	return runWorker(ctx, env, opts, dataset, published)
}

// environment is the embedded NATS server and the stand-in API.
type environment struct {
	natsServer interface {
		ClientURL() string
		Shutdown()
		WaitForShutdown()
	}
	conn    *nats.Conn
	js      jetstream.JetStream
	api     *contactapi.Server
	apiURL  string
	stopAPI func(context.Context) error
}

func startEnvironment(workDir string) (*environment, error) {
	natsServer, err := embeddednats.Start(embeddednats.Options{StoreDir: filepath.Join(workDir, "jetstream")})
	if err != nil {
		return nil, err
	}
	env := &environment{natsServer: natsServer}

	env.conn, err = nats.Connect(natsServer.ClientURL())
	if err != nil {
		env.close()
		return nil, fmt.Errorf("connect to the embedded NATS server: %w", err)
	}
	env.js, err = jetstream.New(env.conn)
	if err != nil {
		env.close()
		return nil, fmt.Errorf("create JetStream context: %w", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := topology.ProvisionStreams(ctx, env.js, topology.Options{}); err != nil {
		env.close()
		return nil, err
	}

	env.api, err = contactapi.New(contactapi.Options{Token: demoToken, NoRequestLog: true})
	if err != nil {
		env.close()
		return nil, err
	}
	env.apiURL, env.stopAPI, err = env.api.Listen("127.0.0.1:0")
	if err != nil {
		env.close()
		return nil, err
	}
	return env, nil
}

func (e *environment) close() {
	if e.stopAPI != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.stopAPI(ctx)
	}
	if e.conn != nil {
		e.conn.Close()
	}
	e.natsServer.Shutdown()
	e.natsServer.WaitForShutdown()
}

// importTwice imports the export, then the changed copy, and returns the
// number of events stored.
func importTwice(ctx context.Context, js jetstream.JetStream, opts Options, dataset *dataset) (int, error) {
	total := 0
	for i, path := range []string{opts.Input, dataset.changedPath} {
		result, err := importer.ImportFile(ctx, js, path, importer.Options{Format: importer.FormatCSV, Mapping: &dataset.mapping})
		if err != nil {
			return 0, fmt.Errorf("import %s: %w", path, err)
		}
		if result.Failed > 0 {
			return 0, fmt.Errorf("import %s: %d of %d rows failed, first: %w", path, result.Failed, result.Records, errors.Join(firstError(result)))
		}
		total += result.Published
		fmt.Fprintf(opts.Progress, "import %d: published %d events from %s (%d duplicates)\n", i+1, result.Published, describeInput(i, path, dataset.changedRows), result.Duplicates)
	}
	return total, nil
}

func firstError(result importer.Result) error {
	if len(result.Errors) == 0 {
		return nil
	}
	return result.Errors[0]
}

func describeInput(index int, path string, changedRows int) string {
	if index == 0 {
		return filepath.Base(path)
	}
	return "the same export with " + strconv.Itoa(changedRows) + " rows changed"
}

// runWorker starts the worker on the embedded environment, waits until
// every published event is applied or dead-lettered, stops it and reports.
func runWorker(ctx context.Context, env *environment, opts Options, dataset *dataset, published int) (Report, error) {
	cfg, err := config.Load(map[string]string{
		"CONTACT_SYNC_NATS_URL":           env.natsServer.ClientURL(),
		"CONTACT_SYNC_API_BASE_URL":       env.apiURL,
		"CONTACT_SYNC_API_TOKEN":          demoToken,
		"CONTACT_SYNC_RATE_LIMIT":         strconv.FormatFloat(opts.RateLimit, 'f', -1, 64),
		"CONTACT_SYNC_RATE_BURST":         strconv.Itoa(opts.RateBurst),
		"CONTACT_SYNC_CONCURRENCY":        strconv.Itoa(opts.Concurrency),
		"CONTACT_SYNC_HTTP_ADDR":          "127.0.0.1:0",
		"CONTACT_SYNC_MERGE_WINDOW":       "100ms",
		"CONTACT_SYNC_RETRY_MAX_INTERVAL": "2s",
	})
	if err != nil {
		return Report{}, fmt.Errorf("demo settings: %w", err)
	}

	svc, err := service.Start(cfg, opts.Logger, prometheus.NewRegistry())
	if err != nil {
		return Report{}, err
	}
	started := time.Now()
	runCtx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	runDone := make(chan error, 1)
	go func() { runDone <- svc.Run(runCtx) }()

	fmt.Fprintf(opts.Progress, "worker started: %g PUTs per second, burst %d, metrics on http://%s/metrics\n", opts.RateLimit, opts.RateBurst, svc.HTTPAddr())
	drainErr := waitDrained(ctx, svc, published, opts)
	elapsed := time.Since(started)
	stopWorker()
	if err := <-runDone; err != nil {
		return Report{}, fmt.Errorf("worker: %w", err)
	}
	if drainErr != nil {
		return Report{}, drainErr
	}

	return buildReport(ctx, env, svc.Worker().Stats(), dataset, published, elapsed)
}
