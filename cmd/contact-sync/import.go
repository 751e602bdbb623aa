package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/contact-sync/contact-sync/internal/importer"
	"github.com/contact-sync/contact-sync/internal/topology"
)

const importUsage = `Usage: contact-sync import [flags] FILE

Publishes a CSV or JSONL batch import as contact-change events on
contacts.changes.<contact_id> in NATS JetStream, and waits for every ack.

FILE's extension gives the format: .csv, or .jsonl or .ndjson. FILE "-"
reads standard input and needs --format, and a CSV there needs --batch-id.
A JSONL line is a full event. A CSV needs a column mapping from --mapping,
from the mapping flags, or both; the flags override the file.

Each CSV row's event_id derives from the file's SHA-256 (or --batch-id) and
its row number, so importing the same file again within the stream's
duplicate window publishes nothing new and counts duplicates.

Exit status: 0 when every record was published or was a duplicate, 1 when
a record failed or the import stopped, 2 on a usage or mapping error.

Flags:
`

// importFlags are the parsed flags of the import subcommand.
type importFlags struct {
	natsURL     string
	format      string
	batchID     string
	stopOnError bool
	maxPending  int
	ackTimeout  time.Duration
	noProvision bool

	mappingFile      string
	idColumn         string
	idIsUUID         bool
	namespace        string
	occurredAtColumn string
	blank            string
	phoneFormat      string
	phoneCountryCode int
	fields           repeatedFlag
	dynamic          repeatedFlag

	// set contains the names of the flags given on the command line.
	set map[string]bool
}

// repeatedFlag collects every value of a flag that may be repeated.
type repeatedFlag []string

func (r *repeatedFlag) String() string { return strings.Join(*r, " ") }

func (r *repeatedFlag) Set(value string) error {
	*r = append(*r, value)
	return nil
}

// runImport runs the import subcommand and returns the exit code.
func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	parsed, path, code := parseImportFlags(args, stderr)
	if code >= 0 {
		return code
	}

	opts, err := parsed.options(path)
	if err != nil {
		fmt.Fprintf(stderr, "contact-sync import: %v\n", err)
		return 2
	}

	conn, err := nats.Connect(parsed.natsURL, nats.Name("contact-sync import"))
	if err != nil {
		fmt.Fprintf(stderr, "contact-sync import: connect to NATS at %s: %v\n", parsed.natsURL, err)
		return 1
	}
	defer conn.Close()

	js, err := jetstream.New(conn)
	if err != nil {
		fmt.Fprintf(stderr, "contact-sync import: create JetStream context: %v\n", err)
		return 1
	}
	if !parsed.noProvision {
		if err := topology.ProvisionStreams(ctx, js, topology.Options{}); err != nil {
			fmt.Fprintf(stderr, "contact-sync import: provision streams (or pass --no-provision): %v\n", err)
			return 1
		}
	}

	result, err := importer.ImportFile(ctx, js, path, opts)
	return reportImport(path, result, err, stdout, stderr)
}

// parseImportFlags parses the arguments. It returns the flags and FILE, and
// a code of -1 to go on, or the exit code to return at once.
func parseImportFlags(args []string, stderr io.Writer) (*importFlags, string, int) {
	parsed := &importFlags{set: make(map[string]bool)}
	flags := flag.NewFlagSet("import", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprint(stderr, importUsage)
		flags.PrintDefaults()
	}

	defaultURL := os.Getenv("CONTACT_SYNC_NATS_URL")
	if defaultURL == "" {
		defaultURL = nats.DefaultURL
	}
	flags.StringVar(&parsed.natsURL, "nats-url", defaultURL, "NATS server URL (default from CONTACT_SYNC_NATS_URL)")
	flags.StringVar(&parsed.format, "format", "", "input format, csv or jsonl (default from FILE's extension)")
	flags.StringVar(&parsed.batchID, "batch-id", "", "batch id of the CSV event ids, in place of the file's SHA-256")
	flags.BoolVar(&parsed.stopOnError, "stop-on-error", false, "stop at the first invalid record or failed publish")
	flags.IntVar(&parsed.maxPending, "max-pending", importer.DefaultMaxPending, "maximum number of published records waiting for their ack")
	flags.DurationVar(&parsed.ackTimeout, "ack-timeout", importer.DefaultAckTimeout, "time to wait for one record's ack before it counts as failed")
	flags.BoolVar(&parsed.noProvision, "no-provision", false, "do not create or update the JetStream streams")

	flags.StringVar(&parsed.mappingFile, "mapping", "", "YAML column mapping of a CSV")
	flags.StringVar(&parsed.idColumn, "id-column", "", "CSV column of the CRM contact id")
	flags.BoolVar(&parsed.idIsUUID, "id-is-uuid", false, "the id column holds contact_id UUIDs, not integer CRM ids")
	flags.StringVar(&parsed.namespace, "namespace", "", "UUID namespace of contact ids derived from CRM ids (default "+importer.DefaultNamespace+")")
	flags.StringVar(&parsed.occurredAtColumn, "occurred-at-column", "", "CSV column of occurred_at (default: the time of the import)")
	flags.StringVar(&parsed.blank, "blank", importer.BlankOmit, "what a field with only blank columns sends: omit (leave the contact's value) or clear (send null)")
	flags.StringVar(&parsed.phoneFormat, "phone-format", importer.PhoneAsIs, "phone output: as_is or e164 (E.164 with ;ext= for extensions)")
	flags.IntVar(&parsed.phoneCountryCode, "phone-country-code", 1, "country code of phone numbers written without + when --phone-format is e164")
	flags.Var(&parsed.fields, "field", "API field from CSV columns, api_field=column[,column...], first non-blank wins (repeatable)")
	flags.Var(&parsed.dynamic, "dynamic", "dynamic field from a CSV column, key=column or key=column:type, type string, integer, boolean or list (repeatable)")

	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, "", 0
		}
		return nil, "", 2
	}
	if flags.NArg() != 1 {
		fmt.Fprintf(stderr, "contact-sync import: expected one FILE, got %d arguments (contact-sync import -h shows the usage)\n", flags.NArg())
		return nil, "", 2
	}

	flags.Visit(func(f *flag.Flag) { parsed.set[f.Name] = true })
	return parsed, flags.Arg(0), -1
}

// options builds the importer options, with the mapping for a CSV.
func (f *importFlags) options(path string) (importer.Options, error) {
	opts := importer.Options{
		Format:      f.format,
		BatchID:     f.batchID,
		StopOnError: f.stopOnError,
		MaxPending:  f.maxPending,
		AckTimeout:  f.ackTimeout,
	}
	if opts.Format == "" {
		format, err := importer.FormatFromPath(path)
		if err != nil {
			return opts, fmt.Errorf("%w (use --format)", err)
		}
		opts.Format = format
	}
	if path == "-" && opts.Format == importer.FormatCSV && opts.BatchID == "" {
		return opts, errors.New("a CSV on standard input needs --batch-id, because there is no file to hash")
	}
	if f.maxPending < 1 || f.ackTimeout <= 0 {
		return opts, fmt.Errorf("--max-pending %d and --ack-timeout %v must be positive", f.maxPending, f.ackTimeout)
	}

	mappingGiven := false
	for _, name := range []string{"mapping", "id-column", "id-is-uuid", "namespace", "occurred-at-column", "blank", "phone-format", "phone-country-code", "field", "dynamic"} {
		mappingGiven = mappingGiven || f.set[name]
	}
	switch {
	case opts.Format != importer.FormatCSV && mappingGiven:
		return opts, errors.New("the mapping flags apply to CSV only; a JSONL line is a full event")
	case opts.Format == importer.FormatCSV && !mappingGiven:
		return opts, errors.New("a CSV import needs --mapping FILE or --id-column and --field flags")
	case opts.Format == importer.FormatCSV:
		mapping, err := f.mapping()
		if err != nil {
			return opts, err
		}
		opts.Mapping = &mapping
	}
	return opts, nil
}

// mapping reads --mapping, if given, and applies the mapping flags over it.
func (f *importFlags) mapping() (importer.Mapping, error) {
	var mapping importer.Mapping
	if f.mappingFile != "" {
		var err error
		if mapping, err = importer.ReadMapping(f.mappingFile); err != nil {
			return mapping, err
		}
	}

	if f.set["id-column"] {
		mapping.IDColumn = f.idColumn
	}
	if f.set["id-is-uuid"] {
		mapping.IDIsUUID = f.idIsUUID
	}
	if f.set["namespace"] {
		mapping.Namespace = f.namespace
	}
	if f.set["occurred-at-column"] {
		mapping.OccurredAtColumn = f.occurredAtColumn
	}
	if f.set["blank"] {
		mapping.Blank = f.blank
	}
	if f.set["phone-format"] {
		mapping.PhoneFormat = f.phoneFormat
	}
	if f.set["phone-country-code"] {
		mapping.PhoneCountryCode = f.phoneCountryCode
	}
	for _, spec := range f.fields {
		if err := mapping.SetField(spec); err != nil {
			return mapping, fmt.Errorf("--field: %w", err)
		}
	}
	for _, spec := range f.dynamic {
		if err := mapping.SetDynamic(spec); err != nil {
			return mapping, fmt.Errorf("--dynamic: %w", err)
		}
	}
	return mapping, mapping.Validate()
}

// reportImport prints the record errors and the summary, and returns the
// exit code.
func reportImport(path string, result importer.Result, err error, stdout, stderr io.Writer) int {
	for _, failure := range result.Errors {
		fmt.Fprintf(stderr, "contact-sync import: %v\n", failure)
	}
	if more := result.Failed - len(result.Errors); more > 0 {
		fmt.Fprintf(stderr, "contact-sync import: %d more failed records not shown\n", more)
	}

	if isUsageError(err) {
		fmt.Fprintf(stderr, "contact-sync import: %v\n", err)
		return 2
	}

	fmt.Fprintf(stdout, "import %s: %d records, published %d, duplicates %d, failed %d\n",
		path, result.Records, result.Published, result.Duplicates, result.Failed)

	var recordErr *importer.RecordError
	switch {
	case errors.As(err, &recordErr):
		// The record's error is already printed with the others.
		fmt.Fprintln(stderr, "contact-sync import: stopped at the first failed record (--stop-on-error)")
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "contact-sync import: %v\n", err)
		return 1
	case result.Failed > 0:
		return 1
	}
	return 0
}

// isUsageError reports whether the import failed on its input's
// description rather than on a record or on NATS.
func isUsageError(err error) bool {
	return errors.Is(err, importer.ErrInvalidMapping) ||
		errors.Is(err, importer.ErrMissingColumn) ||
		errors.Is(err, importer.ErrUnknownFormat) ||
		errors.Is(err, importer.ErrBatchIDRequired)
}
