package bench

import (
	"context"
	"fmt"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/contact-sync/contact-sync/config"
	"github.com/contact-sync/contact-sync/internal/service"
	"github.com/contact-sync/contact-sync/internal/topology"
	"github.com/contact-sync/contact-sync/sink"
	"github.com/contact-sync/contact-sync/worker"
)

// BenchmarkWorkerUnlimited runs scenario 2 (200,000 events over 20,000
// contacts, Zipf-skewed, unlimited rate) with the worker in this process,
// through internal/service, so that -cpuprofile and -memprofile see it.
// The nats-server and the stand-in run in this process too; filter the
// CPU profile with -tagfocus component=worker. Run it once:
//
//	go test -run '^$' -bench WorkerUnlimited -benchtime 1x \
//	    -cpuprofile cpu.out -memprofile mem.out ./internal/bench/
func BenchmarkWorkerUnlimited(b *testing.B) {
	w := sizesFor(Full).unlimited
	s := unlimitedSettings
	for b.Loop() {
		b.StopTimer()
		env, backlog := startBacklog(b, w, s)
		b.StartTimer()

		start := time.Now()
		runInProcess(b, env, s)
		elapsed := time.Since(start)

		b.StopTimer()
		b.ReportMetric(perSecond(int64(w.Events), elapsed), "events/s")
		b.ReportMetric(float64(env.api.Stats().Requests), "PUTs")
		if n := backlog.mismatches(env); n != 0 {
			b.Errorf("%d contacts differ from the stream-order fold", n)
		}
		env.close()
		b.StartTimer()
	}
}

func startBacklog(b *testing.B, w workload, s settings) (*environment, *backlog) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	env, err := startEnvironment(ctx, s.MaxAckPending)
	if err != nil {
		b.Fatal(err)
	}
	backlog, err := publishBacklog(ctx, env, w)
	if err != nil {
		env.close()
		b.Fatal(err)
	}
	return env, backlog
}

// BenchmarkWorkerFetchBatch runs scenario 2's workload with the worker
// built directly by worker.New, in this process, once per pull batch size:
// Options.FetchBatch is not a setting of `contact-sync run`. The
// nats-server and the stand-in share the process and its two cores. Run:
//
//	go test -run '^$' -bench WorkerFetchBatch -benchtime 1x ./internal/bench/
func BenchmarkWorkerFetchBatch(b *testing.B) {
	w := sizesFor(Full).unlimited
	s := unlimitedSettings
	for _, batch := range []int{50, 200, 500, 2000, 5000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				env, backlog := startBacklog(b, w, s)
				b.StartTimer()

				start := time.Now()
				runWorkerDirect(b, env, s, batch)
				elapsed := time.Since(start)

				b.StopTimer()
				b.ReportMetric(perSecond(int64(w.Events), elapsed), "events/s")
				b.ReportMetric(float64(env.api.Stats().Requests), "PUTs")
				if n := backlog.mismatches(env); n != 0 {
					b.Errorf("%d contacts differ from the stream-order fold", n)
				}
				env.close()
				b.StartTimer()
			}
		})
	}
}

// runWorkerDirect runs a worker.Worker with the given pull batch on env
// until the consumer is drained, then stops it.
func runWorkerDirect(b *testing.B, env *environment, s settings, fetchBatch int) {
	b.Helper()
	client, err := sink.New(sink.Options{BaseURL: env.apiURL, Token: sink.StaticToken(apiToken), RateLimit: s.RateLimit, RateBurst: s.RateBurst})
	if err != nil {
		b.Fatal(err)
	}
	conn, err := nats.Connect(env.natsServer.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	js, err := jetstream.New(conn)
	if err != nil {
		b.Fatal(err)
	}

	contactWorker, err := worker.New(worker.Options{
		Conn:      conn,
		JetStream: js,
		Stream:    topology.DefaultStream,
		Consumer: func(ctx context.Context) (jetstream.Consumer, error) {
			return topology.Provision(ctx, js, topologyOptions(s.MaxAckPending))
		},
		Sink:        client,
		Concurrency: s.Concurrency,
		MergeWindow: s.MergeWindow,
		FetchBatch:  fetchBatch,
	})
	if err != nil {
		b.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), DefaultScenarioTimeout)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- contactWorker.Run(runCtx) }()

	drainErr := env.waitDrained(ctx, nil)
	stop()
	if err := <-stopped; err != nil {
		b.Errorf("worker: %v", err)
	}
	if drainErr != nil {
		b.Fatal(drainErr)
	}
}

// runInProcess runs the worker through internal/service until the
// consumer is drained, then stops it.
func runInProcess(b testing.TB, env *environment, s settings) {
	b.Helper()
	cfg, err := config.Load(map[string]string{
		"CONTACT_SYNC_NATS_URL":        env.natsServer.ClientURL(),
		"CONTACT_SYNC_API_BASE_URL":    env.apiURL,
		"CONTACT_SYNC_API_TOKEN":       apiToken,
		"CONTACT_SYNC_RATE_LIMIT":      strconv.FormatFloat(s.RateLimit, 'g', -1, 64),
		"CONTACT_SYNC_RATE_BURST":      strconv.Itoa(s.RateBurst),
		"CONTACT_SYNC_CONCURRENCY":     strconv.Itoa(s.Concurrency),
		"CONTACT_SYNC_MERGE_WINDOW":    s.MergeWindow.String(),
		"CONTACT_SYNC_MAX_ACK_PENDING": strconv.Itoa(s.MaxAckPending),
		"CONTACT_SYNC_HTTP_ADDR":       "127.0.0.1:0",
	})
	if err != nil {
		b.Fatal(err)
	}

	// Every goroutine the worker starts, its NATS connection's and HTTP
	// client's included, inherits this label; the nats-server's and the
	// stand-in's do not. Select the worker's CPU samples with
	// -tagfocus component=worker.
	ctx, cancel := context.WithTimeout(context.Background(), DefaultScenarioTimeout)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	pprof.Do(runCtx, pprof.Labels("component", "worker"), func(runCtx context.Context) {
		svc, err := service.Start(cfg, zerolog.Nop(), prometheus.NewRegistry())
		if err != nil {
			b.Fatal(err)
		}
		go func() { stopped <- svc.Run(runCtx) }()
	})

	drainErr := env.waitDrained(ctx, nil)
	stop()
	if err := <-stopped; err != nil {
		b.Errorf("worker: %v", err)
	}
	if drainErr != nil {
		b.Fatal(drainErr)
	}
}
