package faultsuite

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment variables of the figures.
const (
	// reliabilityOutEnv names the JSON-lines file the tests append their
	// rows to. When it is unset, no row is written.
	reliabilityOutEnv = "CONTACT_SYNC_RELIABILITY_OUT"

	// reliabilityDocEnv names the Markdown file whose table
	// TestWriteReliabilityDoc rewrites from the rows. When it is unset, the
	// test is skipped.
	reliabilityDocEnv = "CONTACT_SYNC_RELIABILITY_DOC"
)

// Markers around the generated part of docs/reliability.md.
const (
	tableBegin = "<!-- reliability-table:begin -->"
	tableEnd   = "<!-- reliability-table:end -->"
)

// docOrder lists the top-level tests in the order docs/reliability.md
// explains them, which is the order of the table.
var docOrder = []string{
	"TestWorkerKilledMidBatch",
	"TestNATSServerRestart",
	"TestStreamDeletedUnderWorker",
	"TestConsumerDeletedWithoutProvision",
	"TestAPIOutage",
	"TestSlowBacklog",
	"TestTokenRotation",
	"TestDeadLetterPublishFails",
	"TestRejectedMergedUpdate",
	"TestBadInput",
	"TestDeadLetterOfLargeEvent",
}

// reportRow is one test's figures, one JSON line of the output file.
type reportRow struct {
	Test            string         `json:"test"`
	Fault           string         `json:"fault"`
	Published       int            `json:"published"`
	Applied         int            `json:"applied"`
	DeadLettered    map[string]int `json:"dead_lettered"`
	Lost            int            `json:"lost"`
	StaleOverwrites int            `json:"stale_overwrites"`
	RepeatedPUTs    int            `json:"repeated_puts"`

	// RecoverySeconds is the time from the fault's end to the drained
	// stream, or nil when the test has no fault that ends.
	RecoverySeconds *float64 `json:"recovery_seconds,omitempty"`

	Notes    []string `json:"notes,omitempty"`
	Recorded bool     `json:"recorded"`
	Passed   bool     `json:"passed"`
	Race     bool     `json:"race"`
}

// report collects a test's row and writes it when the test ends.
type report struct {
	mu  sync.Mutex
	row reportRow
}

// rowFileMu serialises appends of parallel tests.
var rowFileMu sync.Mutex

// newReport opens the row of a test. The row is written when the test ends,
// passed or not, if CONTACT_SYNC_RELIABILITY_OUT is set.
func newReport(t *testing.T, fault string) *report {
	r := &report{row: reportRow{Test: t.Name(), Fault: fault, Race: raceEnabled}}
	t.Cleanup(func() {
		r.mu.Lock()
		row := r.row
		r.mu.Unlock()
		row.Passed = !t.Failed()
		if err := appendRow(os.Getenv(reliabilityOutEnv), row); err != nil {
			t.Errorf("write the reliability row: %v", err)
		}
	})
	return r
}

// record stores the figures. recovery < 0 means the test has no fault that
// ends.
func (r *report) record(result figures, repeated int, recovery time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.row.Published = result.published
	r.row.Applied = result.applied
	r.row.DeadLettered = result.deadLettered
	r.row.Lost = result.lost
	r.row.StaleOverwrites = result.stale
	r.row.RepeatedPUTs = repeated
	if recovery >= 0 {
		seconds := math.Round(recovery.Seconds()*100) / 100
		r.row.RecoverySeconds = &seconds
	}
	r.row.Recorded = true
}

// note adds a sentence to the row's notes.
func (r *report) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.row.Notes = append(r.row.Notes, fmt.Sprintf(format, args...))
}

// appendRow appends one JSON line to path, unless path is "".
func appendRow(path string, row reportRow) error {
	if path == "" {
		return nil
	}
	line, err := json.Marshal(row)
	if err != nil {
		return err
	}

	rowFileMu.Lock()
	defer rowFileMu.Unlock()
	file, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := file.Write(append(line, '\n')); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

// readRows reads a JSON-lines file of rows.
func readRows(path string) ([]reportRow, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows []reportRow
	scanner := bufio.NewScanner(bytes.NewReader(data))
	scanner.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; scanner.Scan(); line++ {
		if strings.TrimSpace(scanner.Text()) == "" {
			continue
		}
		var row reportRow
		if err := json.Unmarshal(scanner.Bytes(), &row); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, line, err)
		}
		rows = append(rows, row)
	}
	return rows, scanner.Err()
}

// sortRows orders rows as docOrder lists their tests, then by name.
func sortRows(rows []reportRow) {
	rank := func(name string) int {
		top, _, _ := strings.Cut(name, "/")
		if i := slices.Index(docOrder, top); i >= 0 {
			return i
		}
		return len(docOrder)
	}
	slices.SortStableFunc(rows, func(a, b reportRow) int {
		if ra, rb := rank(a.Test), rank(b.Test); ra != rb {
			return ra - rb
		}
		return strings.Compare(a.Test, b.Test)
	})
}

// renderTable returns the Markdown of the rows: a line on the run, the
// table, and the notes of each row.
func renderTable(rows []reportRow, runAt time.Time) string {
	rows = slices.Clone(rows)
	sortRows(rows)

	var b strings.Builder
	race := "without"
	if len(rows) > 0 && rows[0].Race {
		race = "with"
	}
	fmt.Fprintf(&b, "Run of %s, %s the race detector, %s %s/%s, %d CPUs.\n\n",
		runAt.UTC().Format("2006-01-02 15:04 MST"), race, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())

	b.WriteString("| Test | Fault | Published | Applied | Dead-lettered | Lost | Stale overwrites | Repeated PUTs | Recovery (s) | Result |\n")
	b.WriteString("| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |\n")
	for _, row := range rows {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			row.Test, escapeCell(row.Fault),
			figure(row, row.Published), figure(row, row.Applied), deadLetterCell(row),
			figure(row, row.Lost), figure(row, row.StaleOverwrites), figure(row, row.RepeatedPUTs),
			recoveryCell(row), resultCell(row))
	}

	var notes []string
	for _, row := range rows {
		for _, note := range row.Notes {
			notes = append(notes, fmt.Sprintf("- `%s`: %s", row.Test, note))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nNotes of this run:\n\n")
		b.WriteString(strings.Join(notes, "\n"))
		b.WriteString("\n")
	}
	return b.String()
}

func figure(row reportRow, n int) string {
	if !row.Recorded {
		return "–"
	}
	return fmt.Sprint(n)
}

func deadLetterCell(row reportRow) string {
	if !row.Recorded {
		return "–"
	}
	var parts []string
	for _, reason := range slices.Sorted(maps.Keys(row.DeadLettered)) {
		if row.DeadLettered[reason] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", reason, row.DeadLettered[reason]))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ", ")
}

func recoveryCell(row reportRow) string {
	if !row.Recorded || row.RecoverySeconds == nil {
		return "–"
	}
	return fmt.Sprintf("%.2f", *row.RecoverySeconds)
}

func resultCell(row reportRow) string {
	switch {
	case !row.Passed && !row.Recorded:
		return "**fail** (stopped before its figures)"
	case !row.Passed:
		return "**fail**"
	default:
		return "pass"
	}
}

func escapeCell(text string) string {
	return strings.ReplaceAll(text, "|", `\|`)
}

// replaceTable returns doc with the text between the table markers replaced
// by table.
func replaceTable(doc, table string) (string, error) {
	begin := strings.Index(doc, tableBegin)
	end := strings.Index(doc, tableEnd)
	if begin < 0 || end < begin {
		return "", fmt.Errorf("the document lacks %s followed by %s", tableBegin, tableEnd)
	}
	return doc[:begin+len(tableBegin)] + "\n" + table + doc[end:], nil
}

// TestWriteReliabilityDoc rewrites the table of the file named by
// CONTACT_SYNC_RELIABILITY_DOC from the rows in the file named by
// CONTACT_SYNC_RELIABILITY_OUT. `make reliability` runs it after the suite.
func TestWriteReliabilityDoc(t *testing.T) {
	docPath := os.Getenv(reliabilityDocEnv)
	if docPath == "" {
		t.Skipf("%s is not set; `make reliability` sets it", reliabilityDocEnv)
	}
	rowsPath := os.Getenv(reliabilityOutEnv)
	if rowsPath == "" {
		t.Fatalf("%s is set but %s is not: set it to the rows file of a suite run", reliabilityDocEnv, reliabilityOutEnv)
	}

	rows, err := readRows(rowsPath)
	if err != nil {
		t.Fatalf("read the rows: %v", err)
	}
	if len(rows) == 0 {
		t.Fatalf("%s holds no rows: run the suite with %s set first", rowsPath, reliabilityOutEnv)
	}
	info, err := os.Stat(rowsPath)
	if err != nil {
		t.Fatalf("stat the rows file: %v", err)
	}

	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("read the document: %v", err)
	}
	updated, err := replaceTable(string(doc), renderTable(rows, info.ModTime()))
	if err != nil {
		t.Fatalf("%s: %v", docPath, err)
	}
	if err := os.WriteFile(docPath, []byte(updated), 0o644); err != nil {
		t.Fatalf("write the document: %v", err)
	}
}

func TestRenderTable(t *testing.T) {
	seconds := 1.5
	rows := []reportRow{
		{Test: "TestBadInput", Fault: "bad input", Published: 3, Applied: 1, DeadLettered: map[string]int{"invalid": 2}, Recorded: true, Passed: true},
		{Test: "TestWorkerKilledMidBatch", Fault: "SIGKILL | restart", Published: 10, Applied: 10, DeadLettered: map[string]int{}, RepeatedPUTs: 8, RecoverySeconds: &seconds, Recorded: true, Passed: true, Notes: []string{"8 PUTs in flight at the kill"}},
		{Test: "TestTokenRotation", Fault: "401", Passed: false},
	}
	table := renderTable(rows, time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC))

	lines := strings.Split(table, "\n")
	var tableLines []string
	for _, line := range lines {
		if strings.HasPrefix(line, "| `") {
			tableLines = append(tableLines, line)
		}
	}
	if len(tableLines) != 3 {
		t.Fatalf("table has %d rows, want 3:\n%s", len(tableLines), table)
	}
	if want := "| `TestWorkerKilledMidBatch` | SIGKILL \\| restart | 10 | 10 | 0 | 0 | 0 | 8 | 1.50 | pass |"; tableLines[0] != want {
		t.Errorf("first row = %q, want %q (docOrder puts the kill first)", tableLines[0], want)
	}
	if !strings.Contains(tableLines[1], "`TestTokenRotation`") || !strings.Contains(tableLines[1], "| – | – | – |") ||
		!strings.Contains(tableLines[1], "**fail** (stopped before its figures)") {
		t.Errorf("second row = %q, want the token test with dashes and a failure without figures", tableLines[1])
	}
	if !strings.Contains(tableLines[2], "| 3 | 1 | invalid 2 |") {
		t.Errorf("third row = %q, want the bad-input figures with \"invalid 2\"", tableLines[2])
	}
	if !strings.Contains(table, "Run of 2026-01-02 03:04 UTC, without the race detector") {
		t.Errorf("table lacks the run line:\n%s", table)
	}
	if !strings.Contains(table, "- `TestWorkerKilledMidBatch`: 8 PUTs in flight at the kill") {
		t.Errorf("table lacks the row's note:\n%s", table)
	}

	doc := "# Title\n\n" + tableBegin + "\nold table\n" + tableEnd + "\n\nAfter.\n"
	updated, err := replaceTable(doc, table)
	if err != nil {
		t.Fatalf("replace the table: %v", err)
	}
	if strings.Contains(updated, "old table") || !strings.Contains(updated, "After.") || !strings.Contains(updated, tableLines[0]) {
		t.Errorf("replaced document is wrong:\n%s", updated)
	}
	if _, err := replaceTable("no markers", table); err == nil {
		t.Errorf("replaceTable of a document without markers returned no error")
	}
}
