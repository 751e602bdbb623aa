package faultsuite

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Binaries built by TestMain, shared by every test.
var (
	workerBinary     string
	natsServerBinary string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

// runTests builds the worker and nats-server binaries into a temporary
// directory, runs the tests and removes the directory. The worker is built
// with the race detector when the tests are, so that a data race in the
// worker under a fault fails the test that caused it.
func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "faultsuite-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "faultsuite: create binary directory: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)

	workerBinary = filepath.Join(dir, "contact-sync")
	natsServerBinary = filepath.Join(dir, "nats-server")

	workerArgs := []string{"build", "-o", workerBinary}
	if raceEnabled {
		workerArgs = append(workerArgs, "-race")
	}
	workerArgs = append(workerArgs, "github.com/contact-sync/contact-sync/cmd/contact-sync")
	if err := goCommand(workerArgs...); err != nil {
		fmt.Fprintf(os.Stderr, "faultsuite: build the worker: %v\n", err)
		return 1
	}

	// The server's main package comes from the nats-server module that
	// go.mod already requires, so the build downloads nothing.
	if err := goCommand("build", "-o", natsServerBinary, "github.com/nats-io/nats-server/v2"); err != nil {
		fmt.Fprintf(os.Stderr, "faultsuite: build nats-server: %v\n", err)
		return 1
	}

	return m.Run()
}

// goCommand runs the go command. go test puts the bin directory of its own
// toolchain first in PATH, so this is the toolchain that runs the tests.
func goCommand(args ...string) error {
	cmd := exec.Command("go", args...)
	output, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %v: %w\n%s", args, err, output)
	}
	return nil
}
