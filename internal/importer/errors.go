package importer

import (
	"errors"
	"fmt"
)

// Sentinel errors, wrapped with the details; test for them with errors.Is.
var (
	// ErrInvalidMapping is returned when a mapping file or flag is invalid:
	// an unknown key, API field or dynamic field type, a bad namespace, or a
	// field without columns.
	ErrInvalidMapping = errors.New("invalid mapping")

	// ErrMissingColumn is returned when the mapping names a column that the
	// CSV header does not have. The message lists the header's columns.
	ErrMissingColumn = errors.New("column not in CSV header")

	// ErrInvalidRecord is wrapped by a RecordError for a CSV row whose cells
	// the mapping cannot turn into an event. JSONL lines that fail
	// validation wrap contact.ErrInvalidEvent instead.
	ErrInvalidRecord = errors.New("invalid record")

	// ErrInvalidPhone is returned by NormalizePhone for a phone number that
	// it cannot write in E.164.
	ErrInvalidPhone = errors.New("invalid phone number")

	// ErrPublishFailed is wrapped by a RecordError for a record that was
	// not acknowledged by JetStream: the publish failed, timed out or was
	// canceled. The record may or may not be in the stream. A re-run with
	// the same file and batch id within the stream's duplicate window
	// stores it at most once.
	ErrPublishFailed = errors.New("publish failed")

	// ErrBatchIDRequired is returned for a CSV import without a batch id,
	// which happens when the input is a stream rather than a file.
	ErrBatchIDRequired = errors.New("batch id required")

	// ErrUnknownFormat is returned when the input format is neither "csv"
	// nor "jsonl", or the file's extension is not .csv, .jsonl or .ndjson.
	ErrUnknownFormat = errors.New("unknown input format")
)

// RecordError is the error of one CSV row or JSONL line that was not
// published: invalid, or not acknowledged by JetStream.
type RecordError struct {
	// Format is "csv" or "jsonl".
	Format string

	// Number is the 1-based CSV row number, with the header as row 1, or the
	// 1-based JSONL line number.
	Number int

	// Column is the CSV column the error is about, or "" when it is about no
	// single column (and always for JSONL).
	Column string

	// Err is the reason. It wraps ErrInvalidRecord, contact.ErrInvalidEvent
	// or ErrPublishFailed.
	Err error
}

// Error returns the position and the reason, for example
// "csv row 12, column phone_home: invalid phone number: has 9 digits".
func (e *RecordError) Error() string {
	position := fmt.Sprintf("jsonl line %d", e.Number)
	if e.Format == FormatCSV {
		position = fmt.Sprintf("csv row %d", e.Number)
	}
	if e.Column != "" {
		position += fmt.Sprintf(", column %s", e.Column)
	}
	return position + ": " + e.Err.Error()
}

// Unwrap returns the reason.
func (e *RecordError) Unwrap() error { return e.Err }
