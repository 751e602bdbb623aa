package importer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/contact-sync/contact-sync/internal/contact"
	"github.com/contact-sync/contact-sync/internal/topology"
)

// Input formats, the values of Options.Format.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

// Defaults of Options.
const (
	DefaultMaxPending = 4096
	DefaultAckTimeout = 30 * time.Second
)

// Options configures an import. The zero value makes ImportFile import a
// JSONL file with the defaults below. A CSV also needs a Mapping.
type Options struct {
	// Format is FormatCSV or FormatJSONL. ImportFile takes "" to mean the
	// file's extension: .csv, or .jsonl or .ndjson. Import requires it.
	Format string

	// Mapping maps CSV columns to the event. Required for CSV, unused for
	// JSONL.
	Mapping *Mapping

	// BatchID replaces the SHA-256 of the file in the event ids of CSV rows
	// (see EventID). Required for a CSV read from standard input.
	BatchID string

	// StopOnError stops reading at the first record that is invalid or
	// whose publish failed. Records already published are still awaited.
	StopOnError bool

	// MaxPending is the maximum number of records published and not yet
	// acknowledged; 0 means DefaultMaxPending (4096).
	MaxPending int

	// AckTimeout is how long a publish waits for its ack before it counts
	// as failed; 0 means DefaultAckTimeout (30s).
	AckTimeout time.Duration
}

func (o Options) withDefaults() (Options, error) {
	if o.Format != FormatCSV && o.Format != FormatJSONL {
		return o, fmt.Errorf("%w %q (expected %q or %q)", ErrUnknownFormat, o.Format, FormatCSV, FormatJSONL)
	}
	if o.MaxPending < 0 || o.AckTimeout < 0 {
		return o, fmt.Errorf("max pending %d and ack timeout %v must not be negative", o.MaxPending, o.AckTimeout)
	}
	if o.MaxPending == 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = DefaultAckTimeout
	}

	if o.Format == FormatCSV {
		if o.Mapping == nil {
			return o, fmt.Errorf("%w: a CSV import needs a mapping", ErrInvalidMapping)
		}
		if err := o.Mapping.Validate(); err != nil {
			return o, err
		}
	}
	return o, nil
}

// FormatFromPath returns the format of a file by its extension,
// case-insensitively: FormatCSV for .csv, FormatJSONL for .jsonl or .ndjson.
// Other names, and "-" for standard input, return ErrUnknownFormat.
func FormatFromPath(path string) (string, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return FormatCSV, nil
	case ".jsonl", ".ndjson":
		return FormatJSONL, nil
	}
	return "", fmt.Errorf("%w: cannot tell the format of %q from its extension; set the format to csv or jsonl", ErrUnknownFormat, path)
}

// BatchID returns the lower-case hexadecimal SHA-256 of everything r
// returns, the default batch id of a CSV file.
func BatchID(r io.Reader) (string, error) {
	hash := sha256.New()
	if _, err := io.Copy(hash, r); err != nil {
		return "", fmt.Errorf("hash input: %w", err)
	}
	return hex.EncodeToString(hash.Sum(nil)), nil
}

// ImportFile imports a file, or standard input when path is "-". For a CSV
// file without Options.BatchID, it first reads the whole file once to
// compute its SHA-256 as the batch id. A CSV on standard input needs
// Options.BatchID. See Import for the result and errors.
func ImportFile(ctx context.Context, js jetstream.JetStream, path string, opts Options) (Result, error) {
	if opts.Format == "" {
		format, err := FormatFromPath(path)
		if err != nil {
			return Result{}, err
		}
		opts.Format = format
	}
	if _, err := opts.withDefaults(); err != nil {
		return Result{}, err
	}

	if path == "-" {
		return Import(ctx, js, os.Stdin, opts.BatchID, opts)
	}

	file, err := os.Open(path)
	if err != nil {
		return Result{}, fmt.Errorf("open input: %w", err)
	}
	defer file.Close()

	batchID := opts.BatchID
	if batchID == "" && opts.Format == FormatCSV {
		if batchID, err = BatchID(file); err != nil {
			return Result{}, fmt.Errorf("%s: %w", path, err)
		}
		if _, err := file.Seek(0, io.SeekStart); err != nil {
			return Result{}, fmt.Errorf("rewind %s after hashing: %w", path, err)
		}
	}
	return Import(ctx, js, file, batchID, opts)
}

// Import reads records from r and publishes each valid one, then waits for
// every ack. batchID, or Options.BatchID when batchID is "", makes the event
// ids of CSV rows (see EventID). A CSV import without one returns
// ErrBatchIDRequired.
//
// An invalid record or a failed publish is counted in Result.Failed and
// kept in Result.Errors, and the import goes on. So the error is nil even
// when records failed, and callers check Result.Failed. With
// Options.StopOnError, Import stops at the first failed record and returns
// an error that wraps its *RecordError. Other errors end the import: invalid options, a mapping
// that does not fit the CSV header (ErrMissingColumn), malformed CSV
// quoting, a read error or the end of ctx. The Result counts what was done
// before that, and no record counts as published without an ack.
func Import(ctx context.Context, js jetstream.JetStream, r io.Reader, batchID string, opts Options) (Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Result{}, err
	}
	if batchID == "" {
		batchID = opts.BatchID
	}
	if opts.Format == FormatCSV && batchID == "" {
		return Result{}, fmt.Errorf("%w: a CSV from a stream has no file to hash; set a batch id", ErrBatchIDRequired)
	}

	results := &collector{}
	if opts.Format == FormatCSV {
		results.result.BatchID = batchID
	}
	publisher, err := newPublisher(ctx, js, opts, results)
	if err != nil {
		return Result{}, err
	}

	run := &importRun{ctx: ctx, opts: opts, publisher: publisher, results: results}
	var readErr error
	if opts.Format == FormatCSV {
		readErr = run.readCSV(r, batchID, time.Now())
	} else {
		readErr = run.readJSONL(r)
	}
	publisher.finish()

	result := results.snapshot()
	if readErr != nil {
		return result, readErr
	}
	if first := results.firstError(); opts.StopOnError && first != nil {
		return result, fmt.Errorf("import stopped at the first failed record: %w", first)
	}
	return result, nil
}

// importRun is the state of one Import while it reads.
type importRun struct {
	ctx       context.Context
	opts      Options
	publisher *publisher
	results   *collector
}

// stopped returns ctx's error, wrapped, when ctx has ended, and reports
// whether reading stops because of StopOnError.
func (r *importRun) stopped() (bool, error) {
	if err := r.ctx.Err(); err != nil {
		return true, fmt.Errorf("import canceled: %w", err)
	}
	return r.opts.StopOnError && r.results.firstError() != nil, nil
}

// readCSV reads the header, matches the mapping to it, and publishes each
// row. Row numbers count the header as row 1; encoding/csv skips blank
// lines without counting them.
func (r *importRun) readCSV(input io.Reader, batchID string, importTime time.Time) error {
	reader := csv.NewReader(input)
	reader.ReuseRecord = true

	header, err := reader.Read()
	if errors.Is(err, io.EOF) {
		return errors.New("read CSV header: the input is empty")
	}
	if err != nil {
		return fmt.Errorf("read CSV header: %w", err)
	}
	header = cleanHeader(header)

	mapper, err := r.opts.Mapping.newRecordMapper(header, importTime)
	if err != nil {
		return err
	}

	for row := 2; ; row++ {
		if stop, err := r.stopped(); stop {
			return err
		}

		// A row with the wrong number of fields comes with ErrFieldCount
		// and is rejected by the mapper. Any other error is malformed
		// quoting, after which row boundaries cannot be trusted.
		record, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && !errors.Is(err, csv.ErrFieldCount) {
			return fmt.Errorf("read CSV row %d: %w", row, err)
		}
		r.results.addRecord()

		eventID, contactID, body, err := mapper.event(record, row, batchID)
		if err != nil {
			r.results.fail(asRecordError(err, FormatCSV, row))
			continue
		}
		if err := r.publisher.publish(r.ctx, FormatCSV, row, topology.ChangesSubject(contactID), eventID, body); err != nil {
			return fmt.Errorf("import canceled: %w", err)
		}
	}
}

// cleanHeader copies the header, drops a UTF-8 byte order mark, which
// spreadsheet programs write, and trims spaces around names.
func cleanHeader(header []string) []string {
	cleaned := make([]string, len(header))
	for i, name := range header {
		if i == 0 {
			name = strings.TrimPrefix(name, "\uFEFF")
		}
		cleaned[i] = strings.TrimSpace(name)
	}
	return cleaned
}

func asRecordError(err error, format string, number int) *RecordError {
	var recordErr *RecordError
	if errors.As(err, &recordErr) {
		return recordErr
	}
	return &RecordError{Format: format, Number: number, Err: err}
}

// readJSONL validates each line as an event and publishes the line's bytes
// on the subject of its contact_id, with its event_id as Nats-Msg-Id.
// Blank lines are skipped.
func (r *importRun) readJSONL(input io.Reader) error {
	reader := bufio.NewReaderSize(input, 64<<10)
	for line := 1; ; line++ {
		if stop, err := r.stopped(); stop {
			return err
		}

		data, tooLong, err := readLine(reader, contact.MaxEventSize)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read JSONL line %d: %w", line, err)
		}
		if !tooLong && len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		r.results.addRecord()

		if tooLong {
			err := fmt.Errorf("line is longer than %d bytes: %w", contact.MaxEventSize, contact.ErrInvalidEvent)
			r.results.fail(&RecordError{Format: FormatJSONL, Number: line, Err: err})
			continue
		}
		event, err := contact.DecodeEvent(data)
		if err != nil {
			r.results.fail(&RecordError{Format: FormatJSONL, Number: line, Err: err})
			continue
		}
		if err := r.publisher.publish(r.ctx, FormatJSONL, line, topology.ChangesSubject(event.ContactID), event.EventID, data); err != nil {
			return fmt.Errorf("import canceled: %w", err)
		}
	}
}

// readLine returns the next line, without "\n" or "\r\n", in a new slice.
// A line longer than limit bytes is read to its end and discarded, and
// tooLong is set. The last line may lack a newline. At the end of the
// input it returns io.EOF.
func readLine(reader *bufio.Reader, limit int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := reader.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > limit+len("\r\n") {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}

		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && (len(line) > 0 || tooLong):
		case err != nil:
			return nil, false, err
		}

		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		return line, tooLong, nil
	}
}
