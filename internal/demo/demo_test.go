package demo_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/contact-sync/contact-sync/internal/demo"
)

// The Atomic CRM export shipped in testdata contains 500 contacts with CRM
// ids 1 to 500, not sorted.
const (
	exportPath  = "../../testdata/atomic-crm/contacts.csv"
	mappingPath = "../../testdata/atomic-crm/mapping.yaml"
)

func TestRunOnAtomicCRMExport(t *testing.T) {
	logs := &syncBuffer{}
	progress := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	report, err := demo.Run(ctx, demo.Options{
		Input:   exportPath,
		Mapping: mappingPath,
		// A zero RateLimit means the demo's default of 100 per second. At
		// 2000 per second the run's 500 to 1000 PUTs take under a second.
		RateLimit: 2000,
		RateBurst: 50,
		Timeout:   60 * time.Second,
		Logger:    zerolog.New(logs).Level(zerolog.WarnLevel),
		Progress:  progress,
	})
	if err != nil {
		t.Fatalf("demo.Run: %v\nprogress:\n%s\nlogs:\n%s", err, progress, logs)
	}
	t.Cleanup(func() {
		if t.Failed() {
			var text bytes.Buffer
			report.WriteText(&text)
			t.Logf("report:\n%s\nprogress:\n%s\nlogs:\n%s", &text, progress, logs)
		}
	})

	// The demo imports 500 rows twice. The second file differs, so none of
	// its events is a duplicate of the first file's.
	if report.Events != 1000 {
		t.Errorf("Events = %d, want 1000", report.Events)
	}
	if report.Contacts != 500 {
		t.Errorf("Contacts = %d, want 500", report.Contacts)
	}
	if report.Lost != 0 {
		t.Errorf("Lost = %d, want 0", report.Lost)
	}
	if report.Mismatches != 0 {
		t.Errorf("Mismatches = %d, want 0", report.Mismatches)
	}

	// Every tenth CRM id is unknown to the stand-in: 50 contacts with two
	// events each.
	if got := report.DeadLettered["not_found"]; got != 100 {
		t.Errorf(`DeadLettered["not_found"] = %d, want 100`, got)
	}
	if len(report.DeadLettered) != 1 {
		t.Errorf("DeadLettered = %v, want only not_found", report.DeadLettered)
	}
	if report.Applied != 900 {
		t.Errorf("Applied = %d, want 900", report.Applied)
	}
	if report.Requests >= int64(report.Events) {
		t.Errorf("Requests = %d for %d events, want fewer because events of one contact merge", report.Requests, report.Events)
	}
	if report.Updates["success"] < 450 {
		t.Errorf(`Updates["success"] = %d, want at least one per known contact (450)`, report.Updates["success"])
	}

	var text bytes.Buffer
	report.WriteText(&text)
	for _, line := range []string{"events imported", "events lost", "merge ratio"} {
		if !strings.Contains(text.String(), line) {
			t.Errorf("WriteText output has no %q line:\n%s", line, &text)
		}
	}
}

func TestRunMissingInput(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-export.csv")

	_, err := demo.Run(context.Background(), demo.Options{
		Input:   missing,
		Mapping: mappingPath,
		Timeout: 30 * time.Second,
	})
	if err == nil {
		t.Fatalf("demo.Run with a missing input returned no error")
	}
	if !strings.Contains(err.Error(), missing) {
		t.Errorf("error %q does not name the path %s", err, missing)
	}
	if !strings.Contains(err.Error(), "--input") {
		t.Errorf("error %q does not name --input", err)
	}
}

func TestRunMissingMapping(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-mapping.yaml")

	_, err := demo.Run(context.Background(), demo.Options{
		Input:   exportPath,
		Mapping: missing,
		Timeout: 30 * time.Second,
	})
	if err == nil {
		t.Fatalf("demo.Run with a missing mapping returned no error")
	}
	if !strings.Contains(err.Error(), missing) {
		t.Errorf("error %q does not name the path %s", err, missing)
	}
	if !strings.Contains(err.Error(), "--mapping") {
		t.Errorf("error %q does not name --mapping", err)
	}
}

func TestReportMergeRatio(t *testing.T) {
	report := demo.Report{Events: 1000, Requests: 400, Elapsed: 2 * time.Second}
	if got := report.MergeRatio(); got != 2.5 {
		t.Errorf("MergeRatio = %v, want 2.5", got)
	}
	if got := report.RequestsPerSecond(); got != 200 {
		t.Errorf("RequestsPerSecond = %v, want 200", got)
	}

	empty := demo.Report{}
	if got := empty.MergeRatio(); got != 0 {
		t.Errorf("MergeRatio of no requests = %v, want 0", got)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
