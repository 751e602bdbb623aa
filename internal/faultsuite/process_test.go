package faultsuite

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// processStopTimeout bounds the wait for a process to exit after a signal.
const processStopTimeout = 30 * time.Second

// logLine is one line a subprocess wrote, with the time the test read it.
type logLine struct {
	at   time.Time
	text string
}

// logLines collects a subprocess's output line by line. It is an io.Writer
// safe for concurrent use.
type logLines struct {
	mu      sync.Mutex
	partial []byte
	lines   []logLine
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()

	now := time.Now()
	l.partial = append(l.partial, p...)
	for {
		end := bytes.IndexByte(l.partial, '\n')
		if end < 0 {
			return len(p), nil
		}
		l.lines = append(l.lines, logLine{at: now, text: string(l.partial[:end])})
		l.partial = l.partial[end+1:]
	}
}

// snapshot returns a copy of the complete lines read so far.
func (l *logLines) snapshot() []logLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]logLine(nil), l.lines...)
}

// logEntry is the part of a worker's JSON log line that tests read.
type logEntry struct {
	Level    string `json:"level"`
	Message  string `json:"message"`
	Error    string `json:"error"`
	HTTPAddr string `json:"http_addr"`
}

// parseLogEntry decodes a JSON log line; ok is false for other output, such
// as a panic or a race report.
func parseLogEntry(text string) (entry logEntry, ok bool) {
	if err := json.Unmarshal([]byte(text), &entry); err != nil {
		return logEntry{}, false
	}
	return entry, true
}

// workerProcess is one `contact-sync run` subprocess.
type workerProcess struct {
	t        testing.TB
	cmd      *exec.Cmd
	logs     *logLines
	done     chan struct{}
	httpAddr string
}

// startWorker starts `contact-sync run` with the settings in env and waits
// until it serves HTTP. The process is killed when the test ends, and the
// test fails when its output shows a panic or a data race.
func startWorker(t testing.TB, env map[string]string) *workerProcess {
	t.Helper()

	logs := &logLines{}
	cmd := exec.Command(workerBinary, "run")
	cmd.Env = workerEnviron(env)
	cmd.Stdout = logs
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the worker: %v", err)
	}

	worker := &workerProcess{t: t, cmd: cmd, logs: logs, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(worker.done)
	}()
	t.Cleanup(worker.cleanup)

	waitFor(t, 20*time.Second, "the worker to serve HTTP", func() bool {
		if worker.exited() {
			t.Fatalf("the worker exited at start:\n%s", worker.tail(40))
		}
		for _, line := range logs.snapshot() {
			entry, ok := parseLogEntry(line.text)
			if ok && strings.HasPrefix(entry.Message, "serving /metrics") && entry.HTTPAddr != "" {
				worker.httpAddr = entry.HTTPAddr
				return true
			}
		}
		return false
	})
	return worker
}

// workerEnviron returns the test process's environment without any
// CONTACT_SYNC_* variable, plus the suite's defaults, plus env.
func workerEnviron(env map[string]string) []string {
	settings := map[string]string{
		"CONTACT_SYNC_HTTP_ADDR":              "127.0.0.1:0",
		"CONTACT_SYNC_LOG_LEVEL":              "debug",
		"CONTACT_SYNC_LOG_FORMAT":             "json",
		"CONTACT_SYNC_RATE_LIMIT":             "0",
		"CONTACT_SYNC_CONCURRENCY":            "8",
		"CONTACT_SYNC_ACK_WAIT":               "3s",
		"CONTACT_SYNC_DRAIN_TIMEOUT":          "5s",
		"CONTACT_SYNC_RETRY_INITIAL_INTERVAL": "20ms",
		"CONTACT_SYNC_RETRY_MAX_INTERVAL":     "200ms",
	}
	for name, value := range env {
		settings[name] = value
	}

	var environ []string
	for _, entry := range os.Environ() {
		if !strings.HasPrefix(entry, "CONTACT_SYNC_") {
			environ = append(environ, entry)
		}
	}
	for name, value := range settings {
		environ = append(environ, name+"="+value)
	}
	return environ
}

func (w *workerProcess) exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// pid returns the process id.
func (w *workerProcess) pid() int { return w.cmd.Process.Pid }

// kill sends SIGKILL and waits for the process to exit.
func (w *workerProcess) kill() {
	w.t.Helper()
	w.signal(syscall.SIGKILL)
}

// terminate sends SIGTERM, as Kubernetes does before it stops a pod, and
// waits for the process to exit.
func (w *workerProcess) terminate() {
	w.t.Helper()
	w.signal(syscall.SIGTERM)
}

func (w *workerProcess) signal(sig syscall.Signal) {
	w.t.Helper()
	if w.exited() {
		return
	}
	if err := w.cmd.Process.Signal(sig); err != nil {
		w.t.Fatalf("send %v to the worker (pid %d): %v", sig, w.pid(), err)
	}
	select {
	case <-w.done:
	case <-time.After(processStopTimeout):
		w.t.Fatalf("the worker (pid %d) did not exit within %s of %v", w.pid(), processStopTimeout, sig)
	}
}

// cleanup kills the process if it still runs and checks its output for a
// panic or a data race. When the test failed, it logs the output's tail.
func (w *workerProcess) cleanup() {
	if !w.exited() {
		_ = w.cmd.Process.Kill()
		select {
		case <-w.done:
		case <-time.After(processStopTimeout):
			w.t.Errorf("the worker (pid %d) did not exit after SIGKILL", w.pid())
		}
	}

	for _, line := range w.logs.snapshot() {
		if strings.Contains(line.text, "WARNING: DATA RACE") || strings.HasPrefix(line.text, "panic:") || strings.HasPrefix(line.text, "fatal error:") {
			w.t.Errorf("the worker (pid %d) reported %q; output:\n%s", w.pid(), line.text, w.tail(80))
			break
		}
	}
	if w.t.Failed() {
		w.t.Logf("last lines of the worker (pid %d):\n%s", w.pid(), w.tail(60))
	}
}

// tail returns the last n lines of output, each cut to 600 bytes.
func (w *workerProcess) tail(n int) string {
	lines := w.logs.snapshot()
	lines = lines[max(0, len(lines)-n):]
	var b strings.Builder
	for _, line := range lines {
		text := line.text
		if len(text) > 600 {
			text = text[:600] + "..."
		}
		b.WriteString(text)
		b.WriteByte('\n')
	}
	return b.String()
}

// entries returns the decoded JSON log lines read in [from, to).
func (w *workerProcess) entries(from, to time.Time) []logEntry {
	var entries []logEntry
	for _, line := range w.logs.snapshot() {
		if line.at.Before(from) || !line.at.Before(to) {
			continue
		}
		if entry, ok := parseLogEntry(line.text); ok {
			entries = append(entries, entry)
		}
	}
	return entries
}

// hasLog reports whether a log line's message contains text.
func (w *workerProcess) hasLog(text string) bool {
	for _, line := range w.logs.snapshot() {
		if entry, ok := parseLogEntry(line.text); ok && strings.Contains(entry.Message, text) {
			return true
		}
	}
	return false
}

// maxLinesPerSecond returns the largest number of output lines read within
// any one second of [from, to).
func (w *workerProcess) maxLinesPerSecond(from, to time.Time) int {
	var times []time.Time
	for _, line := range w.logs.snapshot() {
		if !line.at.Before(from) && line.at.Before(to) {
			times = append(times, line.at)
		}
	}

	largest, first := 0, 0
	for last := range times {
		for times[last].Sub(times[first]) >= time.Second {
			first++
		}
		largest = max(largest, last-first+1)
	}
	return largest
}

// httpClient reads the worker's HTTP endpoints.
var httpClient = &http.Client{Timeout: 5 * time.Second}

// readyStatus returns the status and body of GET /readyz.
func (w *workerProcess) readyStatus() (int, string) {
	w.t.Helper()
	response, err := httpClient.Get("http://" + w.httpAddr + "/readyz")
	if err != nil {
		w.t.Fatalf("GET /readyz of the worker: %v", err)
	}
	defer response.Body.Close()
	body, _ := io.ReadAll(response.Body)
	return response.StatusCode, strings.TrimSpace(string(body))
}

// waitReady waits until /readyz responds 200.
func (w *workerProcess) waitReady(timeout time.Duration) {
	w.t.Helper()
	waitFor(w.t, timeout, "the worker's /readyz to respond 200", func() bool {
		status, _ := w.readyStatus()
		return status == http.StatusOK
	})
}

// metricSet maps a sample's name with its labels, as the text format
// writes them (contact_sync_dead_letters_total{reason="invalid"}), to its
// value.
type metricSet map[string]float64

// metrics reads /metrics.
func (w *workerProcess) metrics() metricSet {
	w.t.Helper()
	response, err := httpClient.Get("http://" + w.httpAddr + "/metrics")
	if err != nil {
		w.t.Fatalf("GET /metrics of the worker: %v", err)
	}
	defer response.Body.Close()

	set, err := parseMetrics(response.Body)
	if err != nil {
		w.t.Fatalf("read /metrics of the worker: %v", err)
	}
	return set
}

// parseMetrics reads the samples of the Prometheus text format and skips
// comment lines. Label values must not contain spaces, which holds for
// every contact_sync_* metric.
func parseMetrics(r io.Reader) (metricSet, error) {
	set := metricSet{}
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cut := strings.LastIndexByte(line, ' ')
		if cut < 0 {
			return nil, fmt.Errorf("metric line %q has no value", line)
		}
		value, err := strconv.ParseFloat(line[cut+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %w", line, err)
		}
		set[line[:cut]] = value
	}
	return set, scanner.Err()
}

// sum returns the sum of every series of a metric.
func (m metricSet) sum(name string) float64 {
	total := 0.0
	for key, value := range m {
		if key == name || strings.HasPrefix(key, name+"{") {
			total += value
		}
	}
	return total
}

// natsProcess is a nats-server subprocess with JetStream file storage on a
// fixed port and store directory, so that it can be stopped and started
// again as the same server.
type natsProcess struct {
	t        testing.TB
	port     int
	storeDir string
	cmd      *exec.Cmd
	logs     *logLines
	done     chan struct{}
}

// startNATSProcess starts nats-server on a free port of 127.0.0.1 and waits
// until JetStream responds. It is killed when the test ends.
func startNATSProcess(t testing.TB) *natsProcess {
	t.Helper()
	server := &natsProcess{t: t, port: freePort(t), storeDir: t.TempDir()}
	server.start()
	t.Cleanup(func() {
		if server.running() {
			_ = server.cmd.Process.Kill()
			<-server.done
		}
		if t.Failed() {
			t.Logf("last lines of nats-server:\n%s", tailLines(server.logs, 30))
		}
	})
	return server
}

// url returns the client URL.
func (n *natsProcess) url() string {
	return fmt.Sprintf("nats://127.0.0.1:%d", n.port)
}

// start runs the server and waits until JetStream responds.
func (n *natsProcess) start() {
	n.t.Helper()
	n.logs = &logLines{}
	n.cmd = exec.Command(natsServerBinary, "-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-js", "-sd", n.storeDir)
	n.cmd.Stdout = n.logs
	n.cmd.Stderr = n.logs
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("start nats-server: %v", err)
	}
	n.done = make(chan struct{})
	done, cmd := n.done, n.cmd
	go func() {
		_ = cmd.Wait()
		close(done)
	}()

	waitFor(n.t, 20*time.Second, "nats-server to respond to JetStream requests", func() bool {
		if !n.running() {
			n.t.Fatalf("nats-server exited at start:\n%s", tailLines(n.logs, 30))
		}
		return jetStreamResponds(n.url())
	})
}

func (n *natsProcess) running() bool {
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// stop sends sig and waits for the server to exit.
func (n *natsProcess) stop(sig syscall.Signal) {
	n.t.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil {
		n.t.Fatalf("send %v to nats-server (pid %d): %v", sig, n.cmd.Process.Pid, err)
	}
	select {
	case <-n.done:
	case <-time.After(processStopTimeout):
		n.t.Fatalf("nats-server (pid %d) did not exit within %s of %v", n.cmd.Process.Pid, processStopTimeout, sig)
	}
}

// jetStreamResponds reports whether a server at url accepts a client and
// responds to a JetStream account request.
func jetStreamResponds(url string) bool {
	conn, err := nats.Connect(url, nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return false
	}
	defer conn.Close()

	js, err := jetstream.New(conn)
	if err != nil {
		return false
	}
	ctx, cancel := contextWithTimeout(time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err == nil
}

func tailLines(logs *logLines, n int) string {
	lines := logs.snapshot()
	lines = lines[max(0, len(lines)-n):]
	var b strings.Builder
	for _, line := range lines {
		b.WriteString(line.text)
		b.WriteByte('\n')
	}
	return b.String()
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer listener.Close()
	return listener.Addr().(*net.TCPAddr).Port
}
