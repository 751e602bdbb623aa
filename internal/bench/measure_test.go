package bench

import (
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	values := make([]time.Duration, 100)
	for i := range values {
		values[i] = time.Duration(i+1) * time.Millisecond
	}

	cases := []struct {
		p    float64
		want time.Duration
	}{
		{50, 50 * time.Millisecond},
		{99, 99 * time.Millisecond},
		{100, 100 * time.Millisecond},
		{0.1, 1 * time.Millisecond},
	}
	for _, c := range cases {
		if got := percentile(values, c.p); got != c.want {
			t.Errorf("percentile(1..100ms, %v) = %v, want %v", c.p, got, c.want)
		}
	}
}

func TestPercentileSmallSets(t *testing.T) {
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("percentile(nil, 99) = %v, want 0", got)
	}
	one := []time.Duration{7 * time.Millisecond}
	if got := percentile(one, 50); got != 7*time.Millisecond {
		t.Errorf("percentile([7ms], 50) = %v, want 7ms", got)
	}
	two := []time.Duration{1 * time.Millisecond, 9 * time.Millisecond}
	if got := percentile(two, 50); got != 1*time.Millisecond {
		t.Errorf("percentile([1ms 9ms], 50) = %v, want 1ms", got)
	}
	if got := percentile(two, 99); got != 9*time.Millisecond {
		t.Errorf("percentile([1ms 9ms], 99) = %v, want 9ms", got)
	}
}

func TestMaxInWindowHalfOpen(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }

	// A closed window [0, 1000] would hold all three; the half-open one
	// holds two.
	edge := []time.Time{at(1000), at(0), at(999)}
	if got := maxInWindow(edge, time.Second); got != 2 {
		t.Errorf("maxInWindow(0, 999, 1000 ms) = %d, want 2", got)
	}

	// Unsorted on purpose: maxInWindow sorts. Four times fall in
	// [500, 1500).
	times := []time.Time{at(1400), at(0), at(999), at(500), at(1000), at(2500)}
	if got := maxInWindow(times, time.Second); got != 4 {
		t.Errorf("maxInWindow = %d, want 4 (500, 999, 1000, 1400 ms)", got)
	}
}

func TestMaxInWindowEdgeCases(t *testing.T) {
	if got := maxInWindow(nil, time.Second); got != 0 {
		t.Errorf("maxInWindow(nil) = %d, want 0", got)
	}
	same := []time.Time{time.Unix(5, 0), time.Unix(5, 0), time.Unix(5, 0)}
	if got := maxInWindow(same, time.Second); got != 3 {
		t.Errorf("maxInWindow(3 equal times) = %d, want 3", got)
	}
	if got := maxInWindow(same, 0); got != 0 {
		t.Errorf("maxInWindow(window 0) = %d, want 0", got)
	}
	spread := []time.Time{time.Unix(0, 0), time.Unix(1, 0), time.Unix(2, 0)}
	if got := maxInWindow(spread, time.Second); got != 1 {
		t.Errorf("maxInWindow(one per second) = %d, want 1", got)
	}
}

func TestLimitedResultsUtilisation(t *testing.T) {
	// 21 PUTs over one second at 10/s, burst 11: the limiter allows
	// 11 + 10*1 = 21, so utilisation is 100%.
	base := time.Unix(1_700_000_000, 0)
	times := make([]time.Time, 21)
	for i := range times {
		times[i] = base.Add(time.Duration(i) * 50 * time.Millisecond)
	}
	s := settings{RateLimit: 10, RateBurst: 11}

	m := limitedResults(times, 20, 20, 2*time.Second, s)
	if m.utilisation != 1 {
		t.Errorf("utilisation = %v, want 1", m.utilisation)
	}
	if m.ideal != 2*time.Second {
		t.Errorf("ideal drain = %v, want 2s (20 contacts at 10/s)", m.ideal)
	}
	if got := m.putsPerContact(); got != 21.0/20 {
		t.Errorf("PUTs per contact = %v, want 1.05", got)
	}
	if m.maxPerSecond != 20 {
		t.Errorf("max per 1-s window = %d, want 20 (the 21st arrives exactly 1s after the first)", m.maxPerSecond)
	}
}

func TestThousands(t *testing.T) {
	cases := map[int]string{0: "0", 999: "999", 1000: "1,000", 200000: "200,000", 1000000: "1,000,000", -1234: "-1,234"}
	for n, want := range cases {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
