package sink

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// maxInWindow returns the largest number of times that fall within any
// closed interval of length window.
func maxInWindow(times []time.Time, window time.Duration) int {
	sorted := slices.SortedFunc(slices.Values(times), time.Time.Compare)

	largest, first := 0, 0
	for last := range sorted {
		for sorted[last].Sub(sorted[first]) > window {
			first++
		}
		largest = max(largest, last-first+1)
	}
	return largest
}

func TestMaxInWindow(t *testing.T) {
	t.Parallel()

	start := time.Date(2026, time.May, 4, 10, 0, 0, 0, time.UTC)
	at := func(offsets ...time.Duration) []time.Time {
		var times []time.Time
		for _, offset := range offsets {
			times = append(times, start.Add(offset))
		}
		return times
	}
	ms := time.Millisecond
	tests := []struct {
		times []time.Time
		want  int
	}{
		{nil, 0},
		{at(0), 1},
		{at(0, 1000*ms), 2},
		{at(0, 1001*ms), 1},
		{at(900*ms, 0, 2500*ms, 1800*ms, 1000*ms), 3},
	}
	for _, tc := range tests {
		if got := maxInWindow(tc.times, time.Second); got != tc.want {
			t.Errorf("maxInWindow(%v) = %d, want %d", tc.times, got, tc.want)
		}
	}
}

// The limiter caps requests in any one-second window at RateLimit +
// RateBurst whatever the machine's speed, so the bound below is a
// correctness check, not a timing target. The test takes about
// (puts - burst) / rate = 2.3s.
func TestPutRespectsRateLimit(t *testing.T) {
	const (
		rateLimit = 50
		rateBurst = 5
		puts      = 120
		workers   = 8
	)
	server := newScriptServer(t, replyOK())
	opts := fastOptions(server.URL)
	opts.RateLimit = rateLimit
	opts.RateBurst = rateBurst
	var rateWaits atomic.Int32
	opts.OnRateWait = func(time.Duration) { rateWaits.Add(1) }
	client := newTestClient(t, opts)

	jobs := make(chan int, puts)
	for i := range puts {
		jobs <- i
	}
	close(jobs)

	var wg sync.WaitGroup
	var failures atomic.Int32
	for range workers {
		wg.Go(func() {
			ctx := testContext(t)
			for range jobs {
				if _, err := client.Put(ctx, testContactID, []byte(`{}`)); err != nil {
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()

	if got := failures.Load(); got != 0 {
		t.Errorf("%d of %d Puts failed", got, puts)
	}
	requests := server.Requests()
	if len(requests) != puts {
		t.Fatalf("server received %d requests, want %d", len(requests), puts)
	}
	var arrivals []time.Time
	for _, request := range requests {
		arrivals = append(arrivals, request.Arrived)
	}
	if got, limit := maxInWindow(arrivals, time.Second), rateLimit+rateBurst; got > limit {
		t.Errorf("server received %d requests within one second, want at most RateLimit + RateBurst = %d", got, limit)
	}
	if rateWaits.Load() == 0 {
		t.Error("OnRateWait was never called, though 120 Puts exceed the burst of 5")
	}
}

// When the rate limiter cannot grant a request before the context's
// deadline, PutFunc gives up early. Callers tell "out of time" from other
// failures with errors.Is(err, context.DeadlineExceeded), so the error must
// match it.
func TestPutRateWaitBeyondDeadline(t *testing.T) {
	t.Parallel()

	server := newScriptServer(t, replyOK())
	opts := fastOptions(server.URL)
	opts.RateLimit = 1
	opts.RateBurst = 1
	client := newTestClient(t, opts)

	if _, err := client.Put(testContext(t), testContactID, []byte(`{}`)); err != nil {
		t.Fatalf("first Put: %v", err)
	}

	// The next token is about a second away, beyond this deadline.
	ctx, cancel := context.WithTimeout(testContext(t), 100*time.Millisecond)
	defer cancel()
	result, err := client.Put(ctx, testContactID, []byte(`{}`))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Put error = %v, want context.DeadlineExceeded", err)
	}
	if result.Attempts != 0 {
		t.Errorf("Attempts = %d, want 0", result.Attempts)
	}
	if got := len(server.Requests()); got != 1 {
		t.Errorf("server received %d requests, want only the first Put's", got)
	}
}
