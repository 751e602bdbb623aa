package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Row is one line of the results table: one measurement.
type Row struct {
	Scenario string
	Workload string
	Settings string

	// Measured lists the figures, each with its unit.
	Measured []string

	// Targets lists the targets checked, each with the value reached.
	Targets []target
}

// Missed returns the number of targets the row missed.
func (r Row) Missed() int {
	missed := 0
	for _, t := range r.Targets {
		if !t.met {
			missed++
		}
	}
	return missed
}

// target is one goal of a scenario and whether the run reached it.
type target struct {
	name  string
	value string
	met   bool
}

func (t target) String() string {
	verdict := "met"
	if !t.met {
		verdict = "MISSED"
	}
	return fmt.Sprintf("%s: %s, %s", t.name, t.value, verdict)
}

// stateTarget checks that the stand-in ended with the fold of the events.
func stateTarget(mismatches int) target {
	return target{name: "contacts differing from the stream-order fold", value: strconv.Itoa(mismatches), met: mismatches == 0}
}

const tableHeader = "| Scenario | Workload | Settings | Measured | Targets |\n|---|---|---|---|---|\n"

func writeTableHeader(w io.Writer) {
	if w != nil {
		io.WriteString(w, tableHeader)
	}
}

func (r Row) writeTo(w io.Writer) {
	if w == nil {
		return
	}
	targets := make([]string, len(r.Targets))
	for i, t := range r.Targets {
		targets[i] = t.String()
	}
	fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", r.Scenario, r.Workload, r.Settings,
		strings.Join(r.Measured, "; "), joinParts(targets))
}

// WriteMarkdown writes the report as a section of BENCHMARKS.md: the
// date, commit, machine and command, then the table and any failures.
func (r *Report) WriteMarkdown(w io.Writer, command string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\n## %s run, %s\n\n", r.Size, r.Started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Commit: %s\n", Commit())
	fmt.Fprintf(&b, "- Machine: %s\n", DescribeMachine())
	fmt.Fprintf(&b, "- Command: `%s`\n", command)
	if r.Settings != "" {
		fmt.Fprintf(&b, "- Overrides for every scenario: %s\n", r.Settings)
	}
	fmt.Fprintf(&b, "- Duration: %s\n\n", round(r.Elapsed))

	b.WriteString(tableHeader)
	missed := 0
	for _, row := range r.Rows {
		row.writeTo(&b)
		missed += row.Missed()
	}
	fmt.Fprintf(&b, "\nTargets missed: %d.\n", missed)
	for _, failure := range r.Failures {
		fmt.Fprintf(&b, "\nFAILED: %s\n", strings.ReplaceAll(failure.Error(), "\n", "\n    "))
	}

	_, err := io.WriteString(w, b.String())
	return err
}

// Commit returns `git rev-parse --short HEAD` of the working directory,
// with "-dirty" when `git status --porcelain` lists any change, or
// "unknown" when git fails.
func Commit() string {
	head, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	commit := strings.TrimSpace(string(head))
	status, err := exec.Command("git", "status", "--porcelain").Output()
	if err != nil || len(strings.TrimSpace(string(status))) > 0 {
		commit += "-dirty"
	}
	return commit
}

// DescribeMachine returns the number of logical CPUs, the memory from
// /proc/meminfo and the CPU model from /proc/cpuinfo, such as "2 cores,
// 23.5 GiB memory, AMD EPYC". A value it cannot read is "unknown".
func DescribeMachine() string {
	memory := "unknown"
	if kilobytes, err := strconv.ParseInt(procField("/proc/meminfo", "MemTotal"), 10, 64); err == nil {
		memory = fmt.Sprintf("%.1f GiB", float64(kilobytes)/(1<<20))
	}
	model := procField("/proc/cpuinfo", "model name")
	if model == "" {
		model = "unknown CPU model"
	}
	return fmt.Sprintf("%d cores, %s memory, %s, %s/%s", runtime.NumCPU(), memory, model, runtime.GOOS, runtime.GOARCH)
}

// procField returns the first value of "name: value" in a /proc file,
// without a trailing " kB", or "" when absent.
func procField(path, name string) string {
	file, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer file.Close()

	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		key, value, found := strings.Cut(scanner.Text(), ":")
		if found && strings.TrimSpace(key) == name {
			return strings.TrimSuffix(strings.TrimSpace(value), " kB")
		}
	}
	return ""
}

// thousands formats n with commas between groups of three digits.
func thousands(n int) string {
	digits := strconv.Itoa(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	var b strings.Builder
	for i, digit := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(digit)
	}
	return b.String()
}

func mebibytes(bytes int64) string {
	return fmt.Sprintf("%.1f MiB", float64(bytes)/(1<<20))
}

func round(d time.Duration) time.Duration {
	return d.Round(time.Millisecond)
}

func rateText(s settings) string {
	if s.RateLimit == 0 {
		return "rate unlimited"
	}
	return fmt.Sprintf("rate %g/s, burst %d", s.RateLimit, s.RateBurst)
}

func joinParts(parts []string) string {
	return strings.Join(parts, "; ")
}
