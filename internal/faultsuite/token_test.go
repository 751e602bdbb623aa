package faultsuite

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/contact-sync/contact-sync/internal/contactapi"
	"github.com/contact-sync/contact-sync/internal/eventgen"
)

// Tokens of TestTokenRotation. Each is a value the logs must never show.
const (
	tokenFirst   = "rotation-token-first-6b1f"
	tokenSecond  = "rotation-token-second-90ad"
	tokenRevoked = "rotation-token-third-c2e7"
)

// TestTokenRotation rotates the API token twice. First the token file is
// rewritten before the API switches, as a rotated Kubernetes Secret does:
// the worker gets 401, reads the file again and goes on. Then the API
// switches before the file is rewritten, so every request is rejected for a
// while: the worker must report not-ready and retry, never dead-letter, and
// recover once the file holds the new token.
func TestTokenRotation(t *testing.T) {
	f := newFixture(t, inProcessNATS(t), contactapi.Options{Token: tokenFirst},
		"API token rotated: file first (one 401 each), then the API first (every request rejected until the file is rewritten)")
	contacts := eventgen.ContactIDs(20)
	f.addContacts(contacts...)
	generator := eventgen.New(61)
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeTokenFile(t, tokenFile, tokenFirst)

	worker := startWorker(t, f.workerEnv(map[string]string{"CONTACT_SYNC_API_TOKEN_FILE": tokenFile}))
	worker.waitReady(20 * time.Second)
	f.publish(generator.Events(contacts, 100))
	f.waitDrained(30 * time.Second)

	// The Secret rotates: the file changes first, then the API.
	writeTokenFile(t, tokenFile, tokenSecond)
	f.api.SetToken(tokenSecond)
	unauthorizedBefore := f.api.Stats().Unauthorized
	f.publish(generator.Events(contacts, 100))
	f.waitDrained(30 * time.Second)
	rotationRejections := f.api.Stats().Unauthorized - unauthorizedBefore
	if rotationRejections == 0 {
		t.Errorf("the stand-in rejected no request after the rotation, so the test did not rotate the token")
	}

	// The API switches first: every request is rejected.
	rejectedAt := time.Now()
	f.api.SetToken(tokenRevoked)
	unauthorizedBefore = f.api.Stats().Unauthorized
	f.publish(generator.Events(contacts, 100))
	checkNotReadyWhileRejected(t, worker)
	waitFor(t, 20*time.Second, "2 seconds with at least 20 requests rejected with 401", func() bool {
		return time.Since(rejectedAt) >= 2*time.Second && f.api.Stats().Unauthorized-unauthorizedBefore >= 20
	})
	if letters := f.deadLetters(); len(letters) != 0 {
		t.Errorf("%d events were dead-lettered while the API rejected the token, want 0", len(letters))
	}

	writeTokenFile(t, tokenFile, tokenRevoked)
	fixedAt := time.Now()
	drainedAt := f.waitDrained(30 * time.Second)
	worker.waitReady(10 * time.Second)
	rejectedFor := fixedAt.Sub(rejectedAt)

	for _, line := range worker.logs.snapshot() {
		for _, token := range []string{tokenFirst, tokenSecond, tokenRevoked} {
			if strings.Contains(line.text, token) {
				t.Errorf("a log line of the worker contains an API token: %.200s", line.text)
			}
		}
	}

	f.recordRun(worker)
	result := f.account(contacts)
	result.check(f, nil)
	f.report.record(result, f.repeatedPUTs(), drainedAt.Sub(fixedAt))
	f.report.note("The rotation in Secret order cost %d rejected requests. Then every request was rejected for %.1f s until the file was rewritten, and recovery is from that rewrite.",
		rotationRejections, rejectedFor.Seconds())
}

// checkNotReadyWhileRejected waits for /readyz to respond 503 while the API
// rejects every request, and fails the test, without stopping it, when it
// does not within 10 seconds.
func checkNotReadyWhileRejected(t *testing.T, worker *workerProcess) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()

	status, body := worker.readyStatus()
	for status != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Errorf("/readyz responded %d %q for 10 s while the API rejected every request with 401, want 503", status, body)
			return
		}
		<-ticker.C
		status, body = worker.readyStatus()
	}
}

// writeTokenFile replaces the token file at once, as the kubelet swaps a
// Secret volume's files, so that the worker never reads half a token.
func writeTokenFile(t *testing.T, path, token string) {
	t.Helper()
	temporary := path + ".new"
	if err := os.WriteFile(temporary, []byte(token+"\n"), 0o600); err != nil {
		t.Fatalf("write the token file: %v", err)
	}
	if err := os.Rename(temporary, path); err != nil {
		t.Fatalf("replace the token file: %v", err)
	}
}
