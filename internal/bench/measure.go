package bench

import (
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// values, which must be sorted in ascending order, or 0 when there are
// none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// maxInWindow returns the largest number of times within any interval
// [t, t+window), sliding t over the times. It sorts times in place and
// returns 0 when window is not positive.
func maxInWindow(times []time.Time, window time.Duration) int {
	if window <= 0 {
		return 0
	}
	slices.SortFunc(times, time.Time.Compare)

	largest := 0
	first := 0
	for last := range times {
		for times[last].Sub(times[first]) >= window {
			first++
		}
		largest = max(largest, last-first+1)
	}
	return largest
}

// perSecond returns count divided by elapsed seconds, or 0 when elapsed is
// not positive.
func perSecond(count int64, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(count) / elapsed.Seconds()
}

// ratio returns a / b, or 0 when b is 0, so that a ceiling that was not
// measured shows as 0 and not as a division error.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// cpuSample is the CPU time the whole machine had spent busy, and the
// part of it spent by this process and its waited-for children, at one
// moment.
type cpuSample struct {
	at   time.Time
	busy time.Duration
	own  time.Duration
}

// userHZ is the unit of /proc/stat: USER_HZ, 100 on every Linux
// architecture Go supports.
const userHZ = 100

// sampleCPU reads /proc/stat and getrusage. ok is false when either
// cannot be read.
func sampleCPU() (sample cpuSample, ok bool) {
	sample.at = time.Now()
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return sample, false
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return sample, false
	}
	// user nice system idle iowait irq softirq steal: all but idle and
	// iowait are busy. Guest time is part of user already.
	var ticks int64
	for i, field := range fields[1:9] {
		n, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return sample, false
		}
		if i != 3 && i != 4 {
			ticks += n
		}
	}
	sample.busy = time.Duration(ticks) * time.Second / userHZ

	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var usage syscall.Rusage
		if syscall.Getrusage(who, &usage) != nil {
			return sample, false
		}
		sample.own += time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
	}
	return sample, true
}

// otherCores returns the average number of cores that other processes
// kept busy between two samples: the machine's busy time less this
// process's and its children's, over the wall time.
func otherCores(before, after cpuSample) float64 {
	wall := after.at.Sub(before.at)
	other := (after.busy - before.busy) - (after.own - before.own)
	return max(0, ratio(other.Seconds(), wall.Seconds()))
}

// selfCPU returns the CPU time this process has used.
func selfCPU() time.Duration {
	var usage syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &usage) != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}
