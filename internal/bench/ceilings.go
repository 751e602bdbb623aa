package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/contact-sync/contact-sync/internal/contact"
	"github.com/contact-sync/contact-sync/internal/topology"
	"github.com/contact-sync/contact-sync/sink"
	"github.com/contact-sync/contact-sync/worker"
)

// measureRawConsume publishes the workload and times a minimal pull
// consumer, with the worker's batch size, that only acks each message:
// the most events per second this JetStream setup delivers. It returns
// events per second.
func measureRawConsume(ctx context.Context, w workload, s settings) (float64, error) {
	env, err := startEnvironment(ctx, s.MaxAckPending)
	if err != nil {
		return 0, err
	}
	defer env.close()

	if _, err := publishBacklog(ctx, env, w); err != nil {
		return 0, err
	}

	start := time.Now()
	iterator, err := env.consumer.Messages(jetstream.PullMaxMessages(worker.DefaultFetchBatch))
	if err != nil {
		return 0, fmt.Errorf("raw consume: start pulling: %w", err)
	}
	defer iterator.Stop()
	go func() {
		for {
			msg, err := iterator.Next()
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			if err == nil {
				_ = msg.Ack()
			}
		}
	}()

	if err := env.waitDrained(ctx, nil); err != nil {
		return 0, fmt.Errorf("raw consume: %w", err)
	}
	return perSecond(int64(w.Events), time.Since(start)), nil
}

// measureRawPUT times puts PUTs, one per contact in turn, sent by a
// minimal client with concurrency goroutines over one keep-alive pool:
// the max PUTs per second the stand-in serves on this machine. It returns
// PUTs per second.
func measureRawPUT(ctx context.Context, w workload, puts, concurrency int) (float64, error) {
	env, err := startEnvironment(ctx, 1)
	if err != nil {
		return 0, err
	}
	defer env.close()

	ids := w.contactIDs()
	if err := env.api.AddContacts(ids...); err != nil {
		return 0, fmt.Errorf("add contacts to the stand-in: %w", err)
	}
	body := []byte(`{"name":"Ada","email":"ada@example.com","dynamic_field_list":[{"key":"k1","value":3}]}`)

	transport := &http.Transport{MaxIdleConns: concurrency, MaxIdleConnsPerHost: concurrency}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	var next, failed atomic.Int64
	var senders sync.WaitGroup
	start := time.Now()
	for range concurrency {
		senders.Go(func() {
			for i := next.Add(1) - 1; i < int64(puts); i = next.Add(1) - 1 {
				if rawPUT(ctx, client, env.apiURL+"/contact/"+ids[i%int64(len(ids))]+"/", body) != nil {
					failed.Add(1)
				}
			}
		})
	}
	senders.Wait()
	elapsed := time.Since(start)

	if n := failed.Load(); n > 0 {
		return 0, fmt.Errorf("raw PUT: %d of %d requests failed", n, puts)
	}
	return perSecond(int64(puts), elapsed), nil
}

func rawPUT(ctx context.Context, client *http.Client, url string, body []byte) error {
	request, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	request.Header.Set("Authorization", "Bearer "+apiToken)
	request.Header.Set("Content-Type", "application/json")

	response, err := client.Do(request)
	if err != nil {
		return err
	}
	defer response.Body.Close()
	_, _ = io.Copy(io.Discard, response.Body)
	if response.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s: HTTP %d", url, response.StatusCode)
	}
	return nil
}

// measureNaive publishes the workload and times the naive design: one PUT
// per event through sink.Client, with the scenario's rate limit and the
// default retries. It runs concurrency goroutines and sends each contact's
// events on the same goroutine, so that they stay in stream order. Each
// message is acked after its PUT. It returns events per second and the
// number of contacts that differ at the stand-in afterwards.
func measureNaive(ctx context.Context, w workload, s settings) (float64, int, error) {
	env, err := startEnvironment(ctx, s.MaxAckPending)
	if err != nil {
		return 0, 0, err
	}
	defer env.close()

	backlog, err := publishBacklog(ctx, env, w)
	if err != nil {
		return 0, 0, err
	}
	client, err := sink.New(sink.Options{BaseURL: env.apiURL, Token: sink.StaticToken(apiToken), RateLimit: s.RateLimit, RateBurst: s.RateBurst})
	if err != nil {
		return 0, 0, err
	}

	naiveCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	failures := make(chan error, 1)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		if err := runNaive(naiveCtx, env.consumer, client, s); err != nil && naiveCtx.Err() == nil {
			failures <- err
		}
	}()

	drainErr := env.waitDrained(ctx, stopped)
	elapsed := time.Since(start)
	cancel()
	<-stopped
	select {
	case err := <-failures:
		return 0, 0, fmt.Errorf("naive design: %w", err)
	default:
	}
	if drainErr != nil {
		return 0, 0, fmt.Errorf("naive design: %w", drainErr)
	}
	return perSecond(int64(w.Events), elapsed), backlog.mismatches(env), nil
}

// runNaive consumes until ctx ends or a PUT fails for good.
func runNaive(ctx context.Context, consumer jetstream.Consumer, client *sink.Client, s settings) error {
	iterator, err := consumer.Messages(jetstream.PullMaxMessages(worker.DefaultFetchBatch))
	if err != nil {
		return fmt.Errorf("start pulling: %w", err)
	}
	stopIterator := context.AfterFunc(ctx, iterator.Stop)
	defer stopIterator()

	// JetStream delivers at most max ack pending messages without an ack,
	// and each lane has room for that many, so the dispatcher never waits
	// for a slow lane.
	lanes := make([]chan jetstream.Msg, s.Concurrency)
	failures := make(chan error, s.Concurrency)
	var senders sync.WaitGroup
	for i := range lanes {
		lanes[i] = make(chan jetstream.Msg, s.MaxAckPending)
		senders.Go(func() { sendLane(ctx, client, lanes[i], failures) })
	}
	defer senders.Wait()
	defer closeLanes(lanes)

	for {
		msg, err := iterator.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return nil
		}
		if err != nil {
			continue
		}
		select {
		case err := <-failures:
			return err
		case lanes[laneOf(msg.Subject(), len(lanes))] <- msg:
		}
	}
}

func closeLanes(lanes []chan jetstream.Msg) {
	for _, lane := range lanes {
		close(lane)
	}
}

func laneOf(subject string, lanes int) int {
	hash := fnv.New32a()
	_, _ = hash.Write([]byte(subject))
	return int(hash.Sum32() % uint32(lanes))
}

// sendLane sends one PUT per message of its lane, each part of the
// event's changes in turn, and acks the message after the last part.
func sendLane(ctx context.Context, client *sink.Client, lane <-chan jetstream.Msg, failures chan<- error) {
	for msg := range lane {
		if ctx.Err() != nil {
			continue
		}
		if err := sendEvent(ctx, client, msg); err != nil {
			select {
			case failures <- err:
			default:
			}
			continue
		}
		_ = msg.Ack()
	}
}

func sendEvent(ctx context.Context, client *sink.Client, msg jetstream.Msg) error {
	event, err := contact.DecodeEvent(msg.Data())
	if err != nil {
		return fmt.Errorf("decode the event on %s: %w", msg.Subject(), err)
	}
	if id, _ := topology.ContactIDFromSubject(msg.Subject()); id != event.ContactID {
		return fmt.Errorf("event of contact %s on subject %s", event.ContactID, msg.Subject())
	}

	for _, part := range event.Changes.Parts() {
		body, err := part.MarshalJSON()
		if err != nil {
			return fmt.Errorf("encode the update of contact %s: %w", event.ContactID, err)
		}
		if _, err := client.Put(ctx, event.ContactID, body); err != nil {
			return err
		}
	}
	return nil
}
