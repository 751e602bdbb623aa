package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// settings are the worker's CONTACT_SYNC_* settings that a scenario
// chooses. Every other setting keeps its default.
type settings struct {
	Concurrency   int
	MaxAckPending int
	MergeWindow   time.Duration

	// RateLimit is PUTs per second; 0 is unlimited, and RateBurst then
	// has no effect.
	RateLimit float64
	RateBurst int
}

// String describes the settings for a report row.
func (s settings) String() string {
	return fmt.Sprintf("concurrency %d, max ack pending %s, merge window %s, %s",
		s.Concurrency, thousands(s.MaxAckPending), s.MergeWindow, rateText(s))
}

// environ returns the bench process's environment without any
// CONTACT_SYNC_* variable, plus the worker's settings for env.
func (s settings) environ(env *environment) []string {
	var environ []string
	for _, entry := range os.Environ() {
		if !strings.HasPrefix(entry, "CONTACT_SYNC_") {
			environ = append(environ, entry)
		}
	}

	return append(environ,
		"CONTACT_SYNC_NATS_URL="+env.natsServer.ClientURL(),
		"CONTACT_SYNC_API_BASE_URL="+env.apiURL,
		"CONTACT_SYNC_API_TOKEN="+apiToken,
		"CONTACT_SYNC_RATE_LIMIT="+strconv.FormatFloat(s.RateLimit, 'g', -1, 64),
		"CONTACT_SYNC_RATE_BURST="+strconv.Itoa(s.RateBurst),
		"CONTACT_SYNC_CONCURRENCY="+strconv.Itoa(s.Concurrency),
		"CONTACT_SYNC_MERGE_WINDOW="+s.MergeWindow.String(),
		"CONTACT_SYNC_MAX_ACK_PENDING="+strconv.Itoa(s.MaxAckPending),
		"CONTACT_SYNC_HTTP_ADDR=127.0.0.1:0",
		"CONTACT_SYNC_LOG_LEVEL=warn",
		"CONTACT_SYNC_LOG_FORMAT=json",
	)
}

// workerProcess is a running worker started by startWorker.
type workerProcess struct {
	cmd     *exec.Cmd
	logs    *tailBuffer
	started time.Time

	// exited is closed when the process has exited; waitErr is then
	// Wait's error.
	exited  chan struct{}
	waitErr error

	// peakRSS is the largest VmHWM read, in bytes.
	peakRSS atomic.Int64
}

// usage contains the resources the kernel accounted to a worker process.
type usage struct {
	// CPU is user plus system time.
	CPU time.Duration

	// PeakRSS is the largest resident set size (VmHWM) seen while the
	// process ran, in bytes.
	PeakRSS int64

	// Elapsed is the time from start to exit.
	Elapsed time.Duration
}

// startWorker starts command (an executable and its arguments) with
// environ. Its standard output and error are kept, the last 16 KiB of
// them, for the error of stop.
func startWorker(command []string, environ []string) (*workerProcess, error) {
	if len(command) == 0 {
		return nil, errors.New("start worker: no command")
	}

	logs := &tailBuffer{limit: 16 << 10}
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = environ
	cmd.Stdout = logs
	cmd.Stderr = logs

	process := &workerProcess{cmd: cmd, logs: logs, exited: make(chan struct{})}
	process.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %q: %w", strings.Join(command, " "), err)
	}
	go func() {
		process.waitErr = cmd.Wait()
		close(process.exited)
	}()
	go process.samplePeakRSS()
	return process, nil
}

// rssSampleInterval is how often the worker's VmHWM is read.
const rssSampleInterval = 20 * time.Millisecond

// samplePeakRSS reads the worker's VmHWM until it exits. The kernel's
// high-water mark only grows, so the last read before exit is the peak up
// to then. getrusage's ru_maxrss cannot serve: os/exec starts the child
// with CLONE_VM, and at exec Linux records the shared memory's high-water
// mark, the bench process's own, as the child's ru_maxrss.
func (p *workerProcess) samplePeakRSS() {
	ticker := time.NewTicker(rssSampleInterval)
	defer ticker.Stop()
	for {
		p.readPeakRSS()
		select {
		case <-p.exited:
			return
		case <-ticker.C:
		}
	}
}

func (p *workerProcess) readPeakRSS() {
	value := procField(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid), "VmHWM")
	kilobytes, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return // the process has exited, or is not yet exec'd
	}
	for {
		current := p.peakRSS.Load()
		if kilobytes*1024 <= current || p.peakRSS.CompareAndSwap(current, kilobytes*1024) {
			return
		}
	}
}

// stopTimeout bounds the wait for a worker to exit after SIGTERM; the
// worker's own drain timeout is 25s by default.
const stopTimeout = 40 * time.Second

// stop sends SIGTERM, waits for the process to exit (killing it after
// stopTimeout), and returns its resource usage. It returns an error with
// the end of the worker's output when the worker exited with a failure
// or had to be killed.
func (p *workerProcess) stop() (usage, error) {
	p.readPeakRSS()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)

	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	killed := false
	select {
	case <-p.exited:
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		killed = true
	}

	used := usage{Elapsed: time.Since(p.started), PeakRSS: p.peakRSS.Load()}
	if rusage, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		used.CPU = time.Duration(rusage.Utime.Nano() + rusage.Stime.Nano())
	}

	switch {
	case killed:
		return used, fmt.Errorf("worker did not exit within %s of SIGTERM and was killed; its output ends with:\n%s", stopTimeout, p.logs)
	case p.waitErr != nil:
		return used, fmt.Errorf("worker failed: %w; its output ends with:\n%s", p.waitErr, p.logs)
	}
	return used, nil
}

// tailBuffer keeps the last limit bytes written to it. Safe for
// concurrent use.
type tailBuffer struct {
	limit int

	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()

	t.buf.Write(p)
	if excess := t.buf.Len() - t.limit; excess > 0 {
		t.buf.Next(excess)
	}
	return len(p), nil
}

// String returns the bytes kept.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
