package demo

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/contact-sync/contact-sync/internal/importer"
)

// dataset is the export as the demo uses it: which contacts the stand-in
// knows, and a changed copy for the second import.
type dataset struct {
	mapping     importer.Mapping
	rows        int
	known       []string
	changedPath string
	changedRows int
}

// Columns of the Atomic CRM export that the second import changes.
const (
	columnID     = "id"
	columnStatus = "status"
	columnTags   = "tags"
	columnTitle  = "title"
)

// statusAfter moves a contact one step along the CRM's status ladder.
var statusAfter = map[string]string{"cold": "warm", "warm": "hot", "hot": "in-contract", "in-contract": "in-contract"}

func loadDataset(opts Options, workDir string) (*dataset, error) {
	mapping, err := importer.LoadMapping(opts.Mapping)
	if err != nil {
		return nil, fmt.Errorf("load the mapping (--mapping %s): %w", opts.Mapping, err)
	}

	header, records, err := readCSV(opts.Input)
	if err != nil {
		return nil, err
	}
	columns := make(map[string]int, len(header))
	for i, name := range header {
		columns[name] = i
	}
	for _, name := range []string{columnID, columnStatus, columnTags, columnTitle} {
		if _, ok := columns[name]; !ok {
			return nil, fmt.Errorf("the demo changes the Atomic CRM export's columns, and %s has no %q column", opts.Input, name)
		}
	}

	data := &dataset{mapping: mapping, rows: len(records)}
	changed := make([][]string, len(records))
	for i, record := range records {
		crmID, err := strconv.Atoi(record[columns[columnID]])
		if err != nil {
			return nil, fmt.Errorf("%s row %d: id %q is not an integer", opts.Input, i+2, record[columns[columnID]])
		}
		contactID, err := mapping.ContactID(record[columns[columnID]])
		if err != nil {
			return nil, fmt.Errorf("%s row %d: %w", opts.Input, i+2, err)
		}
		if crmID%opts.UnknownEvery != 0 {
			data.known = append(data.known, contactID)
		}

		changed[i] = slices.Clone(record)
		if crmID%opts.ChangeEvery == 0 {
			changeRecord(changed[i], columns)
			data.changedRows++
		}
	}

	data.changedPath = filepath.Join(workDir, "contacts-changed.csv")
	if err := writeCSV(data.changedPath, header, changed); err != nil {
		return nil, err
	}
	return data, nil
}

// changeRecord makes the edits a CRM user might make between two exports:
// a warmer status, a new tag and a new title.
func changeRecord(record []string, columns map[string]int) {
	status := record[columns[columnStatus]]
	if next, ok := statusAfter[status]; ok {
		record[columns[columnStatus]] = next
	}

	tags := strings.TrimSpace(record[columns[columnTags]])
	if tags == "" {
		record[columns[columnTags]] = "renewal"
	} else {
		record[columns[columnTags]] = tags + ",renewal"
	}

	record[columns[columnTitle]] = "Head of " + record[columns[columnTitle]]
}

func readCSV(path string) ([]string, [][]string, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open the export (--input): %w", err)
	}
	defer file.Close()

	rows, err := csv.NewReader(file).ReadAll()
	if err != nil {
		return nil, nil, fmt.Errorf("read %s as CSV: %w", path, err)
	}
	if len(rows) < 2 {
		return nil, nil, fmt.Errorf("%s has no rows after its header", path)
	}
	return rows[0], rows[1:], nil
}

func writeCSV(path string, header []string, records [][]string) error {
	file, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write the changed export: %w", err)
	}
	defer file.Close()

	writer := csv.NewWriter(file)
	if err := writer.Write(header); err != nil {
		return fmt.Errorf("write the changed export: %w", err)
	}
	if err := writer.WriteAll(records); err != nil {
		return fmt.Errorf("write the changed export: %w", err)
	}
	return file.Close()
}
