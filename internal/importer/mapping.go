package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"sigs.k8s.io/yaml"

	"github.com/contact-sync/contact-sync/internal/contact"
)

// DefaultNamespace is the UUID namespace of contact ids derived from CRM ids
// when a mapping sets none. It was generated once at random for this
// project and never changes, because changing it changes every contact id.
const DefaultNamespace = "011d9fbf-1ca1-4c22-babb-3e42accd8567"

// EventNamespace is the UUID namespace of the event ids of CSV rows. It was
// generated once at random for this project and never changes.
const EventNamespace = "30ce41fc-9ad2-44cd-b50c-0a00677c16f8"

var (
	defaultNamespace = uuid.MustParse(DefaultNamespace)
	eventNamespace   = uuid.MustParse(EventNamespace)
)

// Values of Mapping.Blank.
const (
	// BlankOmit leaves a field whose columns are all blank out of the event,
	// so the contact keeps its value. It is the default.
	BlankOmit = "omit"

	// BlankClear sends null for a field whose columns are all blank, so the
	// contact's value is cleared.
	BlankClear = "clear"
)

// Values of Mapping.PhoneFormat.
const (
	// PhoneAsIs sends the phone cell unchanged. It is the default.
	PhoneAsIs = "as_is"

	// PhoneE164 normalizes the phone with NormalizePhone and rejects the row
	// when that fails.
	PhoneE164 = "e164"
)

// Types of a dynamic field's value, the values of DynamicColumn.Type.
const (
	// TypeString sends the cell as a JSON string. It is the default.
	TypeString = "string"

	// TypeInteger sends the cell as a JSON number. It must be a decimal
	// 64-bit integer.
	TypeInteger = "integer"

	// TypeBoolean sends the cell as true or false; see ParseBool.
	TypeBoolean = "boolean"

	// TypeList splits the cell on commas into a JSON array of trimmed,
	// non-empty strings. A blank cell is always sent as [].
	TypeList = "list"
)

// API field names that a mapping can fill, as the contact API spells them.
const (
	fieldName              = "name"
	fieldSurname           = "surname"
	fieldEmail             = "email"
	fieldPhone             = "phone"
	fieldEntityID          = "entity_id"
	fieldHasCustomerPortal = "has_customer_portal"
	fieldServicePointIDs   = "service_point_id_list"
)

var apiFields = []string{fieldName, fieldSurname, fieldEmail, fieldPhone, fieldEntityID, fieldHasCustomerPortal, fieldServicePointIDs}

var dynamicTypes = []string{TypeString, TypeInteger, TypeBoolean, TypeList}

// Mapping describes how the columns of a CSV export become contact-change
// events. It is read from a YAML file with LoadMapping or built from flags
// with SetField and SetDynamic. The YAML keys are the json tags below. The
// zero value is not valid: IDColumn is required. A Mapping is safe for
// concurrent use once it is no longer modified.
type Mapping struct {
	// IDColumn is the column of the CRM's contact id. Required.
	IDColumn string `json:"id_column"`

	// IDIsUUID reports that IDColumn contains the contact_id itself, a
	// UUID, instead of an integer CRM id to derive it from.
	IDIsUUID bool `json:"id_is_uuid,omitempty"`

	// Namespace is the UUID namespace of derived contact ids; "" means
	// DefaultNamespace.
	Namespace string `json:"namespace,omitempty"`

	// Fields maps an API field (name, surname, email, phone, entity_id,
	// has_customer_portal, service_point_id_list) to its columns. The first
	// column with a non-blank cell gives the value.
	Fields map[string]Columns `json:"fields,omitempty"`

	// Dynamic maps a dynamic_field_list key to its column and value type.
	Dynamic map[string]DynamicColumn `json:"dynamic,omitempty"`

	// Blank is BlankOmit (the default when "") or BlankClear. It decides what
	// a field whose columns are all blank sends, for API fields and dynamic
	// fields other than lists.
	Blank string `json:"blank,omitempty"`

	// PhoneFormat is PhoneAsIs (the default when "") or PhoneE164.
	PhoneFormat string `json:"phone_format,omitempty"`

	// PhoneCountryCode is the country code that PhoneE164 gives numbers
	// written without "+". Zero means 1 (North America).
	PhoneCountryCode int `json:"phone_country_code,omitempty"`

	// OccurredAtColumn is the column of the time the contact changed, an
	// ISO 8601 time with an offset. When "", or when the cell is blank, the
	// event's occurred_at is the time the import started.
	OccurredAtColumn string `json:"occurred_at_column,omitempty"`
}

// Columns is a list of column names. In YAML it is a list or, for one
// column, a plain string.
type Columns []string

// UnmarshalJSON accepts a string or an array of strings.
func (c *Columns) UnmarshalJSON(data []byte) error {
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*c = Columns{one}
		return nil
	}

	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return errors.New("expected a column name or a list of column names (quote names such as yes, no or 1)")
	}
	*c = list
	return nil
}

// DynamicColumn is the source of one dynamic field. In YAML it is a plain
// column name, or an object {column: NAME, type: TYPE}.
type DynamicColumn struct {
	// Column is the column that contains the value.
	Column string `json:"column"`

	// Type is TypeString (the default when ""), TypeInteger, TypeBoolean or
	// TypeList.
	Type string `json:"type,omitempty"`
}

// UnmarshalJSON accepts a column name or an object with the members column
// and type. Any other member is an error.
func (d *DynamicColumn) UnmarshalJSON(data []byte) error {
	var column string
	if err := json.Unmarshal(data, &column); err == nil {
		*d = DynamicColumn{Column: column}
		return nil
	}

	// A local type without this method, so that decoding does not recurse.
	type plain DynamicColumn
	var value plain
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&value); err != nil {
		return fmt.Errorf("expected a column name or {column: NAME, type: TYPE}: %w", err)
	}
	*d = DynamicColumn(value)
	return nil
}

// LoadMapping reads a YAML mapping file and validates it. Unknown and
// duplicate keys are errors. Every error but a read error wraps
// ErrInvalidMapping, and all name the file.
func LoadMapping(path string) (Mapping, error) {
	mapping, err := ReadMapping(path)
	if err != nil {
		return Mapping{}, err
	}
	if err := mapping.Validate(); err != nil {
		return Mapping{}, fmt.Errorf("mapping %s: %w", path, err)
	}
	return mapping, nil
}

// ReadMapping reads a YAML mapping file like LoadMapping but does not
// validate it, for callers that complete it from flags and then call
// Validate.
func ReadMapping(path string) (Mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Mapping{}, fmt.Errorf("read mapping: %w", err)
	}

	mapping, err := decodeMapping(data)
	if err != nil {
		return Mapping{}, fmt.Errorf("mapping %s: %w", path, err)
	}
	return mapping, nil
}

// ParseMapping decodes and validates a YAML mapping, like LoadMapping.
func ParseMapping(data []byte) (Mapping, error) {
	mapping, err := decodeMapping(data)
	if err != nil {
		return Mapping{}, err
	}
	if err := mapping.Validate(); err != nil {
		return Mapping{}, err
	}
	return mapping, nil
}

// decodeMapping decodes YAML strictly: unknown and duplicate keys are
// errors.
func decodeMapping(data []byte) (Mapping, error) {
	var mapping Mapping
	if err := yaml.UnmarshalStrict(data, &mapping); err != nil {
		return Mapping{}, fmt.Errorf("%w: %w", ErrInvalidMapping, err)
	}
	return mapping, nil
}

// SetField sets the columns of one API field from a flag value of the form
// "api_field=column[,column...]", replacing the columns set before.
func (m *Mapping) SetField(spec string) error {
	field, list, found := strings.Cut(spec, "=")
	field = strings.TrimSpace(field)
	if !found || field == "" {
		return fmt.Errorf("%w: field %q: expected api_field=column[,column...]", ErrInvalidMapping, spec)
	}

	var columns Columns
	for column := range strings.SplitSeq(list, ",") {
		columns = append(columns, strings.TrimSpace(column))
	}

	m.Fields = maps.Clone(m.Fields)
	if m.Fields == nil {
		m.Fields = make(map[string]Columns)
	}
	m.Fields[field] = columns
	return m.validateField(field, columns)
}

// SetDynamic sets one dynamic field from a flag value of the form
// "key=column" or "key=column:type", replacing the key's source set before.
// A suffix after the last colon is taken as the type only when it is a
// known type, so a column name may contain colons.
func (m *Mapping) SetDynamic(spec string) error {
	key, column, found := strings.Cut(spec, "=")
	key = strings.TrimSpace(key)
	if !found || key == "" {
		return fmt.Errorf("%w: dynamic field %q: expected key=column or key=column:type", ErrInvalidMapping, spec)
	}

	source := DynamicColumn{Column: strings.TrimSpace(column)}
	if i := strings.LastIndex(column, ":"); i >= 0 && slices.Contains(dynamicTypes, column[i+1:]) {
		source = DynamicColumn{Column: strings.TrimSpace(column[:i]), Type: column[i+1:]}
	}

	m.Dynamic = maps.Clone(m.Dynamic)
	if m.Dynamic == nil {
		m.Dynamic = make(map[string]DynamicColumn)
	}
	m.Dynamic[key] = source
	return m.validateDynamic(key, source)
}

// Validate checks the mapping without a CSV header. Errors wrap
// ErrInvalidMapping and name the key.
func (m Mapping) Validate() error {
	if strings.TrimSpace(m.IDColumn) == "" {
		return fmt.Errorf("%w: id_column is missing", ErrInvalidMapping)
	}
	if m.Namespace != "" {
		if _, err := m.namespace(); err != nil {
			return err
		}
	}

	for _, field := range slices.Sorted(maps.Keys(m.Fields)) {
		if err := m.validateField(field, m.Fields[field]); err != nil {
			return err
		}
	}
	for _, key := range slices.Sorted(maps.Keys(m.Dynamic)) {
		if err := m.validateDynamic(key, m.Dynamic[key]); err != nil {
			return err
		}
	}

	if m.Blank != "" && m.Blank != BlankOmit && m.Blank != BlankClear {
		return fmt.Errorf("%w: blank %q is not %q or %q", ErrInvalidMapping, m.Blank, BlankOmit, BlankClear)
	}
	if m.PhoneFormat != "" && m.PhoneFormat != PhoneAsIs && m.PhoneFormat != PhoneE164 {
		return fmt.Errorf("%w: phone_format %q is not %q or %q", ErrInvalidMapping, m.PhoneFormat, PhoneAsIs, PhoneE164)
	}
	if m.PhoneCountryCode < 0 || m.PhoneCountryCode > 999 {
		return fmt.Errorf("%w: phone_country_code %d is not 1 to 999", ErrInvalidMapping, m.PhoneCountryCode)
	}
	if m.OccurredAtColumn != "" && strings.TrimSpace(m.OccurredAtColumn) == "" {
		return fmt.Errorf("%w: occurred_at_column is blank", ErrInvalidMapping)
	}
	return nil
}

func (m Mapping) validateField(field string, columns Columns) error {
	if !slices.Contains(apiFields, field) {
		return fmt.Errorf("%w: fields: unknown API field %q (known: %s)", ErrInvalidMapping, field, strings.Join(apiFields, ", "))
	}
	if len(columns) == 0 {
		return fmt.Errorf("%w: fields.%s has no columns", ErrInvalidMapping, field)
	}
	for i, column := range columns {
		if strings.TrimSpace(column) == "" {
			return fmt.Errorf("%w: fields.%s column %d is blank", ErrInvalidMapping, field, i+1)
		}
	}
	return nil
}

func (m Mapping) validateDynamic(key string, source DynamicColumn) error {
	if strings.TrimSpace(key) == "" {
		return fmt.Errorf("%w: dynamic has a blank key", ErrInvalidMapping)
	}
	if strings.TrimSpace(source.Column) == "" {
		return fmt.Errorf("%w: dynamic.%s has no column", ErrInvalidMapping, key)
	}
	if source.Type != "" && !slices.Contains(dynamicTypes, source.Type) {
		return fmt.Errorf("%w: dynamic.%s: unknown type %q (known: %s)", ErrInvalidMapping, key, source.Type, strings.Join(dynamicTypes, ", "))
	}
	return nil
}

func (m Mapping) namespace() (uuid.UUID, error) {
	if m.Namespace == "" {
		return defaultNamespace, nil
	}
	namespace, err := uuid.Parse(m.Namespace)
	if err != nil || namespace == uuid.Nil {
		return uuid.Nil, fmt.Errorf("%w: namespace %q is not a UUID", ErrInvalidMapping, m.Namespace)
	}
	return namespace, nil
}

// ContactID returns the contact_id of a CRM id: the id itself when
// IDIsUUID is set, validated by contact.ParseID, and otherwise the version 5
// UUID of the id's decimal form without leading zeros in the mapping's
// namespace (see the package documentation). Surrounding spaces are
// ignored. The error wraps ErrInvalidRecord for an id that is not a
// non-negative integer (or not a UUID), and ErrInvalidMapping for a bad
// namespace.
func (m Mapping) ContactID(crmID string) (string, error) {
	namespace, err := m.namespace()
	if err != nil {
		return "", err
	}
	return deriveContactID(namespace, m.IDIsUUID, crmID)
}

func deriveContactID(namespace uuid.UUID, idIsUUID bool, crmID string) (string, error) {
	crmID = strings.TrimSpace(crmID)
	if crmID == "" {
		return "", fmt.Errorf("%w: contact id is blank", ErrInvalidRecord)
	}

	if idIsUUID {
		id, err := contact.ParseID(crmID)
		if err != nil {
			return "", fmt.Errorf("%w: contact id is not a UUID (id_is_uuid is set)", ErrInvalidRecord)
		}
		return id, nil
	}

	for _, r := range crmID {
		if r < '0' || r > '9' {
			return "", fmt.Errorf("%w: contact id is not a non-negative decimal integer (set id_is_uuid for UUID ids)", ErrInvalidRecord)
		}
	}
	canonical := strings.TrimLeft(crmID, "0")
	if canonical == "" {
		canonical = "0"
	}
	return uuid.NewSHA1(namespace, []byte(canonical)).String(), nil
}

// EventID returns the event_id of CSV row rowNumber (1-based, the header is
// row 1) of a batch: the version 5 UUID of batchID + "/" + rowNumber in
// EventNamespace.
func EventID(batchID string, rowNumber int) string {
	return uuid.NewSHA1(eventNamespace, []byte(batchID+"/"+strconv.Itoa(rowNumber))).String()
}
