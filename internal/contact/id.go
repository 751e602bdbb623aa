package contact

import (
	"fmt"
	"strings"
)

// ParseID validates a contact_id and returns it in canonical form: a UUID in
// the 8-4-4-4-12 hexadecimal layout, lower-cased. Upper-case hexadecimal digits
// are accepted and lower-cased. Braces, a "urn:uuid:" prefix, a missing
// hyphen, the nil UUID and any other character are rejected, so that only a
// UUID can ever reach a request path or a subject token.
func ParseID(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("contact_id is empty: %w", ErrInvalidEvent)
	}

	if len(s) != 36 {
		return "", fmt.Errorf("contact_id %q is not a UUID (expected 8-4-4-4-12 hexadecimal digits): %w", truncate(s), ErrInvalidEvent)
	}

	canonical := []byte(strings.ToLower(s))
	for i, c := range canonical {
		isHyphenPosition := i == 8 || i == 13 || i == 18 || i == 23
		switch {
		case isHyphenPosition && c == '-':
		case !isHyphenPosition && (c >= '0' && c <= '9' || c >= 'a' && c <= 'f'):
		default:
			return "", fmt.Errorf("contact_id %q is not a UUID (expected 8-4-4-4-12 hexadecimal digits): %w", truncate(s), ErrInvalidEvent)
		}
	}

	if string(canonical) == "00000000-0000-0000-0000-000000000000" {
		return "", fmt.Errorf("contact_id is the nil UUID: %w", ErrInvalidEvent)
	}

	return string(canonical), nil
}

// truncate shortens a value quoted in an error message, so that a 1 MB
// field does not become a 1 MB error.
func truncate(s string) string {
	const maxQuoted = 64
	if len(s) <= maxQuoted {
		return s
	}
	return s[:maxQuoted] + "..."
}
